"""Go2 training constants shared by the simulator, the exporter and the onboard controller.

The robot's own facts (joint order, default pose, gains, limits) come from `robots.go2`; this module
adds the training-side ones (action scale, trot clock, rates, MJCF names). Free of MuJoCo imports
except in the sensor helpers, so the real-robot daemon applies exactly what the policy was trained with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robots.go2 import ACTUATOR_NAMES, DEFAULT_JOINT_POS, JOINT_NAMES, KD, KP, LEGS, NUM_JOINTS

__all__ = [
    "XML_PATH",
    "LEGS",
    "JOINT_NAMES",
    "ACTUATOR_NAMES",
    "NUM_JOINTS",
    "DEFAULT_JOINT_POS",
    "KP",
    "KD",
    "ACTION_SCALE",
    "GAIT_FREQ",
    "GAIT_OFFSETS",
    "GAIT_DUTY",
    "gait_phase",
    "SIM_DT",
    "DECIMATION",
    "CTRL_DT",
    "NOMINAL_BASE_HEIGHT",
    "INIT_BASE_HEIGHT",
    "BASE_BODY",
    "FLOOR_BODY",
    "FOOT_GEOMS",
    "FOOT_SITES",
    "FOOT_CONTACT_SENSORS",
    "FOOT_POS_SENSORS",
    "BASE_CONTACT_SENSOR",
    "LEG_COLLISION_SENSORS",
    "sensor_slice",
    "sensor_columns",
]

XML_PATH = Path(__file__).resolve().parent / "xmls" / "go2.xml"

# Robot facts (joint order, default pose, gains) live in the bottom layer `robots.go2`; re-exported here.
# rad per unit action (actions are in [-1, 1]). 0.25 (legged_gym's scale, but there actions are unbounded)
# gives a box too small to step at 1 m/s; Walk in the Park / Gait in Eight use 0.2-0.4 rad boxes at similar gains.
ACTION_SCALE = 0.35

# Trot clock: the policy sees (cos, sin) of one phase that advances GAIT_FREQ cycles per second from 0 at
# the episode's (or POLICY mode's) first step; diagonal legs share a phase. A leg is in stance while its
# phase is below GAIT_DUTY. The onboard daemon advances the same clock once per policy step.
GAIT_FREQ = 2.0  # Hz
GAIT_OFFSETS = np.array([0.0, 0.5, 0.5, 0.0])  # FL, FR, RL, RR
GAIT_DUTY = 0.5

SIM_DT = 0.002  # MJCF timestep; the PD law runs every physics step (500 Hz)
DECIMATION = 10  # physics steps per policy step
CTRL_DT = SIM_DT * DECIMATION  # 50 Hz policy

NOMINAL_BASE_HEIGHT = 0.27  # 'home' keyframe base height (m)
INIT_BASE_HEIGHT = 0.30  # spawn a little above so the feet start out of penetration

BASE_BODY = "base"
FLOOR_BODY = "world"  # floor plane and heightfield are world geoms
FOOT_GEOMS: tuple[str, ...] = LEGS  # the MJCF names the foot spheres FL, FR, RL, RR
FOOT_SITES: tuple[str, ...] = tuple(f"{leg}_foot" for leg in LEGS)  # added by model.build_spec
FOOT_CONTACT_SENSORS: tuple[str, ...] = tuple(f"{leg}_foot_contact" for leg in LEGS)
FOOT_POS_SENSORS: tuple[str, ...] = tuple(f"{leg}_foot_pos" for leg in LEGS)  # world framepos of the foot sites
BASE_CONTACT_SENSOR = "base_contact"
# Thigh body and the calf's shank geoms (not the foot) touching the floor: the 'collision' penalty.
LEG_COLLISION_SENSORS: tuple[str, ...] = tuple(
    f"{leg}_{part}_contact" for leg in LEGS for part in ("thigh", "calf0", "calf1")
)


def gait_phase(policy_steps: np.ndarray | int, freq: float = GAIT_FREQ) -> np.ndarray:
    """Clock phase in [0, 1) after `policy_steps` policy steps of a `freq` Hz clock (numpy; the envs use the
    same formula with their config's `gait_freq`)."""
    return np.mod(np.asarray(policy_steps, dtype=np.float64) * (CTRL_DT * freq), 1.0)


def sensor_slice(model: object, name: str) -> slice:
    """Columns of `sensordata` that sensor `name` fills (works for MjModel)."""
    s = model.sensor(name)  # type: ignore[attr-defined]
    adr = int(s.adr[0] if np.ndim(s.adr) else s.adr)
    dim = int(s.dim[0] if np.ndim(s.dim) else s.dim)
    return slice(adr, adr + dim)


def sensor_columns(model: object, names: tuple[str, ...]) -> np.ndarray:
    """First `sensordata` column of each named sensor, for one fancy-indexed read of a group."""
    return np.array([sensor_slice(model, n).start for n in names], dtype=np.int64)
