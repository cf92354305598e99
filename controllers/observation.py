"""Build the policy observation on the robot, term by term in the contract's order and scales.

Generic over `PolicyContract.obs_terms`: each term name maps to one robot-side source. A contract with a
term this module does not know, or with a width that does not match its source, is rejected when the
builder is created (daemon start-up), never in the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from som_robot.contract import PolicyContract

__all__ = ["ObservationError", "ObsInputs", "ObservationBuilder", "KNOWN_TERMS", "clock_phase"]


class ObservationError(ValueError):
    """The contract asks for a term the robot cannot provide (unknown name or wrong width)."""


@dataclass
class ObsInputs:
    """The latest validated robot signals (physical units) an observation is built from."""

    gravity_body: np.ndarray  # (3,) unit gravity direction, base frame (state estimate)
    ang_vel_body: np.ndarray  # (3,) [rad/s] (state estimate)
    lin_vel_body: np.ndarray  # (3,) [m/s] (state estimate)
    command: np.ndarray  # (3,) vx, vy, yaw rate (joystick or --cmd)
    q: np.ndarray  # (n,) [rad] joint state, policy order
    qd: np.ndarray  # (n,) [rad/s]
    last_action: np.ndarray  # (n,) the policy's previous output
    gait_phase: float = 0.0  # clock phase in [0, 1): `clock_phase(policy steps since POLICY entry, contract)`


def clock_phase(policy_steps: int, contract: PolicyContract) -> float:
    """The trot clock the policy was trained with: frac(k · control_dt · gait_freq), k = policy steps so far."""
    return float((policy_steps * contract.control_dt * contract.gait_freq) % 1.0)


def _phase_features(phase: float) -> np.ndarray:
    ang = 2.0 * np.pi * phase
    return np.array([np.cos(ang), np.sin(ang)])


# name → (width given the joint count, raw value from the inputs and the default pose)
_Source = Callable[[ObsInputs, np.ndarray], np.ndarray]
KNOWN_TERMS: dict[str, tuple[Callable[[int], int], _Source]] = {
    "gravity": (lambda n: 3, lambda x, d: x.gravity_body),
    "projected_gravity": (lambda n: 3, lambda x, d: x.gravity_body),
    "gyro": (lambda n: 3, lambda x, d: x.ang_vel_body),
    "ang_vel": (lambda n: 3, lambda x, d: x.ang_vel_body),
    "lin_vel": (lambda n: 3, lambda x, d: x.lin_vel_body),
    "command": (lambda n: 3, lambda x, d: x.command),
    "joint_pos": (lambda n: n, lambda x, d: x.q - d),
    "joint_vel": (lambda n: n, lambda x, d: x.qd),
    "last_action": (lambda n: n, lambda x, d: x.last_action),
    "gait_phase": (lambda n: 2, lambda x, d: _phase_features(x.gait_phase)),
}


class ObservationBuilder:
    """obs = concat(scale_i · source_i) over the contract's terms; checked once, then allocation-light."""

    def __init__(self, contract: PolicyContract) -> None:
        n = contract.act_dim
        self._default = np.asarray(contract.default_pose, np.float64)
        self._plan: list[tuple[slice, _Source, float, str]] = []
        i = 0
        for t in contract.obs_terms:
            if t.name not in KNOWN_TERMS:
                raise ObservationError(f"policy observation term '{t.name}' is unknown to the robot; known terms: "
                                       f"{sorted(KNOWN_TERMS)}")
            width, source = KNOWN_TERMS[t.name]
            if t.dim != width(n):
                raise ObservationError(f"policy observation term '{t.name}' has dim {t.dim}, the robot provides "
                                       f"{width(n)}")
            self._plan.append((slice(i, i + t.dim), source, float(t.scale), t.name))
            i += t.dim
        self.obs_dim = i
        self._buf = np.zeros(i, np.float32)

    def build(self, inputs: ObsInputs) -> np.ndarray:
        """A fresh float32 observation vector; raises ObservationError naming a term with the wrong shape."""
        for sl, source, scale, name in self._plan:
            v = np.asarray(source(inputs, self._default), np.float64)
            if v.shape != (sl.stop - sl.start,):
                raise ObservationError(f"observation term '{name}' got shape {v.shape}, expected "
                                       f"({sl.stop - sl.start},)")
            self._buf[sl] = v * scale
        return self._buf.copy()
