"""The one Go2 env on MuJoCo Warp vs on batched MuJoCo C, on Warp's CPU device: same actions from the same
state give the same trajectory, rewards and terminations; selected-env reset; DR per world; zero-copy state.

The first run compiles Warp kernels (~35 s on 2 cores, cached in ~/.cache/warp); later runs take seconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco_warp", reason="mujoco_warp (the [train] extra) is not installed")

import mujoco_warp as mjw  # noqa: E402

from sim.go2 import constants as C  # noqa: E402
from sim.go2.config import DomainRandConfig, Go2EnvConfig, TerminationConfig  # noqa: E402
from sim.go2.env import Go2VecEnv  # noqa: E402
from sim.go2.obs import obs_slices  # noqa: E402
from sim.tasks import ROBOT_TASKS  # noqa: E402
from som_robot.envs.registry import resolve_backend  # noqa: E402
from som_robot.envs.vec_env import VecEnv  # noqa: E402

NO_DR = Go2EnvConfig(domain_rand=DomainRandConfig(enabled=False))
# float32 (Warp) vs float64 (MuJoCo C): over 50 policy steps (1000 physics steps, feet in contact and
# moving) the measured worst qpos/obs gap is ~7e-6 and the reward gap ~5e-7. Contact-rich motion
# amplifies rounding differences over long horizons, hence a horizon of 50 steps and 10x margins.
Q_TOL, OBS_TOL, REW_TOL = 1e-4, 1e-4, 1e-5


def smooth_actions(n: int, steps: int, seed: int = 0) -> list[torch.Tensor]:
    """AR(1) random actions: smooth enough to walk-ish, varied enough to exercise contacts."""
    g, a, out = torch.Generator().manual_seed(seed), torch.zeros(n, C.NUM_JOINTS), []
    for _ in range(steps):
        a = (0.8 * a + 0.3 * torch.randn(n, C.NUM_JOINTS, generator=g)).clamp(-1, 1)
        out.append(a)
    return out


def warp_env(cfg: Go2EnvConfig, num_envs: int = 2, seed: int = 0, **kw: object) -> Go2VecEnv:
    return Go2VecEnv(cfg, num_envs=num_envs, seed=seed, backend="warp", **kw)  # type: ignore[arg-type]


def sync_state(cpu: Go2VecEnv, warp: Go2VecEnv) -> None:
    """Give the Warp env the CPU env's spawn state and commands (float64 → float32)."""
    warp.sim.qpos[:] = cpu.sim.qpos
    warp.sim.qvel[:] = cpu.sim.qvel
    warp.commands[:] = cpu.commands


def test_trajectories_match_the_cpu_backend() -> None:
    cpu, warp = Go2VecEnv(NO_DR, num_envs=2, seed=0, nthread=1), warp_env(NO_DR, num_envs=2, seed=0)
    assert cpu.backend == "cpu" and type(cpu) is type(warp)  # one env class, two simulators
    assert isinstance(warp, VecEnv) and warp.device == torch.device("cpu")
    cpu.reset(0)
    warp.reset(0)
    sync_state(cpu, warp)
    dq = dobs = drew = 0.0
    for a in smooth_actions(2, 50):
        rc, rw = cpu.step(a), warp.step(a)
        dq = max(dq, float((cpu.sim.qpos - warp.sim.qpos.double()).abs().max()))
        dobs = max(dobs, float((rc.obs - rw.obs).abs().max()))
        drew = max(drew, float((rc.reward - rw.reward).abs().max()))
        assert rc.terminated.tolist() == rw.terminated.tolist() and rc.truncated.tolist() == rw.truncated.tolist()
        assert rw.obs.dtype == torch.float32 and rw.reward.shape == (2,)
    print(f"max |qpos| gap {dq:.2e}, |obs| gap {dobs:.2e}, |reward| gap {drew:.2e}")
    assert dq < Q_TOL and dobs < OBS_TOL and drew < REW_TOL, (dq, dobs, drew)
    assert rc.log.keys() == rw.log.keys()
    assert all(abs(rc.log[k] - rw.log[k]) < 1e-4 for k in rc.log), {k: (rc.log[k], rw.log[k]) for k in rc.log}
    assert cpu.sim.qpos[:, 2].min() > 0.15  # still standing: the comparison covered contact-rich motion


