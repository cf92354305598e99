"""The Go2 joystick task's left-right mirror, as signed permutations of the observation and the action.

Reflecting the world in the robot's sagittal (x-z) plane maps one Go2 trajectory onto another one that the
same MDP could have produced: the left legs do what the right legs did, the command's vy and yaw rate flip,
and, because the trot clock puts FL and FR half a cycle apart, the clock moves on by half a cycle. The
rewards are sums over legs and norms of velocities, so they do not change, and the domain randomisation's
ranges are symmetric. A learner can therefore store every transition twice (`runner.mirror`): twice the
data, and a policy that turns right as well as it turns left. `tests/sim/test_symmetry.py` checks the map
against MuJoCo itself (a mirrored start under mirrored actions stays the mirror image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.go2 import constants as C
from sim.go2.obs import OBS_LAYOUT, obs_slices

__all__ = ["SignedPermutation", "Mirror", "GO2_MIRROR", "joint_mirror", "pose_mirrors", "clock_shift"]


@dataclass(frozen=True)
class SignedPermutation:
    """y[..., i] = sign[i] · x[..., index[i]], for numpy arrays or torch tensors (of any device)."""

    index: np.ndarray
    sign: np.ndarray
    _cache: dict[Any, tuple[Any, Any]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.index)
        if sorted(self.index.tolist()) != list(range(n)) or self.sign.shape != (n,) or \
                not np.all(np.abs(self.sign) == 1):
            raise ValueError("a signed permutation needs a permutation of 0..n-1 and signs of ±1")
        if not np.array_equal(self.index[self.index], np.arange(n)) or \
                not np.all(self.sign * self.sign[self.index] == 1):
            raise ValueError("a mirror must be its own inverse")

    def __call__(self, x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return x[..., self.index] * self.sign.astype(x.dtype)
        key = (x.dtype, x.device)
        if key not in self._cache:
            import torch

            self._cache[key] = (torch.as_tensor(self.index, device=x.device),
                                torch.as_tensor(self.sign, dtype=x.dtype, device=x.device))
        index, sign = self._cache[key]
        return x[..., index] * sign


@dataclass(frozen=True)
class Mirror:
    """An env's mirror: `obs` maps observations, `act` actions."""

    obs: SignedPermutation
    act: SignedPermutation


def joint_mirror() -> SignedPermutation:
    """FL↔FR and RL↔RR; the abduction (hip, x axis) angle flips sign, thigh and calf (y axis) keep theirs.
    Needs a default pose whose hip angles mirror too (q − default is what the policy sees and outputs)."""
    legs = {leg: i for i, leg in enumerate(C.LEGS)}
    other = {"FL": "FR", "FR": "FL", "RL": "RR", "RR": "RL"}
    parts = len(C.JOINT_NAMES) // len(C.LEGS)
    index = np.array([legs[other[leg]] * parts + p for leg in C.LEGS for p in range(parts)])
    sign = np.tile(np.array([-1.0] + [1.0] * (parts - 1)), len(C.LEGS))
    joints = SignedPermutation(index, sign)
    if not pose_mirrors(C.DEFAULT_JOINT_POS, joints):
        raise ValueError("the default pose is not left-right symmetric: q - default does not mirror")
    return joints


def pose_mirrors(pose: Any, joints: SignedPermutation | None = None) -> bool:
    """Whether a default pose is its own mirror image (FR = FL with the hip negated, RR = RL likewise), so that
    q − pose, what the policy sees and outputs, mirrors with the joints."""
    q = np.asarray(pose, dtype=np.float64)
    return bool(np.array_equal((joints or _JOINTS)(q), q))


def clock_shift() -> float:
    """The phase shift (cycles) that maps each leg's clock onto its mirror leg's: 0.5 for a trot."""
    legs = {leg: i for i, leg in enumerate(C.LEGS)}
    other = np.array([legs[m] for m in ("FR", "FL", "RR", "RL")])
    shift = np.mod(C.GAIT_OFFSETS[other] - C.GAIT_OFFSETS, 1.0)
    if not np.allclose(shift, shift[0]) or not (np.isclose(shift[0], 0.0) or np.isclose(shift[0], 0.5)):
        raise ValueError(f"the gait clock has no signed-permutation mirror (leg shifts {shift})")
    return float(shift[0])


def _obs_mirror(joints: SignedPermutation) -> SignedPermutation:
    clock = -1.0 if np.isclose(clock_shift(), 0.5) else 1.0  # (cos, sin)(2π(φ + ½)) = −(cos, sin)(2πφ)
    per_term: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "gravity": (np.arange(3), np.array([1.0, -1.0, 1.0])),  # a polar vector: y flips
        "gyro": (np.arange(3), np.array([-1.0, 1.0, -1.0])),  # an axial vector: x and z flip
        "command": (np.arange(3), np.array([1.0, -1.0, -1.0])),  # vx, vy, yaw rate
        "joint_pos": (joints.index, joints.sign),
        "joint_vel": (joints.index, joints.sign),
        "last_action": (joints.index, joints.sign),
        "gait_phase": (np.arange(2), np.array([clock, clock])),
    }
    missing = [t.name for t in OBS_LAYOUT if t.name not in per_term]
    if missing:
        raise ValueError(f"no mirror for observation terms {missing}")
    dim = sum(t.dim for t in OBS_LAYOUT)
    index, sign = np.zeros(dim, dtype=np.int64), np.zeros(dim)
    for name, sl in obs_slices().items():
        idx, sg = per_term[name]
        index[sl] = sl.start + idx
        sign[sl] = sg
    return SignedPermutation(index, sign)


_JOINTS = joint_mirror()
GO2_MIRROR = Mirror(obs=_obs_mirror(_JOINTS), act=_JOINTS)
