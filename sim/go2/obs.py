"""The policy observation: its layout is defined once here and embedded in exported policies.

Everything is computed from the MuJoCo state rows (qpos/qvel), which are current after
each step, rather than from derived fields, which lag one physics step. The math takes numpy
arrays (CPU env) or torch tensors (Warp env, on its device) and returns the same kind, so both
backends share one definition of every formula; torch is imported lazily because the onboard
controller, which reads OBS_LAYOUT, installs numpy only.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from som_robot.contract import ObsTerm, term_slices  # one definition, shared with the exported contract

if TYPE_CHECKING:
    import torch

    Array = np.ndarray | torch.Tensor
else:
    Array = Any

__all__ = [
    "ObsTerm",
    "OBS_LAYOUT",
    "OBS_DIM",
    "obs_slices",
    "array_namespace",
    "row_norm",
    "quat_to_rotmat",
    "rotate_to_body",
    "roll_pitch",
    "base_kinematics",
    "phase_features",
    "build_obs",
]


# Order matters: it is the network input layout on the robot.
OBS_LAYOUT: tuple[ObsTerm, ...] = (
    ObsTerm("gravity", 3, 1.0),  # unit gravity direction in the base frame
    ObsTerm("gyro", 3, 0.25),  # base angular velocity, base frame (rad/s)
    ObsTerm("command", 3, 1.0),  # (vx, vy, yaw rate) command, base frame
    ObsTerm("joint_pos", 12, 1.0),  # q - default pose (rad)
    ObsTerm("joint_vel", 12, 0.05),  # qd (rad/s)
    ObsTerm("last_action", 12, 1.0),  # the policy's previous output in [-1, 1]
    ObsTerm("gait_phase", 2, 1.0),  # (cos, sin) of the trot clock, 2π·phase (constants.gait_phase)
)
OBS_DIM = sum(t.dim for t in OBS_LAYOUT)


def obs_slices() -> dict[str, slice]:
    """Name → columns of the observation vector."""
    return term_slices(OBS_LAYOUT)


def array_namespace(x: Array) -> ModuleType:
    """numpy for ndarrays, torch for tensors: both accept the numpy-style calls used here (axis=...)."""
    if isinstance(x, np.ndarray):
        return np
    import torch

    return torch


def row_norm(x: Array) -> Array:
    """Euclidean norm over the last axis."""
    return array_namespace(x).linalg.norm(x, axis=-1)


def _quat_products_to_rotmat() -> np.ndarray:
    """(16, 9) C with R.flat = vec(q qᵀ) @ C / |q|² for wxyz q: each rotation entry is a quadratic form in q."""
    C = np.zeros((4, 4, 3, 3))
    w, x, y, z = range(4)
    for (i, j), r, sign in (((w, w), (0, 0), 1), ((x, x), (0, 0), 1), ((y, y), (0, 0), -1), ((z, z), (0, 0), -1),
                            ((w, w), (1, 1), 1), ((x, x), (1, 1), -1), ((y, y), (1, 1), 1), ((z, z), (1, 1), -1),
                            ((w, w), (2, 2), 1), ((x, x), (2, 2), -1), ((y, y), (2, 2), -1), ((z, z), (2, 2), 1)):
        C[i, j][r] += sign
    for (i, j), r, sign in (((x, y), (0, 1), 1), ((w, z), (0, 1), -1), ((x, z), (0, 2), 1), ((w, y), (0, 2), 1),
                            ((x, y), (1, 0), 1), ((w, z), (1, 0), 1), ((y, z), (1, 2), 1), ((w, x), (1, 2), -1),
                            ((x, z), (2, 0), 1), ((w, y), (2, 0), -1), ((y, z), (2, 1), 1), ((w, x), (2, 1), 1)):
        C[i, j][r] += sign  # 2ab = ab + ba
        C[j, i][r] += sign
    return C.reshape(16, 9)


_QUAT_C = _quat_products_to_rotmat()
_QUAT_C_CACHE: dict[tuple[object, object], Any] = {}


def quat_to_rotmat(q: Array) -> Array:
    """(N, 4) wxyz quaternions (any norm) → (N, 3, 3) body-to-world rotations: vec(q qᵀ) @ C / |q|², a handful of
    ops instead of one per entry (the env runs this twice per policy step, on torch where each op costs µs)."""
    n = q.shape[0]
    outer = (q[:, :, None] * q[:, None, :]).reshape(n, 16)
    if isinstance(q, np.ndarray):
        C = _QUAT_C
    else:
        key = (q.dtype, q.device)
        if key not in _QUAT_C_CACHE:
            import torch

            _QUAT_C_CACHE[key] = torch.as_tensor(_QUAT_C, dtype=q.dtype, device=q.device)
        C = _QUAT_C_CACHE[key]
    return ((outer @ C) / (q * q).sum(axis=-1)[:, None]).reshape(n, 3, 3)


def rotate_to_body(R: Array, v_world: Array) -> Array:
    """World-frame vectors (N, 3) expressed in the base frame: Rᵀ v."""
    return array_namespace(R).einsum("nji,nj->ni", R, v_world)


def roll_pitch(R: Array) -> tuple[Array, Array]:
    """ZYX Euler roll and pitch of the base (rad), for the tip-over termination."""
    xp = array_namespace(R)
    roll = xp.arctan2(R[:, 2, 1], R[:, 2, 2])
    pitch = xp.arcsin(xp.clip(-R[:, 2, 0], -1.0, 1.0))
    return roll, pitch


def base_kinematics(qpos: Array, qvel: Array) -> tuple[Array, Array, Array, Array]:
    """Rotation, and base-frame linear velocity, angular velocity and gravity direction (copies)."""
    rot = quat_to_rotmat(qpos[:, 3:7])
    lin_vel = rotate_to_body(rot, qvel[:, 0:3])
    ang_vel = qvel[:, 3:6] * 1.0  # a copy: the free joint's angular velocity is already in the base frame
    gravity = -rot[:, 2, :]  # Rᵀ (0, 0, -1)
    return rot, lin_vel, ang_vel, gravity


def phase_features(phase: Array) -> Array:
    """(N,) clock phase in [0, 1) → (N, 2) (cos, sin) of 2π·phase."""
    xp = array_namespace(phase)
    ang = 2.0 * np.pi * phase
    return xp.stack([xp.cos(ang), xp.sin(ang)], axis=-1)


def build_obs(terms: dict[str, Array], noise: dict[str, Array] | None = None) -> Array:
    """Concatenate raw terms (+ optional noise, in physical units) in layout order, scaled."""
    cols = []
    for t in OBS_LAYOUT:
        x = terms[t.name]
        assert x.shape[-1] == t.dim, (t.name, x.shape)
        if noise is not None and t.name in noise:
            x = x + noise[t.name]
        cols.append(x * t.scale)
    return array_namespace(cols[0]).concatenate(cols, axis=-1)