def test_selected_env_reset_and_termination() -> None:
    env, twin = warp_env(NO_DR, num_envs=2, seed=1), warp_env(NO_DR, num_envs=2, seed=1)
    for e in (env, twin):
        e.reset(0)
        for _ in range(3):
            e.step(torch.zeros(2, 12))
    env.sim.qpos[0, 2] = 0.15
    env.sim.qpos[0, 3:7] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # rolled 180°: on its back
    res = env.step(torch.zeros(2, 12))
    twin.step(torch.zeros(2, 12))
    assert res.terminated.tolist() == [True, False] and not res.truncated.any()
    assert res.episode_lengths == [4] and len(res.episode_returns) == 1
    g = obs_slices()["gravity"]
    assert res.final_obs[0, g][2] > 0.9 and res.obs[0, g][2] < -0.9  # pre-reset flipped, returned obs reset
    assert env.ep_len.tolist() == [0, 4]
    assert float(env.sim.qpos[0, 2]) == pytest.approx(C.INIT_BASE_HEIGHT) and env.sim.qvel[0].abs().max() == 0
    assert (env.sim.qpos[1] - twin.sim.qpos[1]).abs().max() < 1e-6  # world 1 is untouched by world 0's reset
    env.sim.qvel[1] = float("nan")  # divergence: flagged (mujoco_warp does not reset it), terminated, reset
    res = env.step(torch.zeros(2, 12))
    assert res.terminated.tolist() == [False, True] and torch.isfinite(res.final_obs).all()
    assert torch.isfinite(env.sim.qvel).all() and torch.isfinite(res.reward).all()


def test_truncation_reports_episode_returns() -> None:
    env = warp_env(Go2EnvConfig(episode_length_s=0.1, domain_rand=DomainRandConfig(enabled=False)), num_envs=2)
    env.reset(0)
    rewards = [env.step(torch.zeros(2, 12)).reward for _ in range(4)]
    res = env.step(torch.zeros(2, 12))
    rewards.append(res.reward)
    assert res.truncated.all() and res.episode_lengths == [5, 5]
    assert np.allclose(res.episode_returns, torch.stack(rewards).sum(0).numpy(), atol=1e-5)


def test_dr_is_per_world_and_reset_redraws_only_selected() -> None:
    env = warp_env(Go2EnvConfig(), num_envs=4, seed=0)
    dyn = env.sim.dynamics()
    assert torch.allclose(dyn["friction"], env.dr.friction[:, None].expand(-1, 4))
    assert torch.allclose(dyn["mass"], env.sim.nominal_mass + env.dr.added_mass)
    assert torch.allclose(dyn["ipos"], env.sim.nominal_ipos + env.dr.com_offset)
    assert float(dyn["mass"].max() - dyn["mass"].min()) > 0.1
    mass = dyn["mass"].clone()
    env._reset_envs(torch.tensor([2]))
    new = env.sim.dynamics()["mass"]
    assert torch.equal(new[[0, 1, 3]], mass[[0, 1, 3]]) and new[2] != mass[2]
    # set_const refreshed the derived per-world constants: the root subtree mass is each world's total
    subtree = torch.as_tensor(env.sim.m.body_subtreemass.numpy()[:, 0])
    assert torch.allclose(subtree, torch.as_tensor(env.sim.m.body_mass.numpy()).sum(1))
    for _ in range(3):
        res = env.step(torch.rand(4, 12) * 2 - 1)
    assert torch.isfinite(res.obs).all() and {"dr/friction", "dr/latency", "reward/torques"} <= set(res.log)


def test_state_is_zero_copy() -> None:
    env = warp_env(NO_DR, num_envs=2)
    sim = env.sim
    assert sim.shares_memory()
    assert sim.qpos.data_ptr() == sim.d.qpos.ptr and sim.ctrl.data_ptr() == sim.d.ctrl.ptr
    sim.qvel[1, 0] = 1.25  # a torch write is visible to Warp
    assert sim.d.qvel.numpy()[1, 0] == pytest.approx(1.25)


