"""Go2 velocity-tracking ("joystick") task behind the `VecEnv` protocol: one torch env over both simulators.

The env is written once in torch against the `Sim` protocol (sim/go2/backend.py): batched MuJoCo C
(`BatchSim`, float64 host tensors that alias the batch's state) or MuJoCo Warp (`WarpSim`, float32
tensors that alias the Warp arrays, on CUDA or Warp's CPU device). Observation layout, reward
terms (sim/go2/rewards.py), trot clock, curriculum and terminations (sim/go2/task.py) and the DR
samplers (sim/go2/randomize.py, drawn through `TorchRng`) are the same code on both, so a CPU test
runs exactly what trains on a GPU.

One policy step: clip the (N, 12) actions, delay them per env (latency DR), turn them into joint
targets default + ACTION_SCALE·a, and run DECIMATION physics steps with the PD law
τ = s·(Kp(q* − q) − Kd·qd) clipped to the motor limits, recomputed at 500 Hz by MuJoCo's own
actuators (`model.make_pd_actuators`, per-env gains): one sim call per policy step, on its device.
Per policy step there is exactly one device→host transfer, of a small packed summary (terminated/
truncated flags, running returns and lengths, the log scalars when asked for), because the VecEnv
protocol returns episode statistics and the log as Python numbers. Finished
envs reset in the same call (their pre-reset observation is in `final_obs`); a reset writes DR
draws and spawn states for just those worlds.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from sim.go2 import constants as C
from sim.go2 import randomize as R
from sim.go2.backend import Sim, make_sim
from sim.go2.config import DomainRandConfig, Go2EnvConfig
from sim.go2.model import build_model, foot_lift_offsets, pose_height_shift
from sim.go2.obs import OBS_DIM, OBS_LAYOUT, base_kinematics, build_obs
from sim.go2.randomize import TorchRng
from sim.go2.rewards import REWARD_TERMS, check_reward_keys
from sim.go2.symmetry import GO2_MIRROR
from sim.go2.task import JoystickTaskStep, sample_commands
from som_robot.contract import lift_offsets
from som_robot.envs.registry import resolve_backend
from som_robot.envs.vec_env import StepResult

__all__ = ["Go2VecEnv", "sample_commands"]  # sample_commands re-exported from sim.go2.task

_F32 = torch.float32
_LOGGED_TERMS = (*REWARD_TERMS, "termination")  # the task's terms plus the fall penalty (task._task_step)


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """The env's CPU tensors are tiny (N × 12): torch's intra-op pool only adds wake-ups, which on a loaded
    machine made a policy step 1.5x slower at 2 threads (sim.go2.bench: env/raw 0.67 vs 0.86). The physics
    has its own pool (`nthread`). The setting is process-wide, so it is restored after the step."""
    prev = torch.get_num_threads() if device.type == "cpu" else 1
    if prev != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if prev != 1:
            torch.set_num_threads(prev)


class Go2VecEnv(JoystickTaskStep):
    """N Go2 joystick envs with per-env domain randomization and same-step auto-reset, on either simulator.

    `backend` (default: the config's, `auto` = Warp on CUDA, MuJoCo C otherwise) picks the `Sim`;
    `nthread` is MuJoCo C's thread pool, `nconmax`/`njmax` Warp's per-world capacities.
    """

    mirror = GO2_MIRROR  # the task's left-right symmetry (sim.go2.symmetry), for `runner.mirror`

    def __init__(self, cfg: Go2EnvConfig | None = None, num_envs: int = 64, seed: int = 0, nthread: int = 0,
                 device: str | torch.device = "cpu", backend: str | None = None, nconmax: int | None = None,
                 njmax: int | None = None) -> None:
        self.cfg = cfg = cfg or Go2EnvConfig()
        check_reward_keys(cfg.reward)
        self.num_envs, self.obs_dim, self.act_dim = num_envs, OBS_DIM, C.NUM_JOINTS
        self.backend = resolve_backend(backend or cfg.backend, torch.device(device))
        self.model = build_model(cfg)
        dr = cfg.domain_rand
        self.sim: Sim = make_sim(self.model, self.backend, num_envs, device, nthread=nthread,
                                 batch_dynamics=dr.enabled, nconmax=nconmax, njmax=njmax,
                                 steps_per_call=C.DECIMATION)  # on CUDA one graph per policy step
        sim = self.sim
        self.device = dev = sim.device
        self.dtype = ft = sim.dtype  # the simulator's float: float64 on MuJoCo C, float32 on Warp
        self.dt = C.CTRL_DT
        self.max_episode_steps = int(round(cfg.episode_length_s / self.dt))
        self.resample_steps = max(1, int(round(cfg.command.resample_interval_s / self.dt)))
        self.push_steps = int(round(dr.push_interval_s / self.dt)) if dr.enabled and dr.push_vel > 0 else 0
        mid, half = (sim.joint_low + sim.joint_high) / 2, (sim.joint_high - sim.joint_low) / 2
        lim = cfg.reward.soft_dof_pos_limit
        self.soft_lower, self.soft_upper = mid - lim * half, mid + lim * half
        self._default_pos = torch.as_tensor(cfg.joint_default, dtype=ft, device=dev)
        lift = foot_lift_offsets(self.model, np.asarray(cfg.joint_default), cfg.foot_lift) if cfg.foot_lift else None
        self._lift = None if lift is None else torch.as_tensor(lift, dtype=ft, device=dev)
        self._gait_offsets = torch.as_tensor(C.GAIT_OFFSETS, dtype=ft, device=dev)
        self._reset_dz = pose_height_shift(self.model, np.asarray(cfg.joint_default)) if cfg.default_pose else 0.0
        self._noise_dims = {t.name: t.dim for t in OBS_LAYOUT}
        n, nl = num_envs, dr.latency_steps[1] + 1
        z = {"dtype": ft, "device": dev}
        self.commands = torch.zeros(n, 3, **z)
        self.last_action = torch.zeros(n, C.NUM_JOINTS, **z)
        self.action_hist = torch.zeros(n, nl, C.NUM_JOINTS, **z)  # [:, k] = action from k policy steps ago
        self.air_time = torch.zeros(n, 4, **z)
        self.last_contact = torch.zeros(n, 4, dtype=torch.bool, device=dev)
        self.ep_len = torch.zeros(n, dtype=torch.int64, device=dev)
        self.ep_ret = torch.zeros(n, **z)
        self.rng = TorchRng(seed, dev)
        self.dr = self._sample_dr(DomainRandConfig(enabled=False), n)
        cols = {"device": dev}
        self._foot_cols = torch.as_tensor(C.sensor_columns(self.model, C.FOOT_CONTACT_SENSORS), **cols)
        self._leg_cols = torch.as_tensor(C.sensor_columns(self.model, C.LEG_COLLISION_SENSORS), **cols)
        self._base_col = C.sensor_slice(self.model, C.BASE_CONTACT_SENSOR).start
        self._foot_pos_cols = torch.as_tensor(C.sensor_columns(self.model, C.FOOT_POS_SENSORS) + 2, **cols)
        self._init_curriculum()
        self.overflow_worlds = 0  # worlds whose episode ended on a capacity overflow (see WarpSim.overflowed)
        self._overflow_warned = False
        # The log scalars (~25 reductions) are built only when asked: the runner sets this on the steps it logs.
        self.want_log = True
        self._log_keys = self._make_log_keys()
        self._all = torch.arange(n, device=dev)
        self._reset_envs(self._all)

    # -- protocol ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset all envs (reseeding the env's generator when `seed` is given)."""
        if seed is not None:
            self.rng = TorchRng(seed, self.device)
        with _one_cpu_thread(self.device):
            self._reset_envs(self._all)
            return self._observe(self._noise()).to(_F32)

    def step(self, actions: torch.Tensor) -> StepResult:
        """Apply (N, 12) actions in [-1, 1] for one policy step (DECIMATION physics steps)."""
        with _one_cpu_thread(self.device):
            return self._step(actions)

    def _step(self, actions: torch.Tensor) -> StepResult:
        a = actions.detach().to(self.device, self.dtype).clamp(-1.0, 1.0)
        self.action_hist = torch.roll(self.action_hist, 1, dims=1)
        self.action_hist[:, 0] = a
        applied = self.action_hist[self._all, self.dr.latency]
        self._push()
        torque_sq = self._physics(self._default_pos + self.cfg.action_scale * applied + self._lift_targets())
        self.ep_len += 1

        sim = self.sim
        rot, lin_vel, ang_vel, gravity = base_kinematics(sim.qpos, sim.qvel)
        overflow = sim.overflowed()  # a capacity overflow makes the world's physics wrong: end its episode
        reward, terms, terminated, truncated = self._task_step(a, torque_sq, rot, lin_vel, ang_vel, gravity,
                                                               sim.qpos[:, 7:], sim.sensordata,
                                                               sim.unstable() | overflow)
        reward = torch.nan_to_num(reward, nan=0.0, posinf=0.0, neginf=0.0)  # a diverged world terminates
        self.ep_ret += reward
        over = overflow.to(self.dtype).mean()[None]
        log_vals = torch.cat([self._log_values(terms, lin_vel, ang_vel, terminated, truncated), over]) \
            if self.want_log else over
        # The one device→host transfer of the step: flags, returns, lengths and log scalars.
        n = self.num_envs
        summary = torch.cat([terminated.to(self.dtype), truncated.to(self.dtype), self.ep_ret,
                             self.ep_len.to(self.dtype), log_vals]).cpu().numpy()
        done = np.flatnonzero((summary[:n] > 0) | (summary[n:2 * n] > 0))
        returns = summary[2 * n:3 * n][done].astype(np.float64).tolist()
        lengths = summary[3 * n:4 * n][done].astype(np.int64).tolist()
        keys = self._log_keys if self.want_log else ["sim/overflow"]
        log = dict(zip(keys, summary[4 * n:].astype(np.float64).tolist(), strict=True))
        if log["sim/overflow"] > 0:
            self.overflow_worlds += int(round(log["sim/overflow"] * n))
            if not self._overflow_warned:
                self._overflow_warned = True
                warnings.warn(f"MuJoCo Warp buffer overflow in {log['sim/overflow'] * n:.0f} world(s) (nconmax "
                              f"{sim.nconmax}, njmax {sim.njmax} per world): those episodes end; counted in "
                              "sim/overflow", RuntimeWarning, stacklevel=2)
        log["curriculum/level"] = self.cmd_level
        if self.want_log:
            log["curriculum/patience_raises"] = self.patience_raises

        resample = (self.ep_len % self.resample_steps == 0)[:, None]
        self.commands = torch.where(resample, self._sample_commands(n).to(self.dtype), self.commands)
        self.last_action = a
        noise = self._noise()
        final = torch.nan_to_num(self._observe(noise, kin=(ang_vel, gravity)), nan=0.0, posinf=0.0, neginf=0.0)
        obs = final.clone()
        if done.size:
            ids = torch.from_numpy(done).to(self.device)
            c = self.cfg.command
            keep = c.keep_on_fall and self.cmd_level >= c.keep_on_fall_from_level
            self._reset_envs(ids, keep_command=terminated[ids] if keep else None)
            obs[ids] = self._observe({k: v[ids] for k, v in noise.items()}, ids)
        return StepResult(obs.to(_F32), reward.to(_F32), terminated, truncated, final.to(_F32), returns,
                          lengths, log)

    def close(self) -> None:
        self.sim.close()

    # -- internals --------------------------------------------------------------------------
    def _noise(self) -> dict[str, torch.Tensor]:
        return R.sample_obs_noise(self.rng, self.cfg.domain_rand, self.num_envs, self._noise_dims)  # type: ignore[arg-type]

    def _lift_targets(self) -> torch.Tensor | float:
        """The foot-lift trajectory generator's joint offsets for this step (0 when `foot_lift` is off): each
        swing leg's full-lift offsets times swing_lift on the clock, under a moving command only."""
        if self._lift is None:
            return 0.0
        return lift_offsets(self._phase(), self.commands, self._lift, self._gait_offsets, C.GAIT_DUTY,
                            self.cfg.reward.moving_threshold)

    def _physics(self, target: torch.Tensor) -> torch.Tensor:
        """DECIMATION physics steps of the PD law in one sim call (the actuators are the PD, per-env gains set at
        reset: force = kp·(q* − q) − kd·qd clipped to the motor limits, every physics step); returns Σ_j τ² of
        the last physics step."""
        self.sim.ctrl.copy_(self._kp * target)
        self.sim.step(C.DECIMATION)
        tau = self.sim.actuator_force
        return (tau * tau).sum(dim=1)

    def _push(self) -> None:
        """Shove envs whose episode step hits the push interval (drawn for all envs, applied by mask)."""
        if not self.push_steps:
            return
        hit = (self.ep_len > 0) & (self.ep_len % self.push_steps == 0)
        kick = R.sample_push(self.rng, self.cfg.domain_rand, self.num_envs)  # type: ignore[arg-type]
        self.sim.qvel[:, :2] += kick * hit[:, None]

    def _observe(self, noise: dict[str, torch.Tensor] | None = None, ids: torch.Tensor | None = None,
                 kin: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Noise-free (or noisy) observation of envs `ids`; `kin`: their (ang_vel, gravity) if already computed."""
        sel = slice(None) if ids is None else ids
        qpos, qvel = self.sim.qpos[sel], self.sim.qvel[sel]
        ang_vel, gravity = kin if kin is not None else base_kinematics(qpos, qvel)[2:]
        terms = {"gravity": gravity, "gyro": ang_vel, "command": self.commands[sel],
                 "joint_pos": qpos[:, 7:] - self._default_pos, "joint_vel": qvel[:, 6:],
                 "last_action": self.last_action[sel], "gait_phase": self._phase_obs(sel)}
        return build_obs(terms, noise)

    def _sample_dr(self, cfg: DomainRandConfig, n: int) -> R.DRParams:
        """randomize.sample_all through TorchRng, as device tensors of the sim's float (latency: int64)."""
        p = R.sample_all(self.rng, cfg, n, self.sim.nominal_friction)  # type: ignore[arg-type]
        for k, v in vars(p).items():
            dtype = torch.int64 if k == "latency" else self.dtype
            setattr(p, k, torch.as_tensor(v, dtype=dtype, device=self.device))
        return p

    def _reset_envs(self, ids: torch.Tensor, keep_command: torch.Tensor | None = None) -> None:
        """New DR draw, model parameters, spawn pose and command for envs `ids` (a device index tensor);
        where `keep_command` (bool, one per id) is set, the env keeps its command."""
        n, cfg, sim = int(ids.numel()), self.cfg, self.sim
        self.dr.assign(ids, self._sample_dr(cfg.domain_rand, n))  # type: ignore[arg-type]
        if cfg.domain_rand.enabled:
            sim.set_dynamics(ids, self.dr.friction[ids], self.dr.added_mass[ids], self.dr.com_offset[ids])
        strength = self.dr.motor_strength
        self._kp = C.KP * self.dr.kp_scale * strength
        self._kd = C.KD * self.dr.kd_scale * strength
        sim.set_gains(ids, self._kp[ids], self._kd[ids])
        qpos = sim.key_qpos.repeat(n, 1)
        offset = R.sample_init_joint_offset(self.rng, cfg.domain_rand, n)  # type: ignore[arg-type]
        joints = self._default_pos + torch.as_tensor(offset, dtype=self.dtype, device=self.device)
        qpos[:, 7:] = torch.clamp(joints, sim.joint_low, sim.joint_high)
        qpos[:, 2] += self._reset_dz
        yaw = self.rng.uniform(-np.pi, np.pi, n).to(self.dtype)
        zero = torch.zeros_like(yaw)
        qpos[:, 3:7] = torch.stack([torch.cos(yaw / 2), zero, zero, torch.sin(yaw / 2)], dim=1)
        if cfg.terrain == "rough":  # spread over the field, dropped from above its highest bump
            qpos[:, :2] = self.rng.uniform(-1.0, 1.0, (n, 2)) * (cfg.rough.half_size - 3.0)
            qpos[:, 2] += cfg.rough.max_height
        new = self._sample_commands(n).to(self.dtype)
        if keep_command is not None:
            new = torch.where(keep_command[:, None], self.commands[ids], new)
        self.commands[ids] = new
        qvel = torch.zeros(n, self.model.nv, dtype=self.dtype, device=self.device)
        if cfg.command.running_start > 0:  # base moving at the command: world-frame xy velocity, body yaw rate
            run = (self.rng.uniform(0.0, 1.0, n) < cfg.command.running_start).to(self.dtype)
            c, s = torch.cos(yaw), torch.sin(yaw)
            qvel[:, 0] = run * (c * new[:, 0] - s * new[:, 1])
            qvel[:, 1] = run * (s * new[:, 0] + c * new[:, 1])
            qvel[:, 5] = run * new[:, 2]
        sim.reset(ids, qpos, qvel)
        for arr in (self.last_action, self.action_hist, self.air_time, self.ep_ret):
            arr[ids] = 0.0
        self.last_contact[ids] = False
        self.ep_len[ids] = 0
        dr = vars(self.dr)  # the DR log only changes here
        self._dr_means = torch.cat([torch.stack([v.to(self.dtype).mean() for k, v in dr.items() if k != "com_offset"]),
                                    self.dr.com_offset.mean(dim=0)])

    def _make_log_keys(self) -> list[str]:
        """Names of `_log_values`, in order, then sim/overflow (fixed for the env's life: built once)."""
        keys = [f"reward/{k}" for k in _LOGGED_TERMS]
        keys += ["tracking/lin_vel_error", "tracking/ang_vel_error", "env/base_height", "env/terminated",
                 "env/truncated"]
        keys += [f"dr/{k}" for k in vars(self.dr) if k != "com_offset"] + [f"dr/com_offset_{a}" for a in "xyz"]
        return [*keys, "sim/overflow"]

    def _log_values(self, terms: dict[str, torch.Tensor], lin_vel: torch.Tensor, ang_vel: torch.Tensor,
                    terminated: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
        """The log scalars as one device vector, in `_log_keys` order."""
        ft = self.dtype
        err = self.commands - torch.cat([lin_vel[:, :2], ang_vel[:, 2:3]], dim=1)
        per_env = torch.stack([*(terms[k].to(ft) for k in _LOGGED_TERMS),
                               torch.linalg.norm(err[:, :2], dim=1),
                               err[:, 2].abs(), self.sim.qpos[:, 2], terminated.to(ft), truncated.to(ft)])
        return torch.cat([per_env.mean(dim=1), self._dr_means])
