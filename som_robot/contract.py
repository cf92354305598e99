"""The observation/action contract between a trained policy and the robot that runs it.

Defined once, built by the env, embedded in the ONNX file's metadata by the exporter, and
checked by the daemon at load time, so a joint-order, default-pose, gain, layout, scale or
rate mismatch is a start-up error rather than a robot on the floor. numpy/json only: this
module is imported onboard, where there is no torch and no mujoco.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ContractError", "ObsTerm", "PolicyContract", "term_slices", "swing_lift", "command_moving",
           "lift_offsets", "METADATA_KEY", "CONTRACT_VERSION"]

METADATA_KEY = "som_robot.contract"
CONTRACT_VERSION = 1


class ContractError(ValueError):
    """The policy and the robot disagree; the message names the field."""


@dataclass(frozen=True)
class ObsTerm:
    """One slice of the observation vector: name, width, and the scale applied before the policy."""

    name: str
    dim: int
    scale: float = 1.0


def term_slices(terms: Sequence[ObsTerm]) -> dict[str, slice]:
    """Name → slice of the flat observation vector built from `terms` in order."""
    out, i = {}, 0
    for t in terms:
        out[t.name] = slice(i, i + t.dim)
        i += t.dim
    return out


def swing_lift(phase: Any, leg_offsets: Any, duty: float) -> Any:
    """(..., legs) share of full foot lift in [0, 1]: 4·s·(1 − s) over each leg's swing (s its progress through
    the swing, legs in stance while frac(phase + offset) < duty), 0 in stance. Plain arithmetic, so numpy arrays
    (onboard) and torch tensors (the env, on any device) run the same formula."""
    p = (phase[..., None] + leg_offsets) % 1.0
    s = ((p - duty) / (1.0 - duty)).clip(0.0, 1.0)
    return 4.0 * s * (1.0 - s)


def command_moving(command: Any, threshold: float) -> Any:
    """(...,) bool: a (..., 3) (vx, vy, yaw rate) command asks for motion (|v_xy| or |yaw rate| above
    `threshold`): the gait rewards follow the clock and the foot-lift generator runs only then."""
    v_xy = (command[..., 0] ** 2 + command[..., 1] ** 2) ** 0.5
    return (v_xy > threshold) | (abs(command[..., 2]) > threshold)


def lift_offsets(phase: Any, command: Any, foot_lift: Any, leg_offsets: Any, duty: float, threshold: float) -> Any:
    """(..., joints) joint-target offsets of the foot-lift generator: each leg's full-lift offsets (`foot_lift`,
    joint order, legs in `leg_offsets` order) times its `swing_lift` share, under a moving command only. The one
    definition the env (torch) and the daemon (numpy) both run."""
    share = swing_lift(phase, leg_offsets, duty)  # (..., legs)
    per_leg = share[..., None] * foot_lift.reshape(share.shape[-1], -1)  # (..., legs, joints per leg)
    return per_leg.reshape(*share.shape[:-1], -1) * command_moving(command, threshold)[..., None]


@dataclass(frozen=True)
class PolicyContract:
    """Everything a runtime must reproduce exactly to feed and apply a policy."""

    robot: str
    joint_names: tuple[str, ...]  # policy action / observation joint order
    default_pose: tuple[float, ...]  # [rad], same order
    kp: tuple[float, ...]  # [N·m/rad]
    kd: tuple[float, ...]  # [N·m·s/rad]
    torque_limits: tuple[float, ...]  # [N·m]
    action_scale: float  # q_target = default_pose + action_scale · action
    obs_terms: tuple[ObsTerm, ...]
    control_dt: float  # [s] policy period
    sim_dt: float  # [s] PD / physics period used in training
    action_clip: float = 1.0  # policy output is clipped to ±action_clip
    gait_freq: float = 0.0  # [Hz] clock of a 'gait_phase' term: phase = frac(k·control_dt·gait_freq), k = policy steps
    # Foot-lift trajectory generator (empty: none): q_target += foot_lift · swing_lift(phase, gait_offsets,
    # gait_duty)[leg of each joint] while |command| > lift_moving_threshold (xy norm or |yaw rate|).
    # foot_lift: [rad] joint offsets at full lift, joint order; gait_offsets: one clock offset per leg.
    foot_lift: tuple[float, ...] = ()
    gait_offsets: tuple[float, ...] = ()
    gait_duty: float = 0.5
    lift_moving_threshold: float = 0.1
    version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        for name in ("default_pose", "kp", "kd", "torque_limits"):
            if len(getattr(self, name)) != n:
                raise ContractError(f"contract field '{name}' has {len(getattr(self, name))} entries, "
                                    f"joint_names has {n}")
        if len(set(self.joint_names)) != n:
            raise ContractError("contract field 'joint_names' has duplicates")
        if not (self.control_dt > 0 and self.sim_dt > 0 and self.control_dt >= self.sim_dt):
            raise ContractError("contract fields 'control_dt'/'sim_dt' must be > 0 with control_dt >= sim_dt")
        if self.foot_lift:
            if len(self.foot_lift) != n:
                raise ContractError(f"contract field 'foot_lift' has {len(self.foot_lift)} entries, joint_names "
                                    f"has {n}")
            if not self.gait_offsets or n % len(self.gait_offsets) or self.gait_freq <= 0:
                raise ContractError("contract field 'gait_offsets' needs one offset per leg (joints divide evenly "
                                    "among legs) and 'gait_freq' > 0 when 'foot_lift' is set")
            if not 0.0 < self.gait_duty < 1.0:
                raise ContractError(f"contract field 'gait_duty' must be in (0, 1), got {self.gait_duty}")

    @property
    def obs_dim(self) -> int:
        return sum(t.dim for t in self.obs_terms)

    @property
    def act_dim(self) -> int:
        return len(self.joint_names)

    @property
    def decimation(self) -> int:
        return round(self.control_dt / self.sim_dt)

    def obs_slices(self) -> dict[str, slice]:
        """Name → slice of the flat observation vector."""
        return term_slices(self.obs_terms)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PolicyContract:
        try:
            d: dict[str, Any] = json.loads(text)
            if d.get("version") != CONTRACT_VERSION:
                raise ContractError(f"contract version {d.get('version')} != supported {CONTRACT_VERSION}")
            d["obs_terms"] = tuple(ObsTerm(**t) for t in d["obs_terms"])
            for k in ("joint_names", "default_pose", "kp", "kd", "torque_limits", "foot_lift", "gait_offsets"):
                if k not in d:  # files written before the foot-lift fields: no trajectory generator
                    continue
                d[k] = tuple(d[k])
            return cls(**d)
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ContractError(f"malformed policy contract: {e}") from e

    def check_matches(self, expected: PolicyContract, rel_tol: float = 1e-6) -> None:
        """Raise ContractError naming the first field where this (the policy's) contract differs."""
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(expected, f.name)
            if not _close(a, b, rel_tol):
                raise ContractError(f"policy/robot contract mismatch in '{f.name}': policy has {a!r}, "
                                    f"robot expects {b!r}")


def _close(a: Any, b: Any, rel_tol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(
            a, b, rel_tol=rel_tol, abs_tol=1e-9)
    if isinstance(a, Sequence) and not isinstance(a, str):
        return (isinstance(b, Sequence) and not isinstance(b, str) and len(a) == len(b)
                and all(_close(x, y, rel_tol) for x, y in zip(a, b, strict=True)))
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_close(getattr(a, f.name), getattr(b, f.name), rel_tol)
                                          for f in dataclasses.fields(a))
    return a == b
