"""Go2 joystick env: model facts, standing under PD, observation/reward contracts, termination,
domain randomization (ranges and effect on the physics) and auto-reset. Small N, one thread."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

from sim.go2 import constants as C
from sim.go2 import randomize as R
from sim.go2.config import (
    DEFAULT_CONFIG_PATH,
    CommandConfig,
    DomainRandConfig,
    Go2EnvConfig,
    RewardConfig,
    load_go2_config,
)
from sim.go2.env import Go2VecEnv
from sim.go2.model import build_model
from sim.go2.obs import OBS_DIM, OBS_LAYOUT, base_kinematics, obs_slices
from sim.go2.rewards import REWARD_TERMS
from som_robot.config import ConfigError, to_dict
from som_robot.envs.vec_env import StepResult, VecEnv

NO_DR = DomainRandConfig(enabled=False)
# DR on, but only the parameter under test varies.
QUIET_DR = DomainRandConfig(friction=(0.8, 0.8), added_mass=(0.0, 0.0), com_offset=(0.0, 0.0),
                            motor_strength=(1.0, 1.0), kp_scale=(1.0, 1.0), kd_scale=(1.0, 1.0),
                            latency_steps=(0, 0), push_interval_s=0.0, obs_noise={}, init_joint_noise=0.0)


def make_env(n: int = 4, seed: int = 0, **cfg_kw: object) -> Go2VecEnv:
    return Go2VecEnv(Go2EnvConfig(**cfg_kw), num_envs=n, seed=seed, nthread=1)


def zeros(env: Go2VecEnv) -> torch.Tensor:
    return torch.zeros(env.num_envs, env.act_dim)


def test_model_has_12_actuators_in_documented_order() -> None:
    m = build_model()
    assert (m.nq, m.nv, m.nu) == (19, 18, 12)
    assert tuple(m.joint(i).name for i in range(1, m.njnt)) == C.JOINT_NAMES
    # actuator i drives joint i+1 (after the free joint), so ctrl columns follow JOINT_NAMES
    assert [int(m.actuator_trnid[i, 0]) for i in range(m.nu)] == list(range(1, 13))
    assert np.allclose(m.actuator_ctrlrange[:, 1], np.tile([23.7, 23.7, 45.43], 4))
    assert m.opt.timestep == pytest.approx(C.SIM_DT)
    assert C.DECIMATION == 10
    assert abs(C.CTRL_DT - 0.02) < 1e-12
    key = m.key("home")
    assert np.all(key.ctrl == 0) and np.allclose(key.qpos[7:], C.DEFAULT_JOINT_POS)
    for name in (*C.FOOT_CONTACT_SENSORS, *C.LEG_COLLISION_SENSORS, C.BASE_CONTACT_SENSOR):
        assert m.sensor(name).type == mujoco.mjtSensor.mjSENS_CONTACT
    assert all(m.site(s).id >= 0 for s in C.FOOT_SITES)


def test_standing_at_default_pose_keeps_base_height() -> None:
    env = make_env(domain_rand=NO_DR)
    env.reset(0)
    for _ in range(int(2.0 / C.CTRL_DT)):
        res = env.step(zeros(env))
        assert not res.terminated.any()
    qpos, qvel = env.sim.qpos.numpy(), env.sim.qvel.numpy()
    z = qpos[:, 2]
    assert np.all(z > 0.8 * C.NOMINAL_BASE_HEIGHT) and np.all(z < C.NOMINAL_BASE_HEIGHT + 0.03), z
    assert np.abs(qpos[:, 7:] - C.DEFAULT_JOINT_POS).max() < 0.2
    assert np.abs(qvel).max() < 0.05  # settled, not oscillating


def test_obs_shape_layout_and_finite() -> None:
    assert OBS_DIM == 47 and [t.name for t in OBS_LAYOUT][:2] == ["gravity", "gyro"]
    env = make_env(n=3)
    assert isinstance(env, VecEnv)
    obs = env.reset(1)
    assert obs.shape == (3, 47) and obs.dtype == torch.float32 and torch.isfinite(obs).all()
    g = obs[:, obs_slices()["gravity"]].numpy()
    assert np.allclose(g, [0, 0, -1], atol=0.2)  # upright at reset (plus noise)
    res = env.step(torch.rand(3, 12) * 2 - 1)
    assert isinstance(res, StepResult)
    for x in (res.obs, res.final_obs):
        assert x.shape == (3, 47) and torch.isfinite(x).all()
    la = obs_slices()["last_action"]
    assert np.allclose(res.obs[:, la].numpy(), res.final_obs[:, la].numpy())


def test_reward_terms_match_config_and_are_logged() -> None:
    cfg = Go2EnvConfig()
    assert set(REWARD_TERMS) == set(cfg.reward.scales)
    env = make_env(n=2, reward=replace(cfg.reward, composition="sum"))
    res = env.step(zeros(env))
    logged = {k.removeprefix("reward/") for k in res.log if k.startswith("reward/")}
    assert logged == set(cfg.reward.scales) | {"termination"}
    total = sum(v for k, v in res.log.items() if k.startswith("reward/"))
    assert total == pytest.approx(float(res.reward.mean()), abs=1e-6)
    assert {"tracking/lin_vel_error", "dr/friction", "dr/motor_strength", "dr/latency"} <= set(res.log)
    with pytest.raises(ConfigError, match="scales"):
        RewardConfig(scales={"tracking_lin_vel": 1.0})


@pytest.mark.parametrize(("from_level", "level", "charged"), [(0.0, 0.0, True), (0.5, 0.25, False), (0.5, 0.5, True)])
def test_upside_down_base_terminates_and_resets(from_level: float, level: float, charged: bool) -> None:
    """A fall ends the episode with the reset obs returned, and costs the termination penalty once the
    curriculum has reached `termination_from_level` (before that only the lost future reward)."""
    env = make_env(n=2, domain_rand=NO_DR, reward=replace(RewardConfig(), termination_penalty=0.5,
                                                          termination_from_level=from_level))
    env.reset(0)
    env.cmd_level = level
    env.sim.qpos[0, 2] = 0.15
    env.sim.qpos[0, 3:7] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # rolled 180°: on its back
    res = env.step(zeros(env))
    assert res.terminated.tolist() == [True, False] and not res.truncated.any()
    assert len(res.episode_returns) == 1 and res.episode_lengths == [1]
    pen = env.cfg.reward.termination_penalty if charged else 0.0
    if charged:
        assert float(res.reward[0]) <= -pen + 1e-6 < float(res.reward[1])  # a fall costs the penalty
    else:
        assert float(res.reward[0]) >= 0.0  # product composition: no negative reward without the penalty
    assert res.log["reward/termination"] == pytest.approx(-pen / 2)
    g = obs_slices()["gravity"]
    assert res.final_obs[0, g][2] > 0.9  # gravity points "up" in the flipped base frame
    assert res.obs[0, g][2] < -0.9  # the returned obs is already the reset, upright env
    assert env.ep_len.tolist() == [0, 1]


@pytest.mark.parametrize(("keep", "from_level", "level", "kept"),
                         [(True, 0.0, 1.0, True), (False, 0.0, 1.0, False), (True, 1.0, 0.75, False),
                          (True, 1.0, 1.0, True)])
def test_keep_on_fall_keeps_a_fallen_envs_command_and_only_its(keep: bool, from_level: float, level: float,
                                                                kept: bool) -> None:
    """Env 0 falls, env 1 times out, env 2 runs on: with keep_on_fall only env 0's command survives its reset,
    and with keep_on_fall_from_level only once the curriculum has reached that level."""
    env = make_env(n=3, domain_rand=NO_DR, command=CommandConfig(curriculum=False, stand_prob=0.0, zero_below=0.0,
                                                                 keep_on_fall=keep,
                                                                 keep_on_fall_from_level=from_level))
    env.reset(0)
    env.cmd_level = level
    before = env.commands.clone()
    env.sim.qpos[0, 2] = 0.15
    env.sim.qpos[0, 3:7] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # on its back
    env.ep_len[1] = env.max_episode_steps - 1
    res = env.step(zeros(env))
    assert res.terminated.tolist() == [True, False, False] and res.truncated.tolist() == [False, True, False]
    assert torch.equal(env.commands[0], before[0]) == kept
    assert not torch.equal(env.commands[1], before[1]) and torch.equal(env.commands[2], before[2])
    assert torch.allclose(res.obs[:, obs_slices()["command"]], env.commands.float())  # what the policy sees next


def test_push_kicks_the_base() -> None:
    dr = replace(QUIET_DR, push_interval_s=C.CTRL_DT, push_vel=1.0)
    pushed, calm = make_env(n=4, domain_rand=dr), make_env(n=4, domain_rand=QUIET_DR)
    for env in (pushed, calm):
        env.reset(0)
        for _ in range(3):
            env.step(zeros(env))
    speed = [float(e.sim.qvel[:, :2].norm(dim=1).mean()) for e in (pushed, calm)]
    assert speed[0] > 0.2 > speed[1], speed


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_running_start_sets_the_base_moving_at_its_command(share: float) -> None:
    """command.running_start: that share of resets leaves the base at the env's command (base frame: vx, vy and
    yaw rate, whatever the spawn yaw), the others at rest; and the running bases go on where the command points."""
    n = 64
    env = make_env(n=n, domain_rand=NO_DR, command=CommandConfig(curriculum=False, stand_prob=0.0, zero_below=0.0,
                                                                 running_start=share))
    env.reset(0)
    rot, lin_vel, ang_vel, _ = base_kinematics(env.sim.qpos, env.sim.qvel)
    want = env.commands.to(lin_vel.dtype)
    moving = lin_vel.norm(dim=1) > 0
    assert torch.allclose(lin_vel[moving, :2], want[moving, :2], atol=1e-5)
    assert torch.allclose(ang_vel[moving, 2], want[moving, 2], atol=1e-5)
    assert not lin_vel[~moving].any() and not ang_vel[~moving].any() and not env.sim.qvel[:, 6:].any()
    assert abs(float(moving.float().mean()) - share) <= 0.2
    p0 = env.sim.qpos[:, :2].clone()
    for _ in range(5):  # 0.1 s with the legs held at the default pose
        env.step(zeros(env))
    world_cmd = (rot[:, :2, :2] @ want[:, :2, None]).squeeze(-1)  # the spawn is a pure yaw
    speed = world_cmd.norm(dim=1)
    along = ((env.sim.qpos[:, :2] - p0) * world_cmd).sum(dim=1) / speed.clamp_min(1e-9)
    clear = speed > 0.2
    assert (along[moving & clear] > 0.2 * 0.1 * speed[moving & clear]).all(), along  # a fifth of the way, at least
    assert (along[~moving & clear].abs() < 0.01).all(), along


def test_dr_samplers_stay_in_range() -> None:
    rng, cfg, n = np.random.default_rng(0), DomainRandConfig(), 2000
    for fn, rng_ in ((R.sample_friction, cfg.friction), (R.sample_added_mass, cfg.added_mass),
                     (R.sample_com_offset, cfg.com_offset), (R.sample_motor_strength, cfg.motor_strength),
                     (R.sample_kp_scale, cfg.kp_scale), (R.sample_kd_scale, cfg.kd_scale)):
        x = fn(rng, cfg, n)
        assert x.shape[0] == n and x.min() >= rng_[0] and x.max() <= rng_[1] and x.std() > 0, fn.__name__
    lat = R.sample_latency(rng, cfg, n)
    assert set(lat.tolist()) == set(range(cfg.latency_steps[0], cfg.latency_steps[1] + 1))
    push = R.sample_push(rng, cfg, n)
    assert push.shape == (n, 2) and np.abs(push).max() <= cfg.push_vel
    assert np.abs(R.sample_init_joint_offset(rng, cfg, n)).max() <= cfg.init_joint_noise
    noise = R.sample_obs_noise(rng, cfg, n, {t.name: t.dim for t in OBS_LAYOUT})
    assert set(noise) == set(cfg.obs_noise)
    assert all(np.abs(v).max() <= cfg.obs_noise[k] for k, v in noise.items())
    off = R.sample_all(rng, NO_DR, 5)
    assert np.all(off.motor_strength == 1) and np.all(off.added_mass == 0) and np.all(off.latency == 0)


def test_dr_reaches_the_simulation() -> None:
    env = make_env(n=8, domain_rand=DomainRandConfig())
    dyn = {k: v.numpy() for k, v in env.sim.dynamics().items()}
    dr = {k: v.numpy() for k, v in vars(env.dr).items()}
    assert np.allclose(dyn["friction"], dr["friction"][:, None])
    assert np.allclose(dyn["mass"], env.sim.nominal_mass + dr["added_mass"])
    assert np.allclose(dyn["ipos"], env.sim.nominal_ipos.numpy() + dr["com_offset"])
    assert np.ptp(dyn["mass"]) > 0.1 and np.ptp(dyn["friction"]) > 0.05


def test_weaker_motors_sag_more() -> None:
    heights = []
    for s in (1.0, 0.5):
        env = make_env(n=2, domain_rand=replace(QUIET_DR, motor_strength=(s, s)))
        env.reset(0)
        for _ in range(50):
            env.step(zeros(env))
        heights.append(float(env.sim.qpos[:, 2].mean()))
    assert heights[0] - heights[1] > 0.02, heights


def test_latency_delays_the_action() -> None:
    moved = {}
    for lat in (0, 2):
        env = make_env(n=2, domain_rand=replace(QUIET_DR, latency_steps=(lat, lat)))
        env.reset(0)
        q0, steps = env.sim.qpos[:, 7:].clone(), []
        for _ in range(3):
            env.step(torch.ones(2, 12))
            steps.append(float((env.sim.qpos[:, 7:] - q0).abs().max()))
        moved[lat] = steps
    assert moved[0][0] > 0.03  # the target moved 0.25 rad: joints follow within one policy step
    assert max(moved[2][:2]) < 1e-6 and moved[2][2] > 0.03, moved  # ... two steps later when delayed


def test_auto_reset_reports_episode_returns() -> None:
    env = make_env(n=4, episode_length_s=0.1, domain_rand=NO_DR)  # 5 policy steps
    env.reset(0)
    rewards = []
    for _ in range(5):
        res = env.step(zeros(env))
        rewards.append(res.reward.numpy())
    assert res.truncated.all() and not res.terminated.any()
    assert res.episode_lengths == [5] * 4
    assert np.allclose(res.episode_returns, np.sum(rewards, axis=0), atol=1e-5)
    assert env.ep_len.tolist() == [0] * 4 and bool((env.ep_ret == 0).all())
    res = env.step(zeros(env))
    assert res.episode_returns == [] and not res.truncated.any()


def test_rough_terrain_builds_and_steps() -> None:
    env = make_env(n=2, terrain="rough")
    assert env.model.nhfield == 1
    for _ in range(5):
        res = env.step(torch.zeros(2, 12))
    assert torch.isfinite(res.obs).all()


def test_yaml_defaults_equal_dataclass_defaults() -> None:
    assert to_dict(load_go2_config(DEFAULT_CONFIG_PATH)) == to_dict(Go2EnvConfig())
    with pytest.raises(ConfigError, match="frction"):
        load_go2_config(overrides=["domain_rand.frction=1"])


def test_diverged_simulation_terminates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo appends its warning to ./MUJOCO_LOG.TXT
    env = make_env(n=2, domain_rand=NO_DR)
    env.sim.qvel[1] = 1e12  # MuJoCo resets a diverged simulation and counts a warning
    res = env.step(zeros(env))
    assert res.terminated.tolist() == [False, True]
    assert not env.sim.unstable().any()  # our reset clears the counters


def test_contract_matches_the_model_and_the_env() -> None:
    from sim.go2.contract import go2_contract
    from sim.go2.model import build_model

    c = go2_contract()
    m = build_model()
    assert c.obs_dim == 47 and c.act_dim == m.nu == 12 and c.gait_freq == C.GAIT_FREQ
    assert go2_contract(Go2EnvConfig(gait_freq=3.0)).gait_freq == 3.0  # a run may change the clock
    assert c.torque_limits == tuple(float(x) for x in m.actuator_ctrlrange[:, 1])
    names = tuple(m.joint(m.actuator_trnid[i, 0]).name for i in range(m.nu))
    assert c.joint_names == names
    assert c.decimation == 10


UNITREE_POSE = (0.0, 0.8, -1.5, 0.0, 0.8, -1.5, 0.0, 1.0, -1.5, 0.0, 1.0, -1.5)  # unitree_rl_gym's Go2 pose


def test_a_configured_default_pose_is_what_actions_and_observations_are_about() -> None:
    """`default_pose` (rear thighs further back): a zero action holds that pose standing, not the robot's, the
    joint_pos observation is measured from it, a reset starts its longer legs on the floor (not in it), the
    contract carries it, and a pose that does not mirror left-right is refused (runner.mirror needs it)."""
    from sim.go2.contract import go2_contract

    env = make_env(n=2, domain_rand=NO_DR, default_pose=UNITREE_POSE)
    assert go2_contract(env.cfg).default_pose == UNITREE_POSE
    obs = env.reset(seed=0)
    z0 = env.sim.qpos[:, 2].clone()
    for _ in range(100):  # 2 s of zero actions
        res = env.step(torch.zeros(2, 12))
    q = env.sim.qpos[:, 7:].double()
    assert not res.terminated.any()
    pose, robot_pose = torch.tensor(UNITREE_POSE).double(), torch.tensor(C.DEFAULT_JOINT_POS).double()
    thighs = [1, 4, 7, 10]  # held within 0.05 rad (the calves sag ~0.1-0.15 under the body's weight at Kp 40)
    assert (q[:, thighs] - pose[thighs]).abs().max() < 0.05, q
    assert ((q - pose).norm(dim=1) < 0.7 * (q - robot_pose).norm(dim=1)).all(), q  # nearer than to the robot's
    jp = obs_slices()["joint_pos"]
    assert obs[:, jp].abs().max() < 0.01 and res.obs[:, jp].abs().max() < 0.25
    robot = make_env(n=2, domain_rand=NO_DR)
    robot.reset(seed=0)
    assert (z0 - robot.sim.qpos[:, 2] > 0.03).all()  # 4.6 cm longer legs start higher, feet on the floor
    for _ in range(100):
        robot.step(torch.zeros(2, 12))
    assert env.sim.qpos[:, 2].min() > robot.sim.qpos[:, 2].max() + 0.02  # and stand taller
    with pytest.raises(ConfigError, match="default_pose"):
        Go2EnvConfig(default_pose=(0.1,) + UNITREE_POSE[1:])


def test_log_scalars_are_built_only_when_asked() -> None:
    """want_log False (the runner's setting between logged steps): no reward-term reductions, only the
    overflow count the env needs anyway; the step's physics and rewards are the same."""
    a, b = make_env(n=2, domain_rand=NO_DR), make_env(n=2, domain_rand=NO_DR)
    b.want_log = False
    for _ in range(3):
        ra, rb = a.step(zeros(a)), b.step(zeros(b))
    assert "reward/tracking" in ra.log and "curriculum/patience_raises" in ra.log
    assert set(rb.log) == {"sim/overflow", "curriculum/level"}
    assert torch.equal(ra.reward, rb.reward) and torch.equal(ra.obs, rb.obs)


def test_action_scale_sets_the_pd_targets_box() -> None:
    """q* = default + action_scale·a, with the box from the config (part of the exported contract)."""
    from sim.go2.contract import go2_contract

    for scale in (C.ACTION_SCALE, 0.5):
        env = make_env(2, action_scale=scale, domain_rand=NO_DR)
        env.step(torch.tensor([[1.0] * 12, [-1.0] * 12]))
        target = env.sim.ctrl / env._kp  # the actuators' ctrl is kp·q*
        np.testing.assert_allclose(target[0].numpy(), C.DEFAULT_JOINT_POS + scale, atol=1e-9)
        np.testing.assert_allclose(target[1].numpy(), C.DEFAULT_JOINT_POS - scale, atol=1e-9)
        assert go2_contract(env.cfg).action_scale == scale
        env.close()
    with pytest.raises(ConfigError, match="action_scale"):
        Go2EnvConfig(action_scale=1.5)
