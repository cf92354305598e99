"""Go2 joystick task on MuJoCo Warp: `Go2VecEnv`'s task with every tensor on the env's device.

Same observation layout, reward terms (sim/go2/rewards.py), terminations, commands and DR
samplers (sim/go2/randomize.py, drawn through `TorchRng`) as the CPU env; only the state lives
in torch tensors that alias the Warp arrays (`WarpSim`). The physics loop (PD torques, 500 Hz)
never leaves the device. Per policy step there is exactly one device→host transfer, of a small
packed summary (terminated/truncated flags, running returns and lengths, and the log scalars),
because the VecEnv protocol returns episode statistics and the log as Python numbers. Envs
that finish are reset in the same call (pre-reset observation in `final_obs`); a reset writes
DR draws and spawn states for just those worlds.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from sim.go2 import constants as C
from sim.go2 import randomize as R
from sim.go2.config import DomainRandConfig, Go2EnvConfig
from sim.go2.model import build_model
from sim.go2.obs import OBS_DIM, OBS_LAYOUT, base_kinematics, build_obs
from sim.go2.rewards import REWARD_TERMS, check_reward_keys
from sim.go2.task import JoystickTaskStep
from sim.go2.warp_backend import WarpSim
from som_robot.envs.vec_env import StepResult

__all__ = ["Go2WarpEnv", "TorchRng"]

_F32 = torch.float32


class TorchRng:
    """The slice of `numpy.random.Generator` that the DR and command samplers call, drawing float32
    tensors on a device from a torch Generator, so one sampler definition serves both envs."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.device = device
        self.gen = torch.Generator(device=device).manual_seed(seed)

    @staticmethod
    def _shape(size: int | tuple[int, ...] | None) -> tuple[int, ...]:
        return () if size is None else (size,) if isinstance(size, int) else tuple(size)

    def uniform(self, low: float = 0.0, high: float = 1.0, size: int | tuple[int, ...] | None = None) -> torch.Tensor:
        u = torch.rand(self._shape(size), generator=self.gen, device=self.device, dtype=_F32)
        return low + (high - low) * u

    def integers(self, low: int, high: int, size: int | tuple[int, ...] | None = None) -> torch.Tensor:
        return torch.randint(low, high, self._shape(size), generator=self.gen, device=self.device)


