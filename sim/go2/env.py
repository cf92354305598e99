"""Go2 velocity-tracking ("joystick") task behind the `VecEnv` protocol, on batched CPU MuJoCo.

One policy step: clip the (N, 12) actions, delay them per env (latency DR), turn them
into joint targets default + ACTION_SCALE·a, and run DECIMATION physics steps with the
PD law τ = s·(Kp(q* − q) − Kd·qd) clipped to the motor limits recomputed at 500 Hz.
Numpy inside, float32 torch tensors on the CPU at the boundary; finished envs reset
in the same call (their pre-reset observation is in `final_obs`).
"""

from __future__ import annotations

import numpy as np
import torch

from sim.go2 import constants as C
from sim.go2 import randomize as R
from sim.go2.backend import BatchSim
from sim.go2.config import DomainRandConfig, Go2EnvConfig
from sim.go2.model import build_model
from sim.go2.obs import OBS_DIM, OBS_LAYOUT, base_kinematics, build_obs
from sim.go2.rewards import check_reward_keys
from sim.go2.task import JoystickTaskStep, sample_commands
from som_robot.envs.vec_env import StepResult

__all__ = ["Go2VecEnv", "sample_commands"]  # sample_commands re-exported from sim.go2.task


class Go2VecEnv(JoystickTaskStep):
    """N Go2 joystick envs with per-env domain randomization and same-step auto-reset."""

    def __init__(self, cfg: Go2EnvConfig | None = None, num_envs: int = 64, seed: int = 0, nthread: int = 0,
                 device: str | torch.device = "cpu") -> None:
        self.cfg = cfg = cfg or Go2EnvConfig()
        check_reward_keys(cfg.reward)
        self.num_envs, self.obs_dim, self.act_dim = num_envs, OBS_DIM, C.NUM_JOINTS
        self.device = torch.device(device)
        self.model = build_model(cfg)
        self.sim = BatchSim(self.model, num_envs, nthread)
        self.dt = C.CTRL_DT
        self.max_episode_steps = int(round(cfg.episode_length_s / self.dt))
        self.resample_steps = max(1, int(round(cfg.command.resample_interval_s / self.dt)))
        dr = cfg.domain_rand
        self.push_steps = int(round(dr.push_interval_s / self.dt)) if dr.enabled and dr.push_vel > 0 else 0
        mid, half = (self.sim.joint_low + self.sim.joint_high) / 2, (self.sim.joint_high - self.sim.joint_low) / 2
        lim = cfg.reward.soft_dof_pos_limit
        self.soft_lower, self.soft_upper = mid - lim * half, mid + lim * half
        self._noise_dims = {t.name: t.dim for t in OBS_LAYOUT}
        n, nl = num_envs, dr.latency_steps[1] + 1
        self.commands = np.zeros((n, 3))
        self.last_action = np.zeros((n, C.NUM_JOINTS))
        self.action_hist = np.zeros((n, nl, C.NUM_JOINTS))  # [:, k] = action from k policy steps ago
        self.air_time = np.zeros((n, 4))
        self.last_contact = np.zeros((n, 4), dtype=bool)
        self.ep_len = np.zeros(n, dtype=np.int64)
        self.ep_ret = np.zeros(n)
        self.rng = np.random.default_rng(seed)
        self.dr = R.sample_all(self.rng, DomainRandConfig(enabled=False), n, self.sim.nominal_friction)
        m = self.model
        self._foot_cols = C.sensor_columns(m, C.FOOT_CONTACT_SENSORS)
        self._leg_cols = C.sensor_columns(m, C.LEG_COLLISION_SENSORS)
        self._base_col = C.sensor_slice(m, C.BASE_CONTACT_SENSOR).start
        self._foot_pos_cols = C.sensor_columns(m, C.FOOT_POS_SENSORS) + 2  # world z of each foot site
        self._default_pos = C.DEFAULT_JOINT_POS
        self._init_curriculum()
        self._all = np.arange(n)
        self._reset_envs(self._all)

    # -- protocol ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset all envs (reseeding the env's generator when `seed` is given)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._reset_envs(self._all)
        return self._t(self._observe(R.sample_obs_noise(self.rng, self.cfg.domain_rand, self.num_envs,
                                                         self._noise_dims)))

    def step(self, actions: torch.Tensor) -> StepResult:
        """Apply (N, 12) actions in [-1, 1] for one policy step (DECIMATION physics steps)."""
        a = np.clip(actions.detach().cpu().numpy().astype(np.float64), -1.0, 1.0)
        self.action_hist[:, 1:] = self.action_hist[:, :-1]
        self.action_hist[:, 0] = a
        applied = self.action_hist[self._all, self.dr.latency]
        self._push()
        torque_sq = self._physics(C.DEFAULT_JOINT_POS + C.ACTION_SCALE * applied)
        self.ep_len += 1

        rot, lin_vel, ang_vel, gravity = self._base_kinematics()
        reward, terms, terminated, truncated = self._task_step(a, torque_sq, rot, lin_vel, ang_vel, gravity,
                                                               self.sim.qpos[:, 7:], self.sim.sensordata,
                                                               self.sim.unstable())
        self.ep_ret += reward
        done = np.flatnonzero(terminated | truncated)
        returns, lengths = self.ep_ret[done].tolist(), self.ep_len[done].tolist()
        log = self._log(terms, lin_vel, ang_vel, terminated, truncated)

        resample = np.flatnonzero(self.ep_len % self.resample_steps == 0)
        if resample.size:
            self.commands[resample] = self._sample_commands(resample.size)
        self.last_action = a
        noise = R.sample_obs_noise(self.rng, self.cfg.domain_rand, self.num_envs, self._noise_dims)
        final = self._observe(noise)
        obs = final.copy()
        if done.size:
            self._reset_envs(done)
            obs[done] = self._observe({k: v[done] for k, v in noise.items()}, done)
        return StepResult(self._t(obs), self._t(reward), torch.as_tensor(terminated, device=self.device),
                          torch.as_tensor(truncated, device=self.device), self._t(final), returns, lengths, log)

    def close(self) -> None:
        self.sim.close()

    # -- internals --------------------------------------------------------------------------
    def _t(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device)

    def _physics(self, target: np.ndarray) -> np.ndarray:
        """DECIMATION physics steps of the PD law; returns Σ_j τ² averaged over them."""
        sim, kp, kd = self.sim, self._kp, self._kd
        tsq = np.zeros(self.num_envs)
        for _ in range(C.DECIMATION):
            tau = kp * (target - sim.qpos[:, 7:]) - kd * sim.qvel[:, 6:]
            np.clip(tau, sim.ctrl_low, sim.ctrl_high, out=tau)
            sim.ctrl[:] = tau
            tsq += np.einsum("ij,ij->i", tau, tau)
            sim.step()
        return tsq / C.DECIMATION

    def _push(self) -> None:
        """Shove envs whose episode step hits the push interval (velocity kick, legged_gym style)."""
        if not self.push_steps:
            return
        ids = np.flatnonzero((self.ep_len > 0) & (self.ep_len % self.push_steps == 0))
        if ids.size:
            self.sim.qvel[ids, :2] += R.sample_push(self.rng, self.cfg.domain_rand, ids.size)

    def _base_kinematics(self, ids: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, ...]:
        """Rotation, and base-frame linear velocity, angular velocity and gravity direction."""
        return base_kinematics(self.sim.qpos[ids], self.sim.qvel[ids])

    def _observe(self, noise: dict[str, np.ndarray] | None = None, ids: np.ndarray | None = None) -> np.ndarray:
        sel = slice(None) if ids is None else ids
        _, _, ang_vel, gravity = self._base_kinematics(sel)
        terms = {"gravity": gravity, "gyro": ang_vel, "command": self.commands[sel],
                 "joint_pos": self.sim.qpos[sel, 7:] - C.DEFAULT_JOINT_POS, "joint_vel": self.sim.qvel[sel, 6:],
                 "last_action": self.last_action[sel], "gait_phase": self._phase_obs(sel)}
        return build_obs(terms, noise)

    def _reset_envs(self, ids: np.ndarray) -> None:
        """New DR draw, model parameters, spawn pose and command for envs `ids`."""
        n, cfg = ids.size, self.cfg
        self.dr.assign(ids, R.sample_all(self.rng, cfg.domain_rand, n, self.sim.nominal_friction))
        self.sim.set_dynamics(ids, self.dr.friction[ids], self.dr.added_mass[ids], self.dr.com_offset[ids])
        strength = self.dr.motor_strength
        self._kp = C.KP * self.dr.kp_scale * strength
        self._kd = C.KD * self.dr.kd_scale * strength
        qpos = np.tile(self.sim.key_qpos, (n, 1))
        joints = C.DEFAULT_JOINT_POS + R.sample_init_joint_offset(self.rng, cfg.domain_rand, n)
        qpos[:, 7:] = np.clip(joints, self.sim.joint_low, self.sim.joint_high)
        yaw = self.rng.uniform(-np.pi, np.pi, n)
        qpos[:, 3:7] = np.stack([np.cos(yaw / 2), np.zeros(n), np.zeros(n), np.sin(yaw / 2)], axis=1)
        if cfg.terrain == "rough":  # spread over the field, dropped from above its highest bump
            qpos[:, :2] = self.rng.uniform(-1, 1, (n, 2)) * (cfg.rough.half_size - 3.0)
            qpos[:, 2] += cfg.rough.max_height
        self.sim.reset(ids, qpos, np.zeros((n, self.model.nv)))
        self.commands[ids] = self._sample_commands(n)
        for arr in (self.last_action, self.action_hist, self.air_time, self.ep_ret):
            arr[ids] = 0.0
        self.last_contact[ids] = False
        self.ep_len[ids] = 0
        self._dr_log = {f"dr/{k}": v for k, v in self.dr.means().items()}

    def _log(self, terms: dict[str, np.ndarray], lin_vel: np.ndarray, ang_vel: np.ndarray,
             terminated: np.ndarray, truncated: np.ndarray) -> dict[str, float]:
        log = {f"reward/{k}": float(np.mean(v)) for k, v in terms.items()}
        log["tracking/lin_vel_error"] = float(np.mean(np.linalg.norm(self.commands[:, :2] - lin_vel[:, :2], axis=1)))
        log["tracking/ang_vel_error"] = float(np.mean(np.abs(self.commands[:, 2] - ang_vel[:, 2])))
        log["env/base_height"] = float(np.mean(self.sim.qpos[:, 2]))
        log["env/terminated"] = float(np.mean(terminated))
        log["env/truncated"] = float(np.mean(truncated))
        log["curriculum/level"] = self.cmd_level
        log["sim/overflow"] = 0.0  # MuJoCo C sizes contacts/constraints from its arena (key parity with Warp)
        log.update(self._dr_log)
        return log
