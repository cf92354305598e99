"""The joystick task's per-policy-step logic shared by the CPU (`Go2VecEnv`) and Warp (`Go2WarpEnv`) envs.

Touchdown bookkeeping (legged_gym's filtered contacts and air time), the reward state, and the
terminations are written once against numpy arrays or torch tensors alike, so the two backends
cannot drift apart; each env only supplies its state arrays and the physics step.
"""

from __future__ import annotations

from typing import Any

from sim.go2.obs import Array, roll_pitch
from sim.go2.rewards import RewardState, compute_rewards

__all__ = ["JoystickTaskStep"]


class JoystickTaskStep:
    """Mixin: needs cfg, dt, commands, last_action, last_contact, air_time, ep_len, max_episode_steps,
    soft_lower, soft_upper and the sensordata columns _foot_cols, _leg_cols, _base_col."""

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
    _foot_cols: Any
    _leg_cols: Any
    _base_col: int

    def _task_step(self, action: Array, torque_sq: Array, rot: Array, lin_vel: Array, ang_vel: Array,
                   gravity: Array, joint_pos: Array, sd: Array, unstable: Array
                   ) -> tuple[Array, dict[str, Array], Array, Array]:
        """Rewards and terminations of the step just simulated: (reward, terms, terminated, truncated)."""
        contact = sd[:, self._foot_cols] > 0
        contact_filt = contact | self.last_contact
        self.last_contact = contact
        first_contact = (self.air_time > 0) & contact_filt
        self.air_time += self.dt
        rs = RewardState(command=self.commands, lin_vel=lin_vel, ang_vel=ang_vel, gravity=gravity,
                         torque_sq=torque_sq, action=action, last_action=self.last_action,
                         air_time=self.air_time * 1.0, first_contact=first_contact,
                         collisions=(sd[:, self._leg_cols] > 0).sum(axis=1), joint_pos=joint_pos,
                         soft_lower=self.soft_lower, soft_upper=self.soft_upper)
        reward, terms = compute_rewards(rs, self.cfg.reward, self.dt)
        self.air_time[contact_filt] = 0.0

        tc = self.cfg.termination
        roll, pitch = roll_pitch(rot)
        terminated = (abs(roll) > tc.max_roll) | (abs(pitch) > tc.max_pitch) | unstable
        if tc.base_contact:
            terminated |= sd[:, self._base_col] > 0
        truncated = (self.ep_len >= self.max_episode_steps) & ~terminated
        return reward, terms, terminated, truncated