class Go2WarpEnv(JoystickTaskStep):
    """N Go2 joystick envs on MuJoCo Warp (CUDA, or Warp's CPU device), per-env DR, same-step auto-reset."""

    def __init__(self, cfg: Go2EnvConfig | None = None, num_envs: int = 64, seed: int = 0,
                 device: str | torch.device = "cpu", nconmax: int | None = None, njmax: int | None = None) -> None:
        self.cfg = cfg = cfg or Go2EnvConfig()
        check_reward_keys(cfg.reward)
        self.num_envs, self.obs_dim, self.act_dim = num_envs, OBS_DIM, C.NUM_JOINTS
        self.model = build_model(cfg)
        dr = cfg.domain_rand
        self.sim = WarpSim(self.model, num_envs, device, batch_dynamics=dr.enabled, nconmax=nconmax, njmax=njmax)
        self.device = dev = self.sim.device
        self.dt = C.CTRL_DT
        self.max_episode_steps = int(round(cfg.episode_length_s / self.dt))
        self.resample_steps = max(1, int(round(cfg.command.resample_interval_s / self.dt)))
        self.push_steps = int(round(dr.push_interval_s / self.dt)) if dr.enabled and dr.push_vel > 0 else 0
        sim = self.sim
        mid, half = (sim.joint_low + sim.joint_high) / 2, (sim.joint_high - sim.joint_low) / 2
        lim = cfg.reward.soft_dof_pos_limit
        self.soft_lower, self.soft_upper = mid - lim * half, mid + lim * half
        self._default_q = torch.as_tensor(C.DEFAULT_JOINT_POS, dtype=_F32, device=dev)
        self._noise_dims = {t.name: t.dim for t in OBS_LAYOUT}
        n, nl = num_envs, dr.latency_steps[1] + 1
        z = {"dtype": _F32, "device": dev}
        self.commands = torch.zeros(n, 3, **z)
        self.last_action = torch.zeros(n, C.NUM_JOINTS, **z)
        self.action_hist = torch.zeros(n, nl, C.NUM_JOINTS, **z)  # [:, k] = action from k policy steps ago
        self.air_time = torch.zeros(n, 4, **z)
        self.last_contact = torch.zeros(n, 4, dtype=torch.bool, device=dev)
        self.ep_len = torch.zeros(n, dtype=torch.int64, device=dev)
        self.ep_ret = torch.zeros(n, **z)
        self.rng = TorchRng(seed, dev)
        self.dr = self._sample_dr(DomainRandConfig(enabled=False), n)
        self._foot_cols = torch.as_tensor(C.sensor_columns(self.model, C.FOOT_CONTACT_SENSORS), device=dev)
        self._leg_cols = torch.as_tensor(C.sensor_columns(self.model, C.LEG_COLLISION_SENSORS), device=dev)
        self._base_col = C.sensor_slice(self.model, C.BASE_CONTACT_SENSOR).start
        self._foot_pos_cols = torch.as_tensor(C.sensor_columns(self.model, C.FOOT_POS_SENSORS) + 2, device=dev)
        self._default_pos = self._default_q
        self._init_curriculum()
        self.overflow_worlds = 0  # worlds whose episode ended on a capacity overflow (see WarpSim.overflowed)
        self._overflow_warned = False
        self._all = torch.arange(n, device=dev)
        self._reset_envs(self._all)

    # -- protocol ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset all envs (reseeding the env's generator when `seed` is given)."""
        if seed is not None:
            self.rng = TorchRng(seed, self.device)
        self._reset_envs(self._all)
        return self._observe(self._noise())

    def step(self, actions: torch.Tensor) -> StepResult:
        """Apply (N, 12) actions in [-1, 1] for one policy step (DECIMATION physics steps)."""
        a = actions.detach().to(self.device, _F32).clamp(-1.0, 1.0)
        self.action_hist = torch.roll(self.action_hist, 1, dims=1)
        self.action_hist[:, 0] = a
        applied = self.action_hist[self._all, self.dr.latency]
        self._push()
        torque_sq = self._physics(self._default_q + C.ACTION_SCALE * applied)
        self.ep_len += 1

        sim = self.sim
        rot, lin_vel, ang_vel, gravity = base_kinematics(sim.qpos, sim.qvel)
        overflow = sim.overflowed()  # a capacity overflow makes the world's physics wrong: end its episode
        reward, terms, terminated, truncated = self._task_step(a, torque_sq, rot, lin_vel, ang_vel, gravity,
                                                               sim.qpos[:, 7:], sim.sensordata,
                                                               sim.unstable() | overflow)
        reward = torch.nan_to_num(reward, nan=0.0, posinf=0.0, neginf=0.0)  # a diverged world terminates
        self.ep_ret += reward
        log_vals = torch.cat([self._log_values(terms, lin_vel, ang_vel, terminated, truncated),
                              overflow.to(_F32).mean()[None]])
        # The one device→host transfer of the step: flags, returns, lengths and log scalars.
        n = self.num_envs
        summary = torch.cat([terminated.to(_F32), truncated.to(_F32), self.ep_ret, self.ep_len.to(_F32),
                             log_vals]).cpu().numpy()
        done = np.flatnonzero((summary[:n] > 0) | (summary[n:2 * n] > 0))
        returns = summary[2 * n:3 * n][done].astype(np.float64).tolist()
        lengths = summary[3 * n:4 * n][done].astype(np.int64).tolist()
        log = dict(zip([*self._log_keys, "sim/overflow"], summary[4 * n:].astype(np.float64).tolist(), strict=True))
        if log["sim/overflow"] > 0:
            self.overflow_worlds += int(round(log["sim/overflow"] * n))
            if not self._overflow_warned:
                self._overflow_warned = True
                warnings.warn(f"MuJoCo Warp buffer overflow in {log['sim/overflow'] * n:.0f} world(s) (nconmax "
                              f"{sim.nconmax}, njmax {sim.njmax} per world): those episodes end; counted in "
                              "sim/overflow", RuntimeWarning, stacklevel=2)
        log["curriculum/level"] = self.cmd_level

        resample = (self.ep_len % self.resample_steps == 0)[:, None]
        self.commands = torch.where(resample, self._sample_commands(n), self.commands)
        self.last_action = a
        noise = self._noise()
        final = torch.nan_to_num(self._observe(noise), nan=0.0, posinf=0.0, neginf=0.0)
        obs = final.clone()
        if done.size:
            ids = torch.from_numpy(done).to(self.device)
            self._reset_envs(ids)
            obs[ids] = self._observe({k: v[ids] for k, v in noise.items()}, ids)
        return StepResult(obs, reward, terminated, truncated, final, returns, lengths, log)

    def close(self) -> None:
        self.sim.close()

    # -- internals --------------------------------------------------------------------------
    def _noise(self) -> dict[str, torch.Tensor]:
        return R.sample_obs_noise(self.rng, self.cfg.domain_rand, self.num_envs, self._noise_dims)  # type: ignore[arg-type]

    def _physics(self, target: torch.Tensor) -> torch.Tensor:
        """DECIMATION physics steps of the PD law on the device; returns Σ_j τ² averaged over them."""
        sim, kp, kd = self.sim, self._kp, self._kd
        tsq = torch.zeros(self.num_envs, dtype=_F32, device=self.device)
        for _ in range(C.DECIMATION):
            tau = torch.clamp(kp * (target - sim.qpos[:, 7:]) - kd * sim.qvel[:, 6:], sim.ctrl_low, sim.ctrl_high)
            sim.ctrl.copy_(tau)
            tsq += (tau * tau).sum(dim=1)
            sim.step()
        return tsq / C.DECIMATION

    def _push(self) -> None:
        """Shove envs whose episode step hits the push interval (drawn for all envs, applied by mask)."""
        if not self.push_steps:
            return
        hit = (self.ep_len > 0) & (self.ep_len % self.push_steps == 0)
        kick = R.sample_push(self.rng, self.cfg.domain_rand, self.num_envs)  # type: ignore[arg-type]
        self.sim.qvel[:, :2] += kick * hit[:, None]

    def _observe(self, noise: dict[str, torch.Tensor] | None = None, ids: torch.Tensor | None = None) -> torch.Tensor:
        sel = slice(None) if ids is None else ids
        qpos, qvel = self.sim.qpos[sel], self.sim.qvel[sel]
        _, _, ang_vel, gravity = base_kinematics(qpos, qvel)
        terms = {"gravity": gravity, "gyro": ang_vel, "command": self.commands[sel],
                 "joint_pos": qpos[:, 7:] - self._default_q, "joint_vel": qvel[:, 6:],
                 "last_action": self.last_action[sel], "gait_phase": self._phase_obs(sel)}
        return build_obs(terms, noise)

    def _sample_dr(self, cfg: DomainRandConfig, n: int) -> R.DRParams:
        """randomize.sample_all through TorchRng; a disabled sampler's numpy constant is moved to the device."""
        p = R.sample_all(self.rng, cfg, n, self.sim.nominal_friction)  # type: ignore[arg-type]
        for k, v in vars(p).items():
            dtype = torch.int64 if k == "latency" else _F32
            setattr(p, k, torch.as_tensor(v, dtype=dtype, device=self.device))
        return p

    def _reset_envs(self, ids: torch.Tensor) -> None:
        """New DR draw, model parameters, spawn pose and command for envs `ids` (a device index tensor)."""
        n, cfg, sim = int(ids.numel()), self.cfg, self.sim
        self.dr.assign(ids, self._sample_dr(cfg.domain_rand, n))  # type: ignore[arg-type]
        if cfg.domain_rand.enabled:
            sim.set_dynamics(ids, self.dr.friction[ids], self.dr.added_mass[ids], self.dr.com_offset[ids])
        strength = self.dr.motor_strength
        self._kp = C.KP * self.dr.kp_scale * strength
        self._kd = C.KD * self.dr.kd_scale * strength
        qpos = sim.key_qpos.repeat(n, 1)
        joints = self._default_q + torch.as_tensor(R.sample_init_joint_offset(self.rng, cfg.domain_rand, n),  # type: ignore[arg-type]
                                                   dtype=_F32, device=self.device)
        qpos[:, 7:] = torch.clamp(joints, sim.joint_low, sim.joint_high)
        yaw = self.rng.uniform(-np.pi, np.pi, n)
        zero = torch.zeros_like(yaw)
        qpos[:, 3:7] = torch.stack([torch.cos(yaw / 2), zero, zero, torch.sin(yaw / 2)], dim=1)
        if cfg.terrain == "rough":  # spread over the field, dropped from above its highest bump
            qpos[:, :2] = self.rng.uniform(-1.0, 1.0, (n, 2)) * (cfg.rough.half_size - 3.0)
            qpos[:, 2] += cfg.rough.max_height
        sim.reset(ids, qpos, torch.zeros(n, self.model.nv, dtype=_F32, device=self.device))
        self.commands[ids] = self._sample_commands(n)
        for arr in (self.last_action, self.action_hist, self.air_time, self.ep_ret):
            arr[ids] = 0.0
        self.last_contact[ids] = False
        self.ep_len[ids] = 0

    @property
    def _log_keys(self) -> list[str]:
        keys = [f"reward/{k}" for k in REWARD_TERMS]
        keys += ["tracking/lin_vel_error", "tracking/ang_vel_error", "env/base_height", "env/terminated",
                 "env/truncated"]
        keys += [f"dr/{k}" for k in vars(self.dr) if k != "com_offset"] + [f"dr/com_offset_{a}" for a in "xyz"]
        return keys

    def _log_values(self, terms: dict[str, torch.Tensor], lin_vel: torch.Tensor, ang_vel: torch.Tensor,
                    terminated: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
        """The CPU env's log scalars as one device vector, in `_log_keys` order."""
        vals = [terms[k].mean() for k in REWARD_TERMS]
        vals += [torch.linalg.norm(self.commands[:, :2] - lin_vel[:, :2], dim=1).mean(),
                 (self.commands[:, 2] - ang_vel[:, 2]).abs().mean(), self.sim.qpos[:, 2].mean(),
                 terminated.to(_F32).mean(), truncated.to(_F32).mean()]
        vals += [v.to(_F32).mean() for k, v in vars(self.dr).items() if k != "com_offset"]
        vals += list(self.dr.com_offset.mean(dim=0))
        return torch.stack([v.to(_F32) for v in vals])
