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


def quat_to_rotmat(q: Array) -> Array:
    """(N, 4) wxyz quaternions → (N, 3, 3) body-to-world rotations."""
    xp = array_namespace(q)
    q = q / row_norm(q)[:, None]
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return xp.stack([
        xp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
        xp.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
        xp.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=-2)


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
