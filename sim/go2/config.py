"""Frozen configs of the Go2 joystick task, loaded from YAML with unknown keys rejected.

Defaults here equal `configs/quadruped/go2_joystick.yaml`, so `Go2EnvConfig()` is the
documented task and the YAML is the place to change it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from som_robot.config import apply_overrides, check, from_dict, load_yaml

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_REWARD_SCALES",
    "OBS_NOISE_TERMS",
    "CommandConfig",
    "RewardConfig",
    "DomainRandConfig",
    "TerminationConfig",
    "RoughTerrainConfig",
    "Go2EnvConfig",
    "load_go2_config",
]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "configs" / "quadruped" / "go2_joystick.yaml"

Range = tuple[float, float]

# legged_gym-style weights; every term the env computes must be listed (0 disables one).
DEFAULT_REWARD_SCALES: Mapping[str, float] = MappingProxyType({
    "tracking_lin_vel": 1.0,
    "tracking_ang_vel": 0.5,
    "lin_vel_z": -2.0,
    "ang_vel_xy": -0.05,
    "orientation": -1.0,
    "torques": -2.0e-4,
    "action_rate": -0.01,
    "feet_air_time": 1.0,
    "collision": -1.0,
    "dof_pos_limits": -10.0,
})
# Observation terms that take sensor noise (names from obs.OBS_LAYOUT; command/last action are exact).
OBS_NOISE_TERMS = ("gravity", "gyro", "joint_pos", "joint_vel")


def _range(r: Range, key: str, lo: float | None = None, hi: float | None = None) -> None:
    check(r[0] <= r[1], key, f"low {r[0]} > high {r[1]}")
    if lo is not None:
        check(r[0] >= lo, key, f"must be >= {lo}")
    if hi is not None:
        check(r[1] <= hi, key, f"must be <= {hi}")


@dataclass(frozen=True)
class CommandConfig:
    """Body-frame velocity commands, uniform in the ranges, resampled per env every interval."""

    lin_vel_x: Range = (-1.0, 1.0)
    lin_vel_y: Range = (-0.5, 0.5)
    ang_vel_yaw: Range = (-1.0, 1.0)
    resample_interval_s: float = 10.0
    zero_below: float = 0.2  # |v_xy| below this becomes 0: teaches standing still

    def __post_init__(self) -> None:
        for k in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw"):
            _range(getattr(self, k), k)
        check(self.resample_interval_s > 0, "resample_interval_s", "must be > 0")
        check(self.zero_below >= 0, "zero_below", "must be >= 0")


@dataclass(frozen=True)
class RewardConfig:
    """Per-term scales (total = Σ scale·term·ctrl_dt) and the shape parameters of the terms."""

    scales: Mapping[str, float] = field(default_factory=lambda: DEFAULT_REWARD_SCALES)
    tracking_sigma: float = 0.25
    air_time_target: float = 0.5  # s; steps longer than this earn feet_air_time
    soft_dof_pos_limit: float = 0.9  # fraction of the joint range before dof_pos_limits bites
    only_positive: bool = False  # clip the total at 0 (legged_gym's only_positive_rewards)

    def __post_init__(self) -> None:
        keys, want = set(self.scales), set(DEFAULT_REWARD_SCALES)
        check(keys == want, "scales", f"must name exactly {sorted(want)}; missing {sorted(want - keys)}, "
                                      f"unknown {sorted(keys - want)}")
        check(self.tracking_sigma > 0, "tracking_sigma", "must be > 0")
        check(0 < self.soft_dof_pos_limit <= 1, "soft_dof_pos_limit", "must be in (0, 1]")


@dataclass(frozen=True)
class DomainRandConfig:
    """Ranges sampled per env at reset (uniform); a range with low == high fixes the value."""

    enabled: bool = True  # False: nominal model, no pushes, no latency, no noise
    friction: Range = (0.4, 1.25)  # foot sliding friction (feet have contact priority)
    added_mass: Range = (-1.0, 3.0)  # kg on the base
    com_offset: Range = (-0.03, 0.03)  # m, each axis of the base CoM
    motor_strength: Range = (0.9, 1.1)  # torque multiplier per joint
    kp_scale: Range = (0.9, 1.1)
    kd_scale: Range = (0.9, 1.1)
    latency_steps: tuple[int, int] = (0, 2)  # policy steps between an action and its use
    push_interval_s: float = 10.0  # 0 disables pushes
    push_vel: float = 1.0  # m/s, uniform kick added to the base's x and y velocity
    obs_noise: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(
        {"gravity": 0.05, "gyro": 0.2, "joint_pos": 0.01, "joint_vel": 1.5}))
    init_joint_noise: float = 0.1  # rad, uniform around the default pose

    def __post_init__(self) -> None:
        _range(self.friction, "friction", lo=0.0)
        _range(self.added_mass, "added_mass")
        _range(self.com_offset, "com_offset")
        for k in ("motor_strength", "kp_scale", "kd_scale"):
            _range(getattr(self, k), k, lo=0.0)
        lat = self.latency_steps
        check(0 <= lat[0] <= lat[1], "latency_steps", f"need 0 <= low <= high, got {lat}")
        check(self.push_interval_s >= 0 and self.push_vel >= 0, "push_interval_s", "push settings must be >= 0")
        unknown = sorted(set(self.obs_noise) - set(OBS_NOISE_TERMS))
        check(not unknown, "obs_noise", f"unknown terms {unknown}; valid: {list(OBS_NOISE_TERMS)}")
        check(all(v >= 0 for v in self.obs_noise.values()), "obs_noise", "scales must be >= 0")
        check(self.init_joint_noise >= 0, "init_joint_noise", "must be >= 0")


@dataclass(frozen=True)
class TerminationConfig:
    """A true terminal (no bootstrap): trunk on the ground or tipped over."""

    base_contact: bool = True
    max_roll: float = 1.0  # rad
    max_pitch: float = 1.0  # rad

    def __post_init__(self) -> None:
        check(self.max_roll > 0 and self.max_pitch > 0, "max_roll", "limits must be > 0")


@dataclass(frozen=True)
class RoughTerrainConfig:
    """Random smoothed heightfield over the spawn area; a flat plane lies around it."""

    half_size: float = 10.0  # m, the field covers [-half_size, half_size]^2
    max_height: float = 0.06  # m, bumps in [0, max_height]
    resolution: float = 0.1  # m per heightfield cell
    smoothing: int = 2  # box-filter passes (0: white noise)
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.half_size > 1.0, "half_size", "must be > 1 m")
        check(self.max_height >= 0, "max_height", "must be >= 0")
        check(0 < self.resolution <= self.half_size, "resolution", "must be in (0, half_size]")
        check(self.smoothing >= 0, "smoothing", "must be >= 0")


@dataclass(frozen=True)
class Go2EnvConfig:
    """The whole joystick task."""

    episode_length_s: float = 20.0
    backend: Literal["auto", "cpu", "warp"] = "auto"  # simulator; auto: MuJoCo Warp on CUDA, batched MuJoCo C else
    terrain: Literal["flat", "rough"] = "flat"
    rough: RoughTerrainConfig = field(default_factory=RoughTerrainConfig)
    command: CommandConfig = field(default_factory=CommandConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    domain_rand: DomainRandConfig = field(default_factory=DomainRandConfig)
    termination: TerminationConfig = field(default_factory=TerminationConfig)

    def __post_init__(self) -> None:
        check(self.episode_length_s > 0, "episode_length_s", "must be > 0")


def load_go2_config(path: str | Path | None = DEFAULT_CONFIG_PATH, overrides: Sequence[str] = ()) -> Go2EnvConfig:
    """Read the YAML (None: dataclass defaults), apply dotted ``key=value`` overrides, validate."""
    data = load_yaml(path) if path is not None else {}
    return from_dict(Go2EnvConfig, apply_overrides(data, overrides))
