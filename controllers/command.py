"""Joint targets per mode, shaped for 500 Hz publication: stand-up ramp, policy target hold/interpolation,
damping, and the final clamp to joint limits (counted, never a fault).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controllers.robot_config import RobotConfig
from hardware.channels import Mode
from som_robot.contract import lift_offsets

__all__ = ["JointTarget", "CommandShaper", "PolicyTargets"]


@dataclass
class JointTarget:
    """What one joint_command_t carries (arrays in policy joint order)."""

    mode: Mode
    q_des: np.ndarray
    kp: np.ndarray
    kd: np.ndarray

    @property
    def qd_des(self) -> np.ndarray:
        return np.zeros_like(self.q_des)


class PolicyTargets:
    """Policy q targets between inferences: hold the newest, or ramp linearly from the previous one over
    `steps` command ticks (the policy period)."""

    def __init__(self, steps: int, interpolation: str) -> None:
        self.steps, self.linear = max(1, steps), interpolation == "linear"
        self._prev = self._new = np.zeros(0)
        self._k = 0

    def reset(self, q: np.ndarray) -> None:
        self._prev = self._new = np.asarray(q, np.float64).copy()
        self._k = self.steps

    def set(self, q_target: np.ndarray) -> None:
        """A new policy target; the ramp starts from where the previous ramp currently is."""
        self._prev = self.current()
        self._new = np.asarray(q_target, np.float64).copy()
        self._k = 0

    def current(self) -> np.ndarray:
        if not self.linear or self._k >= self.steps:
            return self._new.copy()
        a = self._k / self.steps
        return (1 - a) * self._prev + a * self._new

    def advance(self) -> np.ndarray:
        """The target for this tick (first tick after `set` is already one step along the ramp)."""
        self._k = min(self._k + 1, self.steps)
        return self.current()


class CommandShaper:
    """Per-mode joint targets and the limit clamp; `clamped` counts clamped joint targets."""

    def __init__(self, cfg: RobotConfig) -> None:
        c = cfg.contract
        n = c.act_dim
        self.default = cfg.default_pose
        self.kp = np.asarray(c.kp, np.float64)
        self.kd = np.asarray(c.kd, np.float64)
        self.zeros = np.zeros(n)
        self.damping_kd = np.full(n, cfg.deploy.damping_kd)
        self.lower, self.upper = cfg.clamp_bounds()
        self.action_scale, self.action_clip = c.action_scale, c.action_clip
        self.foot_lift = np.asarray(c.foot_lift, np.float64) if c.foot_lift else None
        self.gait_offsets = np.asarray(c.gait_offsets, np.float64)
        self.gait_duty, self.lift_threshold = c.gait_duty, c.lift_moving_threshold
        self.stand_up_s = cfg.deploy.stand_up_s
        self.clamped = 0

    def clamp(self, q_des: np.ndarray) -> np.ndarray:
        """Clamp to the joint limits; count how many joint targets had to be moved."""
        out = np.clip(q_des, self.lower, self.upper)
        self.clamped += int(np.count_nonzero(out != q_des))
        return out

    def passive(self, q: np.ndarray) -> JointTarget:
        return JointTarget(Mode.PASSIVE, q.copy(), self.zeros, self.zeros)

    def damping(self, q: np.ndarray) -> JointTarget:
        """kp 0, kd = damping kd, q_des = measured q (kp is 0, so q_des only matters for logging)."""
        return JointTarget(Mode.DAMPING, q.copy(), self.zeros, self.damping_kd)

    def stand_up(self, start: np.ndarray, elapsed_s: float) -> tuple[JointTarget, bool]:
        """Linear ramp start → default pose over stand_up_s; returns (target, done)."""
        a = min(1.0, max(0.0, elapsed_s / self.stand_up_s))
        q = (1 - a) * start + a * self.default
        return JointTarget(Mode.STAND_UP, self.clamp(q), self.kp, self.kd), a >= 1.0

    def action_to_q(self, action: np.ndarray, phase: float = 0.0, command: np.ndarray | None = None) -> np.ndarray:
        """q_target = default + action_scale · clip(action) (the contract's action mapping), plus the foot-lift
        trajectory generator's offsets at clock `phase` under `command` when the contract has one."""
        q = self.default + self.action_scale * np.clip(action, -self.action_clip, self.action_clip)
        if self.foot_lift is None or command is None:
            return q
        return q + lift_offsets(np.asarray(phase, np.float64), np.asarray(command, np.float64), self.foot_lift,
                                self.gait_offsets, self.gait_duty, self.lift_threshold)

    def policy(self, q_des: np.ndarray) -> JointTarget:
        return JointTarget(Mode.POLICY, self.clamp(q_des), self.kp, self.kd)
