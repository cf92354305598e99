"""The policy observation: its layout is defined once here and embedded in exported policies.

Everything is computed from the MuJoCo state rows (qpos/qvel), which are current after
each step, rather than from derived fields, which lag one physics step.
"""

from __future__ import annotations

import numpy as np

from som_robot.contract import ObsTerm, term_slices  # one definition, shared with the exported contract

__all__ = [
    "ObsTerm",
    "OBS_LAYOUT",
    "OBS_DIM",
    "obs_slices",
    "quat_to_rotmat",
    "rotate_to_body",
    "roll_pitch",
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
)
OBS_DIM = sum(t.dim for t in OBS_LAYOUT)


def obs_slices() -> dict[str, slice]:
    """Name → columns of the observation vector."""
    return term_slices(OBS_LAYOUT)


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz quaternions → (N, 3, 3) body-to-world rotations."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def rotate_to_body(R: np.ndarray, v_world: np.ndarray) -> np.ndarray:
    """World-frame vectors (N, 3) expressed in the base frame: Rᵀ v."""
    return np.einsum("nji,nj->ni", R, v_world)


def roll_pitch(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ZYX Euler roll and pitch of the base (rad), for the tip-over termination."""
    roll = np.arctan2(R[:, 2, 1], R[:, 2, 2])
    pitch = np.arcsin(np.clip(-R[:, 2, 0], -1.0, 1.0))
    return roll, pitch


def build_obs(terms: dict[str, np.ndarray], noise: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Concatenate raw terms (+ optional noise, in physical units) in layout order, scaled."""
    cols = []
    for t in OBS_LAYOUT:
        x = terms[t.name]
        assert x.shape[-1] == t.dim, (t.name, x.shape)
        if noise is not None and t.name in noise:
            x = x + noise[t.name]
        cols.append(x * t.scale)
    return np.concatenate(cols, axis=-1)
