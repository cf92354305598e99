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

from sim.go2.constants import ACTION_SCALE, DEFAULT_JOINT_POS, GAIT_FREQ
from sim.go2.symmetry import pose_mirrors
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

# Weights of the named terms; every term the env computes must be listed (0 disables one). Positive
# scales are the task (tracking, gait), negative ones the penalties (see RewardConfig.composition).
DEFAULT_REWARD_SCALES: Mapping[str, float] = MappingProxyType({
    "tracking": 2.0,  # xy kernel x yaw kernel (the product task); the two below are legged_gym's separate terms
    "tracking_lin_vel": 0.0,
    "tracking_ang_vel": 0.0,
    "lin_vel_z": -2.0,
    "ang_vel_xy": -0.05,
    "orientation": -1.0,
    "torques": -2.0e-4,
    "action_rate": -0.01,
    "feet_air_time": 1.0,
    "gait_contact": 0.5,
    "swing_height": 0.5,
    "stand_still": -0.5,
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
    """Body-frame velocity commands, uniform in the ranges, resampled per env every interval.

    With `curriculum` on, the ranges start at (initial_lin_vel_x, vy = 0, yaw = 0, no stand commands), a
    non-zero forward command the robot must step to follow, and widen linearly with a level in [0, 1] that
    rises by `curriculum_step` whenever the running mean of the linear tracking term reaches
    `curriculum_threshold`; at level 1 they are the full ranges with `stand_prob` stand commands.
    `curriculum_max_falls` (falls per env-minute over the interval, off when None) also holds the level while
    the envs fall more often than that. `keep_on_fall`: an env whose episode ends in a fall keeps its command
    through the reset. Without it a fall resamples the command, so the commands a policy falls under fill
    a small share of the buffer: a Go2 policy that dove under forward commands (74-84 falls per env-minute
    there) fell 9 per env-minute over the mixed commands it trained on. `keep_on_fall_from_level` turns it
    on only from that curriculum level: the lunge that takes SOM off the standing start stays cheap, and the
    forward start it falls from is trained once the ranges are wide.
    `curriculum_patience_steps` (off when None): once the level has reached `curriculum_patience_from_level`
    (after the take-off, so a standing policy never widens its ranges), a level held for that many env steps
    (all envs together) rises anyway: SOM held level 0.5 for 50-70 min in five runs and never saw the bar's
    backward and fast commands, which it then must extrapolate to.
    """

    lin_vel_x: Range = (-1.0, 1.0)
    lin_vel_y: Range = (-0.5, 0.5)
    ang_vel_yaw: Range = (-1.0, 1.0)
    resample_interval_s: float = 10.0
    zero_below: float = 0.2  # |v_xy| below this becomes 0: teaches standing still
    stand_prob: float = 0.1  # fraction of commands that are exactly (0, 0, 0)
    curriculum: bool = True
    initial_lin_vel_x: Range = (0.3, 0.8)
    curriculum_threshold: float = 0.3  # mean of the `tracking` kernel over an interval (1 = perfect)
    curriculum_step: float = 0.25
    curriculum_interval_s: float = 5.0  # how often the level is checked
    curriculum_max_falls: float | None = None  # falls per env-minute above which the level holds (None: off)
    curriculum_patience_steps: int | None = None  # env steps a level may hold before it rises anyway (None: off)
    curriculum_patience_from_level: float = 0.25  # ... from this level on (the take-off stays tracking-gated)
    keep_on_fall: bool = True  # a fall's reset keeps the env's command instead of drawing a new one
    keep_on_fall_from_level: float = 0.5  # ... once the curriculum level reaches this (1.0: at the full ranges)
    # share of resets whose base starts moving at the env's command (planar velocity and yaw rate), legs still:
    # a standing policy then sees what tracking pays before it has found a step (reference-state-style starts)
    running_start: float = 0.0

    def __post_init__(self) -> None:
        for k in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw", "initial_lin_vel_x"):
            _range(getattr(self, k), k)
        check(self.resample_interval_s > 0, "resample_interval_s", "must be > 0")
        check(self.zero_below >= 0, "zero_below", "must be >= 0")
        check(0.0 <= self.stand_prob <= 1.0, "stand_prob", "must be in [0, 1]")
        check(0.0 < self.curriculum_step <= 1.0, "curriculum_step", "must be in (0, 1]")
        check(self.curriculum_interval_s > 0, "curriculum_interval_s", "must be > 0")
        check(0.0 <= self.keep_on_fall_from_level <= 1.0, "keep_on_fall_from_level", "must be in [0, 1]")
        check(0.0 <= self.running_start <= 1.0, "running_start", "must be in [0, 1]")
        check(self.curriculum_patience_steps is None or self.curriculum_patience_steps > 0,
              "curriculum_patience_steps", "must be > 0 (or null: off)")
        check(0.0 < self.curriculum_patience_from_level <= 1.0, "curriculum_patience_from_level",
              "must be in (0, 1]")
        check(self.curriculum_max_falls is None or self.curriculum_max_falls >= 0, "curriculum_max_falls",
              "must be >= 0 (or null: off)")


@dataclass(frozen=True)
class RewardConfig:
    """Per-term scales and shape parameters, and how the weighted terms combine.

    composition "product" (default): total = max(Σ task terms, 0)·exp(neg_sigma·Σ penalties)·ctrl_dt, with
    task terms the positive-scale ones: a robot that stands under a moving command earns exactly nothing
    (linear tracking kernels are 0 there, the gait terms average 0), and falling ends a non-negative stream.
    "sum": legged_gym's Σ scale·term·ctrl_dt (optionally clipped at 0).
    """

    scales: Mapping[str, float] = field(default_factory=lambda: DEFAULT_REWARD_SCALES)
    composition: Literal["product", "sum"] = "product"
    neg_sigma: float = 0.5  # product: penalties enter as exp(neg_sigma · Σ scale·term)
    tracking_kernel: Literal["linear", "exp"] = "linear"
    tracking_sigma: float = 0.25  # exp kernel: exp(-err²/sigma)
    # linear kernel: clip(1 - |err| / max(|cmd|, floor), 0, 1), zero for a robot that does not move
    lin_vel_floor: float = 0.25  # m/s
    ang_vel_floor: float = 0.25  # rad/s
    air_time_target: float = 0.25  # s; feet_air_time pays min(air time, target) at each touchdown
    swing_height: float = 0.08  # m; swing_height pays clip(foot height / this, 0, 1) for feet in swing
    moving_threshold: float = 0.1  # |cmd| (xy norm or |yaw|) above which the gait terms follow the clock
    # "tracking": the gait terms (feet_air_time, gait_contact, swing_height) are multiplied by the tracking
    # kernel, so trotting in place under a moving command earns nothing either (SOM's run found that optimum)
    gait_gate: Literal["none", "tracking"] = "none"
    soft_dof_pos_limit: float = 0.9  # fraction of the joint range before dof_pos_limits bites
    only_positive: bool = False  # sum: clip the total at 0 (legged_gym's only_positive_rewards)
    # Subtracted (not × dt) on the step an episode terminates: under the product composition rewards are >= 0,
    # so without it a fall only costs the little a poor policy would have earned next, and lunging forward into
    # a fall pays (SOM's gated run: vx 0.3 m/s at 58 falls/min). 0 = off.
    termination_penalty: float = 0.5
    # The penalty applies once the command curriculum reaches this level (0: always). At level 0 a lunge into a
    # fall is how SOM leaves the standing start (0.3 from the start kept it standing; README), so the fall
    # cost can wait until the robot moves and the dive from rest is what is left to unlearn (at 0.5: SOM's
    # seed 0 passes 12 of the 14 walk-bar rows without a fall, policies/README.md, 2026-12-06).
    termination_from_level: float = 0.5

    def __post_init__(self) -> None:
        keys, want = set(self.scales), set(DEFAULT_REWARD_SCALES)
        check(keys == want, "scales", f"must name exactly {sorted(want)}; missing {sorted(want - keys)}, "
                                      f"unknown {sorted(keys - want)}")
        check(self.tracking_sigma > 0, "tracking_sigma", "must be > 0")
        check(self.neg_sigma >= 0, "neg_sigma", "must be >= 0")
        check(self.lin_vel_floor > 0 and self.ang_vel_floor > 0, "lin_vel_floor", "floors must be > 0")
        check(self.air_time_target > 0 and self.swing_height > 0, "swing_height", "must be > 0")
        check(0 < self.soft_dof_pos_limit <= 1, "soft_dof_pos_limit", "must be in (0, 1]")
        check(self.termination_penalty >= 0, "termination_penalty", "must be >= 0")
        check(0.0 <= self.termination_from_level <= 1.0, "termination_from_level", "must be in [0, 1]")


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
    # rad per unit action (q* = default + action_scale·a, a in [-1, 1]); part of the exported contract, so a
    # policy trained with another box only runs where the robot config allows that box (contract check)
    action_scale: float = ACTION_SCALE
    # trot clock (Hz) behind the gait_phase observation and the gait rewards; also in the contract. A faster clock
    # shortens stance, so the same stride sweep carries the body faster (README, "Where walking stands")
    gait_freq: float = GAIT_FREQ
    # joint pose (rad, policy joint order) that actions and joint_pos observations are taken about; null: the
    # robot's (robots/go2.py, every thigh 0.9). In the contract too. The learners hold both rear thighs at the box's
    # +0.35 rad end at speed (policies/README.md, "A 3 Hz trot clock"): a pose with them further back frees that swing
    default_pose: tuple[float, ...] | None = None
    # foot-lift trajectory generator (m; 0: off): under a moving command each swing foot's thigh and calf targets
    # get the offsets that lift it this high, times 4·s·(1 − s) over the swing (s its progress on the trot clock);
    # the policy's actions are residuals on top (Lee et al. 2020). Stepping in place is then what a zero action
    # does, so the take-off no longer has to be found from a stand. In the contract (the daemon adds the same)
    foot_lift: float = 0.0
    rough: RoughTerrainConfig = field(default_factory=RoughTerrainConfig)
    command: CommandConfig = field(default_factory=CommandConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    domain_rand: DomainRandConfig = field(default_factory=DomainRandConfig)
    termination: TerminationConfig = field(default_factory=TerminationConfig)

    def __post_init__(self) -> None:
        check(self.episode_length_s > 0, "episode_length_s", "must be > 0")
        check(0.0 < self.action_scale <= 1.0, "action_scale", f"must be in (0, 1] rad, got {self.action_scale}")
        check(0.0 < self.gait_freq <= 5.0, "gait_freq", f"must be in (0, 5] Hz, got {self.gait_freq}")
        check(0.0 <= self.foot_lift <= 0.15, "foot_lift", f"must be in [0, 0.15] m, got {self.foot_lift}")
        if self.default_pose is not None:
            q = self.default_pose
            n = len(DEFAULT_JOINT_POS)
            check(len(q) == n, "default_pose", f"needs {n} angles, got {len(q)}")
            # or q - default would not mirror (runner.mirror)
            check(pose_mirrors(q), "default_pose",
                  f"must be left-right symmetric (FR = FL with the hip negated, RR = RL likewise), got {q}")

    @property
    def joint_default(self) -> tuple[float, ...]:
        """The pose actions and joint observations are relative to: `default_pose`, or the robot's."""
        return tuple(float(x) for x in (DEFAULT_JOINT_POS if self.default_pose is None else self.default_pose))


def load_go2_config(path: str | Path | None = DEFAULT_CONFIG_PATH, overrides: Sequence[str] = ()) -> Go2EnvConfig:
    """Read the YAML (None: dataclass defaults), apply dotted ``key=value`` overrides, validate."""
    data = load_yaml(path) if path is not None else {}
    return from_dict(Go2EnvConfig, apply_overrides(data, overrides))
