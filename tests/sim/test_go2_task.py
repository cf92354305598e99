"""The joystick task's learnability properties: no standing attractor, the trot clock, the curriculum.

Real MuJoCo envs, one thread: a robot holding its default pose must earn nothing under any moving
command and be rewarded under a stand command; the clock's stance schedule is a diagonal trot that the
gait terms pay for; the command ranges widen only when tracking is good.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sim.go2 import constants as C
from sim.go2.config import CommandConfig, DomainRandConfig, Go2EnvConfig
from sim.go2.env import Go2VecEnv
from sim.go2.obs import obs_slices
from sim.go2.task import command_ranges, sample_commands
from som_robot.config import ConfigError

NO_DR = DomainRandConfig(enabled=False)


def standing_reward(cmd: tuple[float, float, float], steps: int = 50) -> float:
    """Mean per-step reward of 4 Go2s holding the default pose under a fixed command (after settling)."""
    cfg = Go2EnvConfig(domain_rand=NO_DR, command=CommandConfig(curriculum=False, resample_interval_s=100.0))
    env = Go2VecEnv(cfg, num_envs=4, seed=0, nthread=1)
    env.reset(0)
    rewards = []
    for i in range(steps):
        env.commands[:] = torch.tensor(cmd)
        res = env.step(torch.zeros(4, 12))
        assert not res.terminated.any()
        if i >= 10:
            rewards.append(float(res.reward.mean()))
    env.close()
    return float(np.mean(rewards))


@pytest.mark.parametrize("cmd", [(0.5, 0.0, 0.0), (1.0, 0.0, 0.0), (-0.5, 0.3, 0.0), (0.0, 0.0, 0.8)])
def test_standing_still_earns_nothing_under_a_moving_command(cmd: tuple[float, float, float]) -> None:
    stand = standing_reward((0.0, 0.0, 0.0))
    assert stand > 0.02  # the stand command pays for standing (tracking + all feet down)
    assert standing_reward(cmd) < 0.05 * stand, cmd  # only what residual sway in the commanded direction earns


@pytest.mark.parametrize("freq", [C.GAIT_FREQ, 3.0])
def test_trot_clock_schedules_diagonal_pairs_and_is_in_the_observation(freq: float) -> None:
    """The clock runs at the config's `gait_freq`, which the contract carries to the daemon's clock."""
    from controllers.observation import clock_phase
    from sim.go2.contract import go2_contract

    env = Go2VecEnv(Go2EnvConfig(domain_rand=NO_DR, gait_freq=freq), num_envs=2, seed=0, nthread=1)
    obs = env.reset(0)
    sl = obs_slices()["gait_phase"]
    assert np.allclose(obs[:, sl].numpy(), [[1.0, 0.0]] * 2, atol=1e-6)  # phase 0 at the episode start
    steps = int(round(0.25 / freq / C.CTRL_DT)) + 1  # a quarter cycle (rounded to policy steps)
    for _ in range(steps):
        res = env.step(torch.zeros(2, 12))
    phase = C.gait_phase(steps, freq)
    assert phase == pytest.approx(clock_phase(steps, go2_contract(env.cfg)))  # the daemon runs the same clock
    assert np.allclose(res.obs[:, sl].numpy(), [np.cos(2 * np.pi * phase), np.sin(2 * np.pi * phase)], atol=1e-5)
    # over one cycle each leg is in stance half the time; FL with RR and FR with RL
    cycle = np.arange(int(round(1.0 / (freq * C.CTRL_DT))))
    stance = env._stance(C.gait_phase(cycle, freq))
    assert np.allclose(stance.mean(axis=0), C.GAIT_DUTY, atol=1.01 / len(cycle))  # 25 (2 Hz) or 17 steps per cycle
    assert (stance[:, 0] == stance[:, 3]).all() and (stance[:, 1] == stance[:, 2]).all()
    assert (stance[:, 0] != stance[:, 1]).all()
    env.close()
    with pytest.raises(ConfigError, match="gait_freq"):
        Go2EnvConfig(gait_freq=0.0)


def test_command_curriculum_starts_forward_and_widens_only_with_tracking() -> None:
    c = CommandConfig()
    rng = np.random.default_rng(0)
    first = sample_commands(rng, c, 4000, level=0.0)
    assert first[:, 0].min() >= c.initial_lin_vel_x[0] and np.all(first[:, 1:] == 0)  # forward only, never zero
    full = sample_commands(rng, c, 4000, level=1.0)
    assert full[:, 0].min() < -0.8 and np.abs(full[:, 1]).max() > 0.4 and np.abs(full[:, 2]).max() > 0.8
    assert 0.05 < np.mean(np.all(full == 0, axis=1)) < 0.3  # stand commands (stand_prob + zeroed small v_xy)
    assert command_ranges(replace(c, curriculum=False), 0.0)[0] == c.lin_vel_x
    # A robot that stands never tracks, so the level stays at 0; a perfect tracker raises it every interval.
    cfg = Go2EnvConfig(domain_rand=NO_DR, command=replace(c, curriculum_interval_s=0.2))
    env = Go2VecEnv(cfg, num_envs=2, seed=0, nthread=1)
    env.reset(0)
    for _ in range(30):
        env.step(torch.zeros(2, 12))
    assert env.cmd_level == 0.0
    for _ in range(3):
        for _ in range(env._curr_every):
            env._curriculum(np.ones(2), np.zeros(2, dtype=bool))
    assert env.cmd_level == pytest.approx(3 * c.curriculum_step)
    env.close()
    # A fall gate of 10 per env-minute: one fall in an interval of 2 env-seconds (30/min) holds the level,
    # the same tracking without falls raises it.
    gated = Go2EnvConfig(domain_rand=NO_DR, command=replace(c, curriculum_interval_s=1.0, curriculum_max_falls=10.0))
    env = Go2VecEnv(gated, num_envs=2, seed=0, nthread=1)
    for i in range(env._curr_every):
        env._curriculum(np.ones(2), np.array([i == 0, False]))
    assert env.cmd_level == 0.0
    for _ in range(env._curr_every):
        env._curriculum(np.ones(2), np.zeros(2, dtype=bool))
    assert env.cmd_level == pytest.approx(c.curriculum_step)
    env.close()


def test_curriculum_patience_raises_a_held_level_only_after_the_take_off() -> None:
    """A level held for `curriculum_patience_steps` env steps rises without the tracking bar, but only from
    `curriculum_patience_from_level` on: a standing policy at level 0 keeps its forward-only commands. The
    count of such rises and the steps held travel with the checkpoint's task state."""
    c = replace(CommandConfig(), curriculum_interval_s=0.2, curriculum_patience_steps=40)
    env = Go2VecEnv(Go2EnvConfig(domain_rand=NO_DR, command=c), num_envs=2, seed=0, nthread=1)
    every = env._curr_every  # 10 steps of 2 envs: 20 env steps per interval

    def intervals(k: int, track: float) -> None:
        for _ in range(k * every):
            env._curriculum(np.full(2, track), np.zeros(2, dtype=bool))

    intervals(10, 0.0)
    assert env.cmd_level == 0.0 and env.patience_raises == 0  # standing start: no patience
    intervals(1, 1.0)
    assert env.cmd_level == pytest.approx(0.25) and env.patience_raises == 0  # tracking took it off
    intervals(1, 0.0)
    assert env.cmd_level == pytest.approx(0.25)  # 20 of 40 env steps held
    intervals(1, 0.0)
    assert env.cmd_level == pytest.approx(0.5) and env.patience_raises == 1  # 40: patience ran out
    intervals(1, 0.0)
    state = env.state_dict()
    assert state["cmd_held_steps"] == 20 and state["patience_raises"] == 1
    fresh = Go2VecEnv(Go2EnvConfig(domain_rand=NO_DR, command=c), num_envs=2, seed=1, nthread=1)
    fresh.load_state_dict(state)
    for _ in range(every):
        fresh._curriculum(np.zeros(2), np.zeros(2, dtype=bool))
    assert fresh.cmd_level == pytest.approx(0.75) and fresh.patience_raises == 2  # the resume kept the count
    intervals(8, 0.0)
    assert env.cmd_level == 1.0 and env.patience_raises == 3  # and never past the full ranges
    env.close()
    fresh.close()
    off = Go2VecEnv(Go2EnvConfig(domain_rand=NO_DR, command=replace(c, curriculum_patience_steps=None)),
                    num_envs=2, seed=0, nthread=1)
    off.cmd_level = 0.5
    for _ in range(20 * every):
        off._curriculum(np.zeros(2), np.zeros(2, dtype=bool))
    assert off.cmd_level == 0.5  # off by default: only tracking raises the level
    off.close()
    with pytest.raises(ConfigError, match="curriculum_patience_steps"):
        CommandConfig(curriculum_patience_steps=0)


