"""The Go2 left-right mirror (sim.go2.symmetry) against MuJoCo: a mirrored start under mirrored actions
stays the mirror image, observation and reward (to 1e-3: the trunk's inertia axes are mirrored to ~1e-3 in the
MJCF, about 3e-4 in the observation after a step); the clock and the stance schedule mirror by half a cycle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sim.go2 import constants as C
from sim.go2.config import DomainRandConfig, Go2EnvConfig, RewardConfig
from sim.go2.env import Go2VecEnv
from sim.go2.obs import obs_slices, phase_features
from sim.go2.symmetry import GO2_MIRROR, SignedPermutation, clock_shift

LEG_MIRROR = np.array([C.LEGS.index(m) for m in ("FR", "FL", "RR", "RL")])


def test_maps_are_involutions_with_the_documented_signs() -> None:
    rng = np.random.default_rng(0)
    for m in (GO2_MIRROR.obs, GO2_MIRROR.act):
        x = rng.normal(size=(5, len(m.index)))
        assert np.allclose(m(m(x)), x)
        assert np.allclose(m(torch.as_tensor(x)).numpy(), m(x))  # torch and numpy agree
    s = obs_slices()
    obs = np.zeros(len(GO2_MIRROR.obs.index))
    obs[s["command"]] = [0.5, 0.3, -0.8]
    obs[s["gravity"]] = [0.1, 0.2, -0.97]
    obs[s["joint_pos"].start + 3] = 0.25  # FR hip
    obs[s["joint_pos"].start + 4] = 0.1  # FR thigh
    out = GO2_MIRROR.obs(obs)
    assert np.allclose(out[s["command"]], [0.5, -0.3, 0.8])
    assert np.allclose(out[s["gravity"]], [0.1, -0.2, -0.97])
    assert out[s["joint_pos"].start + 0] == pytest.approx(-0.25)  # → FL hip, sign flipped
    assert out[s["joint_pos"].start + 1] == pytest.approx(0.1)  # → FL thigh
    with pytest.raises(ValueError, match="own inverse"):
        SignedPermutation(np.array([1, 2, 0]), np.ones(3))


def test_clock_mirrors_by_half_a_cycle_and_the_stance_schedule_follows() -> None:
    assert clock_shift() == 0.5
    phase = np.linspace(0.0, 1.0, 50, endpoint=False)
    clock = obs_slices()["gait_phase"]
    obs = np.zeros((50, len(GO2_MIRROR.obs.index)))
    obs[:, clock] = phase_features(phase)
    assert np.allclose(GO2_MIRROR.obs(obs)[:, clock], phase_features((phase + 0.5) % 1.0))
    stance = ((phase[:, None] + C.GAIT_OFFSETS) % 1.0) < C.GAIT_DUTY
    shifted = (((phase[:, None] + 0.5) + C.GAIT_OFFSETS) % 1.0) < C.GAIT_DUTY
    assert np.array_equal(shifted[:, LEG_MIRROR], stance)  # mirror leg at φ + ½ = this leg at φ


def _mirror_state(qpos: torch.Tensor, qvel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reflection in the world x-z plane: y flips, the wxyz quaternion keeps w and y, the free joint's angular
    velocity (an axial vector) keeps y, the joints follow the action mirror."""
    j = GO2_MIRROR.act
    mq, mv = qpos.clone(), qvel.clone()
    mq[1] = -qpos[1]
    mq[3:7] = qpos[3:7] * torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=qpos.dtype)
    mq[7:] = j(qpos[7:])
    mv[:3] = qvel[:3] * torch.tensor([1.0, -1.0, 1.0], dtype=qvel.dtype)
    mv[3:6] = qvel[3:6] * torch.tensor([-1.0, 1.0, -1.0], dtype=qvel.dtype)
    mv[6:] = j(qvel[6:])
    return mq, mv


def test_mujoco_trajectory_of_a_mirrored_start_is_the_mirror_image() -> None:
    scales = dict(RewardConfig().scales) | {"gait_contact": 0.0, "swing_height": 0.0}  # the clock is not shifted
    cfg = Go2EnvConfig(domain_rand=DomainRandConfig(enabled=False), reward=RewardConfig(scales=scales))
    env = Go2VecEnv(cfg, num_envs=2, seed=3, nthread=1)
    env.reset(seed=3)
    sim = env.sim
    ids = torch.tensor([0, 1])
    q0, v0 = sim.qpos[0].clone(), sim.qvel[0].clone()
    q0[7:] += torch.linspace(-0.2, 0.2, 12, dtype=q0.dtype)  # an asymmetric pose
    v0[3:6] = torch.tensor([0.3, -0.2, 0.5], dtype=v0.dtype)  # and a tumble
    v0[:3] = torch.tensor([0.2, 0.4, 0.0], dtype=v0.dtype)
    mq, mv = _mirror_state(q0, v0)
    sim.reset(ids, torch.stack([q0, mq]), torch.stack([v0, mv]))
    cmd = torch.tensor([0.6, 0.25, -0.5], dtype=env.commands.dtype)
    env.commands[:] = torch.stack([cmd, cmd * torch.tensor([1.0, -1.0, -1.0], dtype=cmd.dtype)])
    gen = torch.Generator().manual_seed(0)
    clock = obs_slices()["gait_phase"]
    keep = np.setdiff1d(np.arange(env.obs_dim), np.arange(clock.start, clock.stop))
    steps = 0
    for _ in range(30):
        a = torch.rand(12, generator=gen) * 1.6 - 0.8
        res = env.step(torch.stack([a, GO2_MIRROR.act(a)]))
        if bool((res.terminated | res.truncated).any()):
            break
        steps += 1
        mirrored = GO2_MIRROR.obs(res.obs[0])
        assert torch.allclose(mirrored[keep], res.obs[1][keep], atol=1e-3), (steps, (mirrored - res.obs[1]).abs().max())
        assert float(res.reward[0]) == pytest.approx(float(res.reward[1]), rel=1e-3, abs=1e-6)
    assert steps >= 20
    assert float((res.obs[0] - res.obs[1]).abs().max()) > 0.05  # the two envs really differ: not a trivial pass