def test_registry_picks_the_backend() -> None:
    task = ROBOT_TASKS["go2_joystick"]
    assert resolve_backend("auto", torch.device("cuda")) == "warp"
    assert resolve_backend("auto", torch.device("cpu")) == "cpu"
    assert task.backend(Go2EnvConfig(), torch.device("cpu")) == "cpu"
    env = task.make_env(Go2EnvConfig(backend="warp", domain_rand=DomainRandConfig(enabled=False)), 2,
                        torch.device("cpu"), 0)
    assert isinstance(env, Go2VecEnv) and env.backend == "warp" and env.reset().shape == (2, 47)
    assert task.contract().obs_dim == 47


def test_fallen_robot_fits_the_capacities_and_an_overflow_ends_the_episode() -> None:
    """A Go2 lying on its side needs more contacts/constraint rows than mujoco_warp's defaults; with the
    sized capacities nothing overflows, and with a deliberately tiny njmax the overflow is read from
    d.overflow: the world terminates, the env counts it and warns once, and the reset clears the flag."""
    side = [np.cos(0.8), np.sin(0.8), 0.0, 0.0]  # rolled 1.6 rad
    lying_ok = dataclasses.replace(NO_DR, termination=TerminationConfig(base_contact=False, max_roll=3.2,
                                                                         max_pitch=3.2))  # keep it lying
    env = warp_env(lying_ok, num_envs=2, seed=0, device="cpu")
    env.reset(0)
    env.sim.qpos[:, 2], env.sim.qpos[:, 3:7] = 0.15, torch.tensor(side)
    for _ in range(5):
        res = env.step(torch.ones(2, 12))
        assert res.log["sim/overflow"] == 0.0 and not res.terminated.any()
    assert env.sim.njmax >= 320 and env.overflow_worlds == 0
    env.close()

    # 14 rows: what the spawn pose (in the air) needs; any ground contact then overflows
    tiny = warp_env(NO_DR, num_envs=2, seed=0, device="cpu", njmax=14)
    tiny.reset(0)
    tiny.sim.qpos[0, 2], tiny.sim.qpos[0, 3:7] = 0.15, torch.tensor(side)
    with pytest.warns(RuntimeWarning, match="buffer overflow"):
        for _ in range(10):
            res = tiny.step(torch.zeros(2, 12))
            if res.terminated[0]:
                break
    assert res.terminated[0] and res.log["sim/overflow"] > 0 and tiny.overflow_worlds >= 1
    assert not tiny.sim.overflowed()[0]  # the terminated world was reset
    tiny.close()


def test_failed_graph_capture_falls_back_to_plain_launches(caplog: pytest.LogCaptureFixture) -> None:
    """Where a CUDA graph cannot be captured (on CUDA: a driver without conditional nodes; here a step that
    raises while being captured stands in), the sim says so in one line and keeps stepping with plain launches."""
    env = warp_env(NO_DR, num_envs=2)
    sim, calls = env.sim, []

    def step_that_cannot_be_captured() -> None:
        calls.append(1)
        if len(calls) == 2:  # the warm-up call runs, the captured one fails
            raise RuntimeError("conditional graph nodes unsupported")
        mjw.step(sim.m, sim.d)

    with caplog.at_level("WARNING", logger="sim.go2.warp_backend"):
        graph = sim._try_capture("physics step", step_that_cannot_be_captured)
    assert graph is None and sim._graph is None and len(calls) == 2
    assert any("capture of the physics step failed" in r.getMessage() for r in caplog.records)
    env.reset(0)
    z0 = sim.qpos[:, 2].clone()
    for _ in range(5):
        res = env.step(torch.zeros(2, 12))
    assert torch.isfinite(res.obs).all() and (sim.qpos[:, 2] != z0).all()  # it still steps


def test_reset_uses_one_persistent_mask() -> None:
    """Resets write the mask Warp reads in place (what a captured reset graph replays), so repeated resets of
    different worlds touch only those worlds."""
    env = warp_env(Go2EnvConfig(), num_envs=3, seed=0)
    sim, ptr = env.sim, env.sim._mask.data_ptr()
    env.reset(0)
    for _ in range(3):
        env.step(torch.zeros(3, 12))
    before = sim.qpos.clone()
    env._reset_envs(torch.tensor([1]))
    assert sim._mask.data_ptr() == ptr and sim._mask.tolist() == [False, True, False]
    assert torch.equal(sim.qpos[[0, 2]], before[[0, 2]]) and not torch.equal(sim.qpos[1], before[1])
