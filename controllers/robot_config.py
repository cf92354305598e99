"""The robot as the onboard daemon sees it: the policy contract it expects plus deploy and safety settings.

Loaded from `configs/robots/<robot>.yaml` into frozen dataclasses (som_robot.config.from_dict: unknown or
mistyped keys fail naming the key). numpy/yaml only; no torch, no mujoco, no MJCF at run time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from controllers.inputs import Bounds
from som_robot.config import ConfigError, apply_overrides, check, from_dict, load_yaml
from som_robot.contract import PolicyContract

__all__ = ["DEFAULT_ROBOT_CONFIG", "JointLimits", "DeployConfig", "WatchdogConfig", "RtConfig", "RobotConfig",
           "PlausibilityConfig", "load_robot_config"]

DEFAULT_ROBOT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "robots" / "go2.yaml"

Range = tuple[float, float]


def _range(r: Range, key: str) -> None:
    check(r[0] <= r[1], key, f"range {r} must have low <= high")


@dataclass(frozen=True)
class JointLimits:
    """Joint position limits [rad] in policy joint order (the MJCF ranges)."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]

    def __post_init__(self) -> None:
        check(len(self.lower) == len(self.upper), "lower", "lower and upper must have the same length")
        check(all(lo < hi for lo, hi in zip(self.lower, self.upper, strict=True)), "upper", "must be > lower")


@dataclass(frozen=True)
class DeployConfig:
    """How the daemon drives the robot outside the policy and shapes its commands."""

    stand_up_s: float = 2.0
    damping_kd: float = 2.0
    interpolation: Literal["hold", "linear"] = "hold"
    joint_limit_margin: float = 0.0
    command_vx: Range = (-1.0, 1.0)
    command_vy: Range = (-0.5, 0.5)
    command_yaw_rate: Range = (-1.0, 1.0)
    shutdown_damping_s: float = 0.2
    spin_s: float = 0.0003
    phase_offset_s: float = 0.0003  # tick this long after a joint-state sample arrives (phase lock); < 0: off
    sample_grace_s: float = 0.0  # hold a tick up to this long past its deadline for a late sample; 0: off
    num_feet: int = 4

    def __post_init__(self) -> None:
        check(self.stand_up_s > 0, "stand_up_s", "must be > 0")
        check(self.damping_kd >= 0, "damping_kd", "must be >= 0")
        check(self.joint_limit_margin >= 0, "joint_limit_margin", "must be >= 0")
        for k in ("command_vx", "command_vy", "command_yaw_rate"):
            _range(getattr(self, k), k)
        check(self.shutdown_damping_s >= 0, "shutdown_damping_s", "must be >= 0")
        check(0 <= self.spin_s < 0.002, "spin_s", "must be in [0, 2 ms)")
        check(self.phase_offset_s < 0.002, "phase_offset_s", "must be < 2 ms (negative turns the phase lock off)")
        check(0 <= self.sample_grace_s < 0.002, "sample_grace_s", "must be in [0, 2 ms)")
        check(self.num_feet >= 0, "num_feet", "must be >= 0")


@dataclass(frozen=True)
class WatchdogConfig:
    """Message-age limits [s]; exceeding one sends the daemon to DAMPING."""

    joint_state: float = 0.03
    imu: float = 0.03
    state_estimate: float = 0.03
    joystick: float = 0.5
    max_command_age: float = 0.05  # by utime (robot and daemon clocks must agree); 0 = off

    def __post_init__(self) -> None:
        for k in ("joint_state", "imu", "state_estimate", "joystick"):
            check(getattr(self, k) > 0, k, "must be > 0")
        check(self.max_command_age >= 0, "max_command_age", "must be >= 0 (0 = off)")


