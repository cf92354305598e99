"""The robot builds the policy input exactly as training did (the classic sim-to-real observation mismatch).

The daemon's `ObservationBuilder`, fed the physical signals a robot provides (joint encoders, base
orientation and body-frame angular velocity computed here by MuJoCo's own kinematics, not by the env's
code), must reproduce the training env's observation for the same state, and so the same ONNX action.
"""

import dataclasses

import mujoco
import numpy as np
import torch

from controllers.observation import ObservationBuilder, ObsInputs, clock_phase
from controllers.robot_config import load_robot_config
from sim.go2 import constants as C
from sim.go2.config import load_go2_config
from sim.go2.env import Go2VecEnv


def test_daemon_observation_equals_the_training_observation() -> None:
    cfg = load_go2_config()
    cfg = dataclasses.replace(cfg, domain_rand=dataclasses.replace(cfg.domain_rand, enabled=False))
    env = Go2VecEnv(cfg, num_envs=3, seed=4, nthread=1)
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    contract = load_robot_config().contract
    builder = ObservationBuilder(contract)
    steps_since_reset = np.zeros(env.num_envs, dtype=int)  # the daemon's own clock count, kept by the test
    data = mujoco.MjData(env.model)
    base = env.model.body(C.BASE_BODY).id
    checked, phases = 0, []
    for step in range(40):
        res = env.step(torch.from_numpy(rng.uniform(-0.6, 0.6, size=(3, 12))).float())
        done = (res.terminated | res.truncated).numpy()
        steps_since_reset = np.where(done, 0, steps_since_reset + 1)
        if step % 10 != 9:
            continue
        train_obs = env._observe()  # noise-free training observation of the current state
        for i in range(env.num_envs):
            data.qpos[:], data.qvel[:] = env.sim.qpos[i].numpy(), env.sim.qvel[i].numpy()
            mujoco.mj_forward(env.model, data)
            rot = data.xmat[base].reshape(3, 3)
            vel = np.zeros(6)
            mujoco.mj_objectVelocity(env.model, data, mujoco.mjtObj.mjOBJ_XBODY, base, vel, 1)  # body frame [ang, lin]
            inputs = ObsInputs(gravity_body=rot.T @ np.array([0.0, 0.0, -1.0]), ang_vel_body=vel[:3],
                               lin_vel_body=vel[3:], command=env.commands[i].numpy(), q=data.qpos[7:].copy(),
                               qd=data.qvel[6:].copy(), last_action=env.last_action[i].numpy(),
                               gait_phase=clock_phase(int(steps_since_reset[i]), contract))
            np.testing.assert_allclose(builder.build(inputs), train_obs[i].numpy(), rtol=1e-5, atol=1e-5)
            phases.append(inputs.gait_phase)
            checked += 1
    env.close()
    assert checked == 12
    assert contract.gait_freq > 0 and max(phases) > 0.1  # the clock term was exercised away from phase 0


def test_daemon_joint_targets_equal_the_training_targets_with_the_foot_lift_generator() -> None:
    """The daemon's action → q_des map (CommandShaper) adds the same trajectory generator as the env, from its
    own clock count: same action, clock and command, same PD targets (moving and standing commands)."""
    from controllers.command import CommandShaper
    from sim.go2.contract import go2_contract

    cfg = load_go2_config(overrides=["foot_lift=0.1", "domain_rand.enabled=false", "command.curriculum=false",
                                     "command.resample_interval_s=1000"])
    env = Go2VecEnv(cfg, num_envs=3, seed=5, nthread=1)
    env.reset(seed=5)
    env.commands[:] = torch.tensor([[0.6, 0.1, 0.0], [0.0, 0.0, -0.7], [0.0, 0.0, 0.0]], dtype=env.dtype)
    robot = dataclasses.replace(load_robot_config(), contract=go2_contract(cfg))
    shaper = CommandShaper(robot)
    targets: list[np.ndarray] = []
    physics = env._physics
    env._physics = lambda target: (targets.append(target.double().numpy().copy()), physics(target))[1]  # type: ignore[method-assign]
    rng = np.random.default_rng(1)
    lifted = 0.0
    for k in range(30):
        action = rng.uniform(-1.2, 1.2, size=(3, 12))  # beyond the box: both sides clip
        cmds = env.commands.double().numpy().copy()
        env.step(torch.from_numpy(action).float())
        for i in range(3):
            q = shaper.action_to_q(action[i].astype(np.float32).astype(np.float64),
                                   clock_phase(k, robot.contract), cmds[i])
            np.testing.assert_allclose(q, targets[-1][i], rtol=0, atol=1e-6)
        plain = shaper.action_to_q(np.clip(action[0], -1, 1))
        lifted = max(lifted, float(np.abs(targets[-1][0] - plain).max()))
    env.close()
    assert lifted > 0.2  # the generator was exercised, not just the box
