"""The foot-lift trajectory generator (`env.foot_lift`): swing feet rise on the trot clock under a moving command.

Real MuJoCo throughout: the joint offsets come from the robot's own kinematics and the env is stepped.
"""

from __future__ import annotations

import dataclasses
import json

import mujoco
import numpy as np
import pytest
import torch

from sim.go2 import constants as C
from sim.go2.config import load_go2_config
from sim.go2.contract import go2_contract
from sim.go2.env import Go2VecEnv
from sim.go2.model import build_model, foot_lift_offsets
from som_robot.config import ConfigError
from som_robot.contract import ContractError, PolicyContract, swing_lift


def test_offsets_raise_each_foot_straight_up_by_the_lift() -> None:
    m = build_model()
    d = mujoco.MjData(m)
    pose = np.asarray(C.DEFAULT_JOINT_POS, np.float64)

    def feet(joints: np.ndarray) -> np.ndarray:
        d.qpos[:] = 0.0
        d.qpos[3] = 1.0
        d.qpos[7:] = joints
        mujoco.mj_kinematics(m, d)
        return np.array([d.geom(g).xpos.copy() for g in C.FOOT_GEOMS])

    off = foot_lift_offsets(m, pose, 0.08)
    assert np.all(off[0::3] == 0.0)  # hips stay
    assert np.all(off[1::3] > 0.1) and np.all(off[2::3] < -0.2)  # thigh forward, knee bends
    moved = feet(pose + off) - feet(pose)
    np.testing.assert_allclose(moved[:, 2], 0.08, atol=1e-5)  # up by the lift
    np.testing.assert_allclose(moved[:, 0], 0.0, atol=1e-5)  # not fore or aft
    assert not foot_lift_offsets(m, pose, 0.0).any()


def test_swing_lift_follows_the_trot_clock_in_numpy_and_torch() -> None:
    offsets = np.asarray(C.GAIT_OFFSETS)
    phase = np.array([0.0, 0.25, 0.5, 0.75, 0.125])
    share = swing_lift(phase, offsets, C.GAIT_DUTY)  # (5, 4): FL, FR, RL, RR
    np.testing.assert_allclose(share[:, 0], [0.0, 0.0, 0.0, 1.0, 0.0])  # FL: stance on [0, 0.5), top at 0.75
    np.testing.assert_allclose(share[:, 1], [0.0, 1.0, 0.0, 0.0, 0.75])  # FR: swing on [0, 0.5)
    np.testing.assert_array_equal(share[:, 0], share[:, 3])  # diagonal pairs share the clock
    np.testing.assert_array_equal(share[:, 1], share[:, 2])
    t = swing_lift(torch.as_tensor(phase), torch.as_tensor(offsets), C.GAIT_DUTY)
    np.testing.assert_allclose(t.numpy(), share)


def _swing_heights(env: Go2VecEnv, steps: int) -> np.ndarray:
    """Per env, the highest any foot rose above the lowest one over `steps` zero-action policy steps."""
    top = np.zeros(env.num_envs)
    for _ in range(steps):
        res = env.step(torch.zeros(env.num_envs, 12))
        assert not res.terminated.any()
        z = env.sim.sensordata[:, env._foot_pos_cols].double().numpy()
        top = np.maximum(top, (z - z.min(axis=1, keepdims=True)).max(axis=1))
    return top


def test_zero_actions_step_in_place_under_a_moving_command_and_stand_under_zero() -> None:
    base = load_go2_config(overrides=["domain_rand.enabled=false", "command.curriculum=false",
                                      "command.resample_interval_s=1000"])
    cmds = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.8], [0.0, 0.0, 0.0], [0.05, 0.0, 0.0]])
    tops = {}
    for lift in (0.0, 0.1):
        env = Go2VecEnv(dataclasses.replace(base, foot_lift=lift), num_envs=4, seed=1, nthread=1)
        env.reset(seed=1)
        env.commands[:] = cmds.to(env.dtype)
        tops[lift] = _swing_heights(env, 75)  # 1.5 s: three trot cycles
        env.close()
    on = tops[0.1]
    assert on[0] > 0.03 and on[1] > 0.03, on  # forward and turn-in-place commands: feet lift
    assert on[2] < 0.01 and on[3] < 0.01, on  # stand and below moving_threshold: feet stay down
    assert tops[0.0].max() < 0.01, tops[0.0]  # off (the default): a zero action stands


def test_contract_carries_the_generator_and_old_files_load_without_it() -> None:
    assert load_go2_config().foot_lift == 0.0  # off by default: the shipped contract has none
    cfg = load_go2_config(overrides=["foot_lift=0.1"])
    c = go2_contract(cfg)
    assert len(c.foot_lift) == 12 and c.gait_offsets == tuple(C.GAIT_OFFSETS) and c.gait_duty == C.GAIT_DUTY
    PolicyContract.from_json(c.to_json()).check_matches(c)
    with pytest.raises(ContractError, match="'foot_lift'"):
        go2_contract().check_matches(c)  # a generator policy is refused by a robot without one
    old = json.loads(go2_contract().to_json())
    for k in ("foot_lift", "gait_offsets", "gait_duty", "lift_moving_threshold"):
        old.pop(k)  # a file exported before these fields
    PolicyContract.from_json(json.dumps(old)).check_matches(go2_contract())
    with pytest.raises(ContractError, match="'foot_lift' has 11"):
        dataclasses.replace(c, foot_lift=c.foot_lift[:11])
    with pytest.raises(ContractError, match="'gait_offsets'"):
        dataclasses.replace(c, gait_offsets=())
    with pytest.raises(ConfigError, match="foot_lift"):
        load_go2_config(overrides=["foot_lift=0.3"])