def test_gait_gate_takes_the_pay_away_from_trotting_in_place() -> None:
    """A robot that trots on the clock without moving, under a forward command: the ungated gait terms pay
    it (the local optimum SOM's run settled in), the tracking-gated ones do not; tracking still pays."""
    from sim.go2.config import RewardConfig
    from sim.go2.rewards import RewardState, compute_rewards

    n, phase = 64, np.linspace(0, 1, 64, endpoint=False)
    stance = ((phase[:, None] + C.GAIT_OFFSETS) % 1.0) < C.GAIT_DUTY
    z = np.zeros((n, 3))
    in_place = RewardState(command=np.tile([0.5, 0.0, 0.0], (n, 1)), lin_vel=z, ang_vel=z, gravity=z + [0, 0, -1],
                           torque_sq=np.zeros(n), action=np.zeros((n, 12)), last_action=np.zeros((n, 12)),
                           air_time=np.full((n, 4), 0.25), first_contact=stance, collisions=np.zeros(n),
                           joint_pos=np.tile(C.DEFAULT_JOINT_POS, (n, 1)), soft_lower=np.full(12, -9.0),
                           soft_upper=np.full(12, 9.0), default_pos=C.DEFAULT_JOINT_POS, contact=stance,
                           stance=stance, foot_height=0.08 * ~stance)
    ungated, _ = compute_rewards(in_place, RewardConfig(gait_gate="none"), C.CTRL_DT)
    gated, _ = compute_rewards(in_place, RewardConfig(gait_gate="tracking"), C.CTRL_DT)
    assert ungated.mean() > 0.01 and np.allclose(gated, 0.0)
    walking = replace(in_place, lin_vel=np.tile([0.5, 0.0, 0.0], (n, 1)))
    assert compute_rewards(walking, RewardConfig(gait_gate="tracking"), C.CTRL_DT)[0].mean() > ungated.mean()
