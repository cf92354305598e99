"""The joystick task's per-policy-step logic of `Go2VecEnv`, written for numpy arrays and torch tensors.

Touchdown bookkeeping (legged_gym's filtered contacts and air time), the trot clock, the reward state,
the command curriculum and the terminations are written once against numpy arrays or torch tensors
alike (the env runs it in torch on either simulator; the reward tests call it with numpy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.go2 import constants as C
from sim.go2.config import CommandConfig
from sim.go2.obs import Array, array_namespace, phase_features, roll_pitch, row_norm
from sim.go2.rewards import RewardState, compose_rewards, reward_terms

__all__ = ["JoystickTaskStep", "sample_commands", "command_ranges"]


def command_ranges(c: CommandConfig, level: float) -> tuple[tuple[float, float], ...]:
    """(vx, vy, yaw) ranges at curriculum `level` in [0, 1] (the full ranges when the curriculum is off)."""
    if not c.curriculum:
        return c.lin_vel_x, c.lin_vel_y, c.ang_vel_yaw
    lo = (1 - level) * c.initial_lin_vel_x[0] + level * c.lin_vel_x[0]
    hi = (1 - level) * c.initial_lin_vel_x[1] + level * c.lin_vel_x[1]
    return ((lo, hi), (level * c.lin_vel_y[0], level * c.lin_vel_y[1]),
            (level * c.ang_vel_yaw[0], level * c.ang_vel_yaw[1]))


def sample_commands(rng: object, c: CommandConfig, n: int, level: float = 1.0) -> Array:
    """(n, 3) uniform (vx, vy, yaw rate) at curriculum `level`; small |v_xy| zeroed; a `stand_prob`·level
    share (full share without a curriculum) set to (0, 0, 0). `rng`: numpy Generator or a torch stand-in."""
    u = rng.uniform  # type: ignore[attr-defined]
    rx, ry, rw = command_ranges(c, level)
    x, y, yaw = u(*rx, n), u(*ry, n), u(*rw, n)
    cmd = array_namespace(x).stack([x, y, yaw], axis=1)
    cmd[row_norm(cmd[:, :2]) < c.zero_below, :2] = 0.0
    p_stand = c.stand_prob * (level if c.curriculum else 1.0)
    if p_stand > 0:
        cmd[u(0.0, 1.0, n) < p_stand] = 0.0
    return cmd


class JoystickTaskStep:
    """Mixin: needs cfg, dt, commands, last_action, last_contact, air_time, ep_len, max_episode_steps,
    soft_lower, soft_upper, _default_pos and the sensordata columns _foot_cols, _foot_pos_cols, _leg_cols,
    _base_col; call `_init_curriculum()` in the constructor."""

    cfg: Any
    dt: float
    commands: Array
    last_action: Array
    last_contact: Array
    air_time: Array
    ep_len: Array
    max_episode_steps: int
    soft_lower: Array
    soft_upper: Array
    _default_pos: Array
    _foot_cols: Any
    _foot_pos_cols: Any
    _leg_cols: Any
    _base_col: int

    # -- trot clock ---------------------------------------------------------------------------
    def _phase(self, ids: Any = slice(None)) -> Array:
        """(N,) clock phase in [0, 1) from the episode step (constants.gait_phase, for either array kind)."""
        return (self.ep_len[ids] * (C.CTRL_DT * self.cfg.gait_freq)) % 1.0  # type: ignore[attr-defined]

    def _phase_obs(self, ids: Any = slice(None)) -> Array:
        return phase_features(self._phase(ids))

    def _stance(self, phase: Array) -> Array:
        """(N, 4) bool: legs the clock has in stance (diagonal pairs share a phase)."""
        offsets = C.GAIT_OFFSETS if isinstance(phase, np.ndarray) else \
            array_namespace(phase).as_tensor(C.GAIT_OFFSETS, dtype=phase.dtype, device=phase.device)
        return ((phase[:, None] + offsets) % 1.0) < C.GAIT_DUTY

    # -- command curriculum -------------------------------------------------------------------
    def _init_curriculum(self) -> None:
        c: CommandConfig = self.cfg.command
        self.cmd_level = 0.0 if c.curriculum else 1.0
        self._curr_every = max(1, int(round(c.curriculum_interval_s / self.dt)))
        self._curr_acc: Any = 0.0
        self._curr_falls: Any = 0.0
        self._curr_n = 0
        self._curr_held = 0  # env steps (all envs) since the level last rose
        self.patience_raises = 0  # rises the patience made, not tracking

    def state_dict(self) -> dict[str, float]:
        """Task state a resume must keep: the curriculum level (a resume from 0 re-climbed for minutes and
        trained the wide-command policy on narrow commands meanwhile)."""
        return {"cmd_level": float(self.cmd_level), "cmd_held_steps": float(self._curr_held),
                "patience_raises": float(self.patience_raises)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.cmd_level = float(state["cmd_level"])
        self._curr_held = int(state.get("cmd_held_steps", 0))  # checkpoints before the patience lack both
        self.patience_raises = int(state.get("patience_raises", 0))

    def _sample_commands(self, n: int) -> Array:
        return sample_commands(self.rng, self.cfg.command, n, self.cmd_level)  # type: ignore[attr-defined]

    def _curriculum(self, lin_track: Array, terminated: Array) -> None:
        """Accumulate the mean tracking kernel and fall rate; every interval, raise the level if tracking
        reached the bar and falls stayed under theirs, or if the patience ran out (one host read per interval
        on a device)."""
        c: CommandConfig = self.cfg.command
        if not c.curriculum or self.cmd_level >= 1.0:
            return
        self._curr_acc = self._curr_acc + lin_track.mean()
        if c.curriculum_max_falls is not None:
            self._curr_falls = self._curr_falls + terminated.sum()
        self._curr_n += 1
        if self._curr_n >= self._curr_every:
            falls_per_min = float(self._curr_falls) / (self._curr_n * self.dt * len(terminated)) * 60.0
            self._curr_held += self._curr_n * len(terminated)
            tracked = float(self._curr_acc) / self._curr_n >= c.curriculum_threshold and (
                c.curriculum_max_falls is None or falls_per_min <= c.curriculum_max_falls)
            patience_out = (c.curriculum_patience_steps is not None
                            and self.cmd_level >= c.curriculum_patience_from_level
                            and self._curr_held >= c.curriculum_patience_steps)
            if tracked or patience_out:
                self.cmd_level = min(1.0, self.cmd_level + c.curriculum_step)
                self.patience_raises += int(not tracked)
                self._curr_held = 0
            self._curr_acc, self._curr_falls, self._curr_n = 0.0, 0.0, 0

    # -- one step -----------------------------------------------------------------------------
    def _task_step(self, action: Array, torque_sq: Array, rot: Array, lin_vel: Array, ang_vel: Array,
                   gravity: Array, joint_pos: Array, sd: Array, unstable: Array
                   ) -> tuple[Array, dict[str, Array], Array, Array]:
        """Rewards and terminations of the step just simulated: (reward, terms, terminated, truncated)."""
        contact = sd[:, self._foot_cols] > 0
        contact_filt = contact | self.last_contact
        self.last_contact = contact
        first_contact = (self.air_time > 0) & contact_filt
        self.air_time += self.dt
        foot_z = sd[:, self._foot_pos_cols]
        rs = RewardState(command=self.commands, lin_vel=lin_vel, ang_vel=ang_vel, gravity=gravity,
                         torque_sq=torque_sq, action=action, last_action=self.last_action,
                         air_time=self.air_time * 1.0, first_contact=first_contact,
                         collisions=(sd[:, self._leg_cols] > 0).sum(axis=1), joint_pos=joint_pos,
                         soft_lower=self.soft_lower, soft_upper=self.soft_upper, default_pos=self._default_pos,
                         contact=contact_filt, stance=self._stance(self._phase()),
                         foot_height=foot_z - foot_z.min(axis=1, keepdims=True) if isinstance(foot_z, np.ndarray)
                         else foot_z - foot_z.amin(dim=1, keepdim=True))  # amin: min(dim) is ms on 2 threads
        raw = reward_terms(rs, self.cfg.reward)
        reward, terms = compose_rewards(raw, self.cfg.reward, self.dt)
        self.air_time[contact_filt] = 0.0

        tc = self.cfg.termination
        roll, pitch = roll_pitch(rot)
        terminated = (abs(roll) > tc.max_roll) | (abs(pitch) > tc.max_pitch) | unstable
        if tc.base_contact:
            terminated |= sd[:, self._base_col] > 0
        self._curriculum(raw["tracking"], terminated)
        truncated = (self.ep_len >= self.max_episode_steps) & ~terminated
        rc = self.cfg.reward
        penalty = rc.termination_penalty if self.cmd_level >= rc.termination_from_level else 0.0
        terms["termination"] = -penalty * terminated
        if penalty:
            reward = reward - penalty * terminated
        return reward, terms, terminated, truncated
