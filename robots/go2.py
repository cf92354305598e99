"""Unitree Go2 facts, in policy order (per leg FL, FR, RL, RR: hip / abduction, thigh, calf).

The MJCF (sim/go2/xmls/go2.xml) and configs/robots/go2.yaml carry the same joint ranges; tests check
every copy against this one. The Unitree SDK's motor order (FR, FL, RR, RL) is mapped in the bridge.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LEGS", "JOINT_NAMES", "ACTUATOR_NAMES", "NUM_JOINTS", "DEFAULT_JOINT_POS", "KP", "KD",
           "JOINT_LOWER", "JOINT_UPPER", "TORQUE_LIMITS"]

LEGS: tuple[str, ...] = ("FL", "FR", "RL", "RR")
JOINT_NAMES: tuple[str, ...] = tuple(f"{leg}_{part}_joint" for leg in LEGS for part in ("hip", "thigh", "calf"))
ACTUATOR_NAMES: tuple[str, ...] = tuple(n.removesuffix("_joint") for n in JOINT_NAMES)
NUM_JOINTS = 12

# The MJCF 'home' keyframe's legs; policy actions are offsets from this pose.
DEFAULT_JOINT_POS = np.tile(np.array([0.0, 0.9, -1.8]), 4)

# Joint PD gains (N·m/rad, N·m·s/rad). Kp 20 (legged_gym's Go2 value) lets the default pose sag
# from 0.27 m to ~0.20 m with zero action; 40 holds ~0.24 m while staying compliant.
KP = 40.0
KD = 1.0

# Joint ranges [rad] and motor torque limits [N m].
JOINT_LOWER: tuple[float, ...] = (-1.0472, -1.5708, -2.7227, -1.0472, -1.5708, -2.7227, -1.0472, -0.5236, -2.7227,
                                  -1.0472, -0.5236, -2.7227)
JOINT_UPPER: tuple[float, ...] = (1.0472, 3.4907, -0.83776, 1.0472, 3.4907, -0.83776, 1.0472, 4.5379, -0.83776,
                                  1.0472, 4.5379, -0.83776)
TORQUE_LIMITS: tuple[float, ...] = (23.7, 23.7, 45.43) * 4
