"""The one hardware interface of the deploy chain, implemented by the MuJoCo Go2 and the physical-robot bridge.

`hardware.server` drives any `RobotInterface` the same way, so the LCM side (and everything behind it:
estimator, daemon) cannot tell the simulator from the robot. Numpy only: this runs onboard.

Time model: the robot has a tick period `dt` (the motor-driver / command-send period). `write()` only
replaces the held command; `step()` makes one tick happen with it (sim: one physics step with the PD law;
real robot: send the command to the motor drivers). Wall-clock pacing of `step()` is the caller's job,
which is what lets the sim also run in lockstep with the controller.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from robots import go2

__all__ = [
    "RobotState",
    "MotorCommand",
    "RobotInterface",
    "DAMPING_KD",
    "KP_MAX",
    "KD_MAX",
    "validate_command",
    "CommandLimits",
]

DAMPING_KD = 2.0  # N·m·s/rad: the driver-side safe state (kp = 0); slows a fall without holding the pose
# Sane gain ceilings: the Go2 is run at kp 20–60, kd 0.5–5; a command far outside is a bug, not a gait.
KP_MAX = 200.0
KD_MAX = 20.0


def _vec(n: int) -> np.ndarray:
    return np.zeros(n)


@dataclass
class RobotState:
    """One sensor sample, arrays in policy joint order (FL, FR, RL, RR × hip, thigh, calf) and leg order.

    The ground-truth fields are filled by the simulator only (None on hardware).
    """

    t: float  # s, robot clock (sim time, or the bridge's receive time)
    q: np.ndarray = field(default_factory=lambda: _vec(12))  # rad
    qd: np.ndarray = field(default_factory=lambda: _vec(12))  # rad/s
    tau_est: np.ndarray = field(default_factory=lambda: _vec(12))  # N·m, the torque the driver applied/estimates
    quat: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0, 0.0]))  # wxyz, body → world
    gyro: np.ndarray = field(default_factory=lambda: _vec(3))  # rad/s, body frame
    accel: np.ndarray = field(default_factory=lambda: _vec(3))  # m/s², specific force, body (+9.81 z at rest)
    foot_force: np.ndarray = field(default_factory=lambda: _vec(4))  # N (bridge: calibrated sensor counts)
    foot_contact: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=bool))
    base_quat: np.ndarray | None = None  # wxyz, noise-free
    base_pos: np.ndarray | None = None  # m, world
    base_lin_vel_world: np.ndarray | None = None  # m/s
    base_ang_vel_body: np.ndarray | None = None  # rad/s, noise-free


@dataclass
class MotorCommand:
    """Joint PD command: tau = kp (q_des − q) + kd (qd_des − qd) + tau_ff, clipped by the driver."""

    q_des: np.ndarray
    qd_des: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    tau_ff: np.ndarray

    @classmethod
    def damping(cls, n: int = 12, kd: float = DAMPING_KD) -> MotorCommand:
        """The safe state: no stiffness, no feed-forward, velocity damping only."""
        z = np.zeros(n)
        return cls(q_des=z.copy(), qd_des=z.copy(), kp=z.copy(), kd=np.full(n, float(kd)), tau_ff=z.copy())

    @classmethod
    def hold(cls, q_des: np.ndarray, kp: float, kd: float) -> MotorCommand:
        """Position hold at `q_des` with uniform gains (tests, stand-up targets)."""
        q = np.asarray(q_des, dtype=float).copy()
        n = q.shape[0]
        return cls(q_des=q, qd_des=np.zeros(n), kp=np.full(n, float(kp)), kd=np.full(n, float(kd)),
                   tau_ff=np.zeros(n))

    def is_damping(self) -> bool:
        return bool(np.all(self.kp == 0) and np.all(self.tau_ff == 0))


@dataclass(frozen=True)
class CommandLimits:
    """What a command may ask of the joints: q_des inside the joint range plus a margin, |tau_ff| within the
    motor torque limits (policy joint order)."""

    q_low: tuple[float, ...]
    q_high: tuple[float, ...]
    tau_max: tuple[float, ...]
    margin: float = 0.1  # [rad] a damping command's q_des is the measured q, which may sit on a stop

    @classmethod
    def go2(cls, margin: float = 0.1) -> CommandLimits:
        """The Go2's MJCF joint ranges and motor limits (the robot facts the policy contract also carries)."""
        return cls(go2.JOINT_LOWER, go2.JOINT_UPPER, go2.TORQUE_LIMITS, margin)


