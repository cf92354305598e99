"""Go2 leg forward kinematics and foot Jacobians in numpy, for the onboard state estimator.

The geometry is read once from `sim/go2/xmls/go2.xml` (MuJoCo Menagerie unitree_go2) and hard-coded
here so the robot side needs no MJCF parser and no MuJoCo; `tests/controllers/test_kinematics.py`
checks it against MuJoCo's foot sites. Each leg is hip (abduction, about base x) → thigh (about y)
→ calf (about y); all angles are in the policy joint order FL, FR, RL, RR × (hip, thigh, calf).

The "foot" point is the centre of the foot sphere (the MJCF foot geom / the `*_foot` site), not the
ground contact point: on flat ground a stance foot's centre sits `FOOT_RADIUS` above the floor.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NUM_LEGS",
    "HIP_OFFSETS",
    "THIGH_OFFSETS",
    "CALF_OFFSET",
    "FOOT_OFFSET",
    "FOOT_RADIUS",
    "foot_positions",
    "foot_jacobians",
    "foot_positions_and_jacobians",
    "cross",
    "foot_velocities",
    "calf_angular_velocities",
]

NUM_LEGS = 4

# From go2.xml (body pos attributes), leg order FL, FR, RL, RR:
#   <body name="FL_hip" pos="0.1934 0.0465 0">   hip joint axis 1 0 0 (class abduction)
#   <body name="FL_thigh" pos="0 0.0955 0">      thigh joint axis 0 1 0 (FR/RR: y = -0.0955)
#   <body name="FL_calf" pos="0 0 -0.213">       calf joint axis 0 1 0
#   <default class="foot"> geom size="0.022" pos="-0.002 0 -0.213"   (foot sphere in the calf frame)
HIP_OFFSETS = np.array([
    [0.1934, 0.0465, 0.0],
    [0.1934, -0.0465, 0.0],
    [-0.1934, 0.0465, 0.0],
    [-0.1934, -0.0465, 0.0],
])  # hip joint origin in the base frame [m]
THIGH_OFFSETS = np.array([
    [0.0, 0.0955, 0.0],
    [0.0, -0.0955, 0.0],
    [0.0, 0.0955, 0.0],
    [0.0, -0.0955, 0.0],
])  # thigh joint origin in the hip frame [m]
CALF_OFFSET = np.array([0.0, 0.0, -0.213])  # calf joint origin in the thigh frame [m]
FOOT_OFFSET = np.array([-0.002, 0.0, -0.213])  # foot sphere centre in the calf frame [m]
FOOT_RADIUS = 0.022  # foot sphere radius [m]


def _as_legs(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    if q.shape != (3 * NUM_LEGS,):
        raise ValueError(f"expected {3 * NUM_LEGS} joint values, got shape {q.shape}")
    return q.reshape(NUM_LEGS, 3)


def _chain(q: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-leg intermediate vectors shared by FK and the Jacobian (all (4, 3), base frame unless noted)."""
    ql = _as_legs(q)
    c0, s0 = np.cos(ql[:, 0]), np.sin(ql[:, 0])
    c1, s1 = np.cos(ql[:, 1]), np.sin(ql[:, 1])
    c12, s12 = np.cos(ql[:, 1] + ql[:, 2]), np.sin(ql[:, 1] + ql[:, 2])
    zeros = np.zeros(NUM_LEGS)
    # Calf→foot and thigh→calf vectors in the hip frame (rotations about y compose by adding angles):
    # Ry(θ)·(x, 0, z) = (x cosθ + z sinθ, 0, -x sinθ + z cosθ).
    fx, fz = FOOT_OFFSET[0], FOOT_OFFSET[2]
    cz = CALF_OFFSET[2]
    foot_in_calf_h = np.stack([fx * c12 + fz * s12, zeros, -fx * s12 + fz * c12], axis=-1)
    calf_in_thigh_h = np.stack([cz * s1, zeros, cz * c1], axis=-1)
    # Everything below the hip joint, in the hip frame, before the abduction rotation Rx(q0).
    below_hip = THIGH_OFFSETS + calf_in_thigh_h + foot_in_calf_h
    return c0, s0, below_hip, calf_in_thigh_h, foot_in_calf_h


def _rot_x(c0: np.ndarray, s0: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rx(q0)·v per leg."""
    return np.stack([v[:, 0], c0 * v[:, 1] - s0 * v[:, 2], s0 * v[:, 1] + c0 * v[:, 2]], axis=-1)


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a × b over the last axis, broadcasting; np.cross is ~10× slower on these small arrays (500 Hz budget)."""
    a, b = np.asarray(a), np.asarray(b)
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                     a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def foot_positions(q: np.ndarray) -> np.ndarray:
    """Foot sphere centres in the base frame, (4, 3), from the 12 joint angles."""
    c0, s0, below_hip, _, _ = _chain(q)
    return HIP_OFFSETS + _rot_x(c0, s0, below_hip)


def foot_positions_and_jacobians(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`foot_positions` and `foot_jacobians` from one pass over the chain (what the estimator needs per step)."""
    c0, s0, below_hip, calf_h, foot_h = _chain(q)
    hip_to_foot = _rot_x(c0, s0, below_hip)
    # Revolute joint i moves the foot by axis_i × (foot − joint_i), all expressed in the base frame.
    zeros = np.zeros(NUM_LEGS)
    d0 = np.stack([zeros, -hip_to_foot[:, 2], hip_to_foot[:, 1]], axis=-1)  # ex × v
    axis_y = np.stack([zeros, c0, s0], axis=-1)  # Rx(q0)·ey
    d1 = cross(axis_y, _rot_x(c0, s0, calf_h + foot_h))
    d2 = cross(axis_y, _rot_x(c0, s0, foot_h))
    return HIP_OFFSETS + hip_to_foot, np.stack([d0, d1, d2], axis=-1)


def foot_jacobians(q: np.ndarray) -> np.ndarray:
    """d(foot position in base frame)/d(leg joint angles), (4, 3, 3): J[leg] columns = hip, thigh, calf."""
    return foot_positions_and_jacobians(q)[1]


def foot_velocities(q: np.ndarray, qd: np.ndarray) -> np.ndarray:
    """Foot velocities relative to the base, in the base frame, (4, 3): J(q)·qd per leg."""
    J = foot_jacobians(q)
    return np.einsum("lij,lj->li", J, _as_legs(qd))


def calf_angular_velocities(q: np.ndarray, qd: np.ndarray) -> np.ndarray:
    """Angular velocity of each calf (the foot sphere) relative to the base, in the base frame, (4, 3).

    The estimator needs it because a stance foot rolls: the contact point is still, the sphere centre moves.
    """
    ql, qdl = _as_legs(q), _as_legs(qd)
    axis_y = np.stack([np.zeros(NUM_LEGS), np.cos(ql[:, 0]), np.sin(ql[:, 0])], axis=-1)  # Rx(q0)·ey
    return np.outer(qdl[:, 0], [1.0, 0.0, 0.0]) + axis_y * (qdl[:, 1] + qdl[:, 2])[:, None]