@dataclass(frozen=True)
class PlausibilityConfig:
    """Physical bounds on every numeric input the daemon accepts; a finite value outside them is INVALID
    (a faulty encoder or IMU that keeps its seq/utime right), named with its field, and the daemon damps."""

    joint_pos_margin: float = 0.3  # [rad] beyond the joint limits (encoder offset, overshoot into the stop)
    joint_vel: float = 40.0  # [rad/s] |qd| (Go2 motors: ~30 rad/s no-load)
    torque_factor: float = 1.5  # |tau_est| <= factor * contract torque limit
    gyro: float = 35.0  # [rad/s] |gyro| (a ±2000 deg/s IMU's full scale)
    accel: float = 160.0  # [m/s^2] |accel| per axis (±16 g)
    quat_norm_tol: float = 0.1  # | ||quat|| - 1 |
    lin_vel: float = 5.0  # [m/s] |estimated base velocity| per axis
    ang_vel: float = 35.0  # [rad/s] |estimated base angular velocity| per axis
    position: float = 1000.0  # [m] |estimated base position| per axis
    # Fall detection (STAND_UP and POLICY): roll or pitch from the IMU beyond these = the training env's
    # tip-over termination (sim.go2.config.TerminationConfig, 1 rad); a robot lying flat reads ~0, so stand-up
    # from lying down is unaffected.
    max_roll: float = 1.0  # [rad]
    max_pitch: float = 1.0  # [rad]

    def __post_init__(self) -> None:
        for k in ("joint_pos_margin", "quat_norm_tol"):
            check(getattr(self, k) >= 0, k, "must be >= 0")
        for k in ("joint_vel", "torque_factor", "gyro", "accel", "lin_vel", "ang_vel", "position", "max_roll",
                  "max_pitch"):
            check(getattr(self, k) > 0, k, "must be > 0")


@dataclass(frozen=True)
class RtConfig:
    """Real-time scheduling applied with --rt."""

    priority: int = 80
    cpus: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check(1 <= self.priority <= 99, "priority", "SCHED_FIFO priority must be in [1, 99]")


@dataclass(frozen=True)
class RobotConfig:
    """Everything the daemon needs about the robot; `contract` is what the policy file must embed."""

    contract: PolicyContract
    joint_limits: JointLimits
    deploy: DeployConfig = field(default_factory=DeployConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    # Against a simulated robot (daemon --sim-hardware): the MuJoCo server is a Python process sharing the
    # dev machine's cores, so a descheduled sim is not a broken robot; the physical Go2 keeps `watchdog`.
    watchdog_sim: WatchdogConfig = field(default_factory=lambda: WatchdogConfig(
        joint_state=0.1, imu=0.1, state_estimate=0.1, joystick=0.5, max_command_age=0.15))
    rt: RtConfig = field(default_factory=RtConfig)
    plausibility: PlausibilityConfig = field(default_factory=PlausibilityConfig)

    def __post_init__(self) -> None:
        n = self.contract.act_dim
        check(len(self.joint_limits.lower) == n, "joint_limits", f"needs {n} entries (one per contract joint)")
        inside = all(lo <= q <= hi for lo, q, hi in
                     zip(self.joint_limits.lower, self.contract.default_pose, self.joint_limits.upper, strict=True))
        check(inside, "joint_limits", "contract.default_pose must lie inside the joint limits")

    def input_bounds(self) -> Bounds:
        """Physical bounds for the input gates of the daemon and the estimator (joint limits + margin, sensor
        full scales, estimate ranges), from `plausibility` and the contract's torque limits."""
        p, lim, c = self.plausibility, self.joint_limits, self.contract
        return Bounds(q_low=tuple(x - p.joint_pos_margin for x in lim.lower),
                      q_high=tuple(x + p.joint_pos_margin for x in lim.upper), qd_max=p.joint_vel,
                      tau_max=tuple(p.torque_factor * t for t in c.torque_limits), gyro_max=p.gyro,
                      accel_max=p.accel, quat_norm_tol=p.quat_norm_tol, lin_vel_max=p.lin_vel,
                      ang_vel_max=p.ang_vel, position_max=p.position)

    def for_sim_hardware(self) -> RobotConfig:
        """This config with the simulated-robot watchdog limits in place of the physical ones."""
        return dataclasses.replace(self, watchdog=self.watchdog_sim)

    @property
    def num_joints(self) -> int:
        return self.contract.act_dim

    @property
    def default_pose(self) -> np.ndarray:
        return np.asarray(self.contract.default_pose, dtype=np.float64)

    def clamp_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """q_des bounds [rad]: joint limits shrunk by the margin."""
        m = self.deploy.joint_limit_margin
        lower, upper = np.asarray(self.joint_limits.lower, np.float64), np.asarray(self.joint_limits.upper, np.float64)
        return lower + m, upper - m


def load_robot_config(path: str | Path = DEFAULT_ROBOT_CONFIG, overrides: Sequence[str] = ()) -> RobotConfig:
    """Read and validate a robot YAML; `overrides` are dotted ``key=value`` strings (e.g. deploy.stand_up_s=0.5)."""
    data = apply_overrides(load_yaml(path), overrides)
    try:
        return from_dict(RobotConfig, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}", key=e.key, detail=e.detail) from None