def validate_command(n: int, q_des: object, qd_des: object, kp: object, kd: object, tau_ff: object,
                     num_joints: int = 12, kp_max: float = KP_MAX, kd_max: float = KD_MAX,
                     limits: CommandLimits | None = None) -> str | None:
    """Why a command must not reach the motors (None if it may). Shared by the server and the bridge."""
    if n != num_joints:
        return f"n={n}, expected {num_joints}"
    for name, v in (("q_des", q_des), ("qd_des", qd_des), ("kp", kp), ("kd", kd), ("tau_ff", tau_ff)):
        a = np.asarray(v, dtype=float)
        if a.shape != (num_joints,):
            return f"{name} has shape {a.shape}, expected ({num_joints},)"
        if not np.all(np.isfinite(a)):
            return f"{name} not finite"
    kp_a, kd_a = np.asarray(kp, dtype=float), np.asarray(kd, dtype=float)
    if np.any(kp_a < 0) or np.any(kp_a > kp_max):
        return f"kp outside [0, {kp_max}] (min {kp_a.min():.3g}, max {kp_a.max():.3g})"
    if np.any(kd_a < 0) or np.any(kd_a > kd_max):
        return f"kd outside [0, {kd_max}] (min {kd_a.min():.3g}, max {kd_a.max():.3g})"
    if limits is not None:
        q, lo, hi = np.asarray(q_des, float), np.asarray(limits.q_low), np.asarray(limits.q_high)
        # only where kp > 0: without stiffness q_des has no effect (a damping command's q_des may be anything)
        bad = np.flatnonzero(((q < lo - limits.margin) | (q > hi + limits.margin)) & (kp_a > 0))
        if bad.size:
            j = int(bad[0])
            return (f"q_des[{j}] = {q[j]:.3f} rad outside the joint range [{lo[j]:.3f}, {hi[j]:.3f}] "
                    f"± {limits.margin:g}")
        tau, tmax = np.asarray(tau_ff, float), np.asarray(limits.tau_max)
        bad = np.flatnonzero(np.abs(tau) > tmax)
        if bad.size:
            j = int(bad[0])
            return f"tau_ff[{j}] = {tau[j]:.3f} N m beyond the motor limit ±{tmax[j]:g}"
    return None


class RobotInterface(abc.ABC):
    """Read sensors, hold a motor command, tick, and fall back to damping; sim and hardware alike."""

    @property
    @abc.abstractmethod
    def num_joints(self) -> int:
        """Actuated joints (12 on the Go2)."""

    @property
    @abc.abstractmethod
    def dt(self) -> float:
        """Seconds per `step()` tick."""

    @abc.abstractmethod
    def start(self) -> None:
        """Acquire the robot (sim: load and reset; hardware: open the link and wait for state). Holds damping."""

    @abc.abstractmethod
    def read(self) -> RobotState:
        """The newest sensor sample (copies; safe to keep)."""

    @abc.abstractmethod
    def write(self, cmd: MotorCommand) -> None:
        """Replace the held command; it is applied from the next `step()` until replaced."""

    @abc.abstractmethod
    def step(self, nstep: int = 1) -> None:
        """`nstep` ticks of `dt` with the held command (sim: physics steps in one call; hardware: send it to the
        drivers, which hold it)."""

    def damp(self, kd: float = DAMPING_KD) -> None:
        """Hold the safe state (kp = 0, damping only) until the next `write()`."""
        self.write(MotorCommand.damping(self.num_joints, kd))

    @abc.abstractmethod
    def stop(self) -> None:
        """Leave the robot damped and release it; idempotent."""
