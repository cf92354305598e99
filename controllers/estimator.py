"""Base position/velocity estimator: a linear Kalman filter fusing the IMU with leg kinematics.

Modelled on Cheetah-Software's `LinearKFPositionVelocityEstimator` (MIT Biomimetics). Orientation is
not estimated: it is taken from the IMU quaternion, which makes the remaining problem linear.

State x (18) = [p (3), v (3), p_foot_FL, p_foot_FR, p_foot_RL, p_foot_RR (4 × 3)], all in the world
frame; p is the base-body origin and p_foot the foot-sphere centre.

Process (per step dt, driven by the world acceleration a = R·accel_body + g):
    p ← p + v dt + ½ a dt²,   v ← v + a dt,   p_foot ← p_foot (feet are assumed not to move).
Measurements (28):
    p − p_foot_i = −R·fk_i(q)                          (12, kinematics; valid in stance and swing)
    v = −R·(ω × fk_i(q) + J_i(q) q̇) + ω_calf,i × r ẑ      (12, a stance foot rolls without sliding:
                                                          its contact point, r below the centre, is still)
    p_foot_i,z = FOOT_RADIUS                            (4, flat ground at z = 0: a stance foot's
                                                          sphere centre is one radius above it)
Swing feet get their process noise and all three measurement noises multiplied by
(1 + (1 − trust)·high_suspect_number), as in Cheetah, and their velocity / height "measurements"
blend towards the current prediction; trust ramps from 0 to 1 over `trust_ramp_s` after touchdown
(Cheetah ramps on the scheduled gait phase, which a learned policy does not have).

Stance is detected with hysteresis on the foot normal force: measured (foot contact sensors) when
given, else estimated from the joint torques via the Jacobian transpose (see `foot_forces_from_torque`).

The flat-ground assumption only affects z: on stairs or slopes the height drifts towards "feet at
z = 0", which a velocity-tracking policy does not observe. The IMU lever arm (the IMU is not at the
base origin) is not compensated; the kinematic velocity measurements absorb the small ω×(ω×r) term.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from controllers import kinematics as K
from som_robot.config import check, from_dict

__all__ = [
    "EstimatorConfig",
    "Estimate",
    "EstimatorInputError",
    "KalmanEstimator",
    "quat_to_rotmat",
    "foot_forces_from_torque",
    "load_estimator_config",
    "STATE_DIM",
    "NUM_FEET",
    "NUM_JOINTS",
]

STATE_DIM = 18
NUM_FEET = K.NUM_LEGS
NUM_JOINTS = 3 * NUM_FEET
_MEAS_DIM = 3 * NUM_FEET * 2 + NUM_FEET  # 28


class EstimatorInputError(ValueError):
    """An input to `KalmanEstimator.update` is malformed (wrong shape, non-finite, time not increasing).

    The filter state is left untouched, so the caller can keep its last good estimate.
    """


@dataclass(frozen=True)
class EstimatorConfig:
    """Noise parameters (Cheetah-Software names and default values) and contact detection settings.

    The Cheetah noise values are variance scales: Q_p = process_noise_pimu · dt/20, Q_v =
    process_noise_vimu · dt·9.8/20, Q_foot = process_noise_pfoot · dt; R is the sensor_noise value.
    """

    process_noise_pimu: float = 0.02
    process_noise_vimu: float = 0.02
    process_noise_pfoot: float = 0.002
    sensor_noise_pimu_rel_foot: float = 0.001
    sensor_noise_vimu_rel_foot: float = 0.1
    sensor_noise_zfoot: float = 0.001
    high_suspect_number: float = 100.0  # noise multiplier for a foot not trusted to be in stance
    trust_ramp_s: float = 0.02  # after touchdown, trust rises linearly from 0 to 1 over this time [s]
    contact_on_n: float = 20.0  # normal force above which a swing foot enters stance [N]
    contact_off_n: float = 8.0  # normal force below which a stance foot leaves stance [N]
    gravity: float = 9.81  # [m/s^2]
    # [m] stance foot-centre height on flat ground. go2.xml's soft contact lets the feet sink ~1.3 cm, so
    # in MuJoCo the height reads ~1.3 cm high with the geometric radius (0.009 removes that bias).
    foot_radius: float = K.FOOT_RADIUS
    max_dt: float = 0.02  # larger steps (dropped messages) are clamped to this in the prediction [s]
    initial_pos_var: float = 1e-4  # [m^2] (position is initialised from the kinematics)
    initial_vel_var: float = 0.1  # [(m/s)^2] (velocity is initialised at zero)
    torque_jacobian_damping: float = 1e-3  # λ in F = J (JᵀJ + λ²I)⁻¹ τ, keeps a stretched leg finite
    # Viscous joint friction not seen by the motor torque: τ_leg = τ − joint_damping·q̇ before the force
    # estimate. 2.0 N·m·s/rad is go2.xml's joint damping; without it a swinging leg reads as stance.
    joint_damping: float = 2.0

    def __post_init__(self) -> None:
        for name in ("process_noise_pimu", "process_noise_vimu", "process_noise_pfoot",
                     "sensor_noise_pimu_rel_foot", "sensor_noise_vimu_rel_foot", "sensor_noise_zfoot",
                     "trust_ramp_s", "gravity", "max_dt", "initial_pos_var", "initial_vel_var"):
            check(getattr(self, name) > 0, name, "must be > 0")
        check(self.high_suspect_number >= 0, "high_suspect_number", "must be >= 0")
        check(self.foot_radius >= 0, "foot_radius", "must be >= 0")
        check(self.torque_jacobian_damping >= 0, "torque_jacobian_damping", "must be >= 0")
        check(self.joint_damping >= 0, "joint_damping", "must be >= 0")
        check(0 <= self.contact_off_n < self.contact_on_n, "contact_off_n",
              "must be >= 0 and below contact_on_n (hysteresis)")


def load_estimator_config(data: Mapping[str, Any] | None) -> EstimatorConfig:
    """Config from a plain mapping (e.g. a YAML file); an `estimator:` section is used if present."""
    data = dict(data or {})
    if isinstance(data.get("estimator"), Mapping):
        data = dict(data["estimator"])
    return from_dict(EstimatorConfig, data)


@dataclass(frozen=True)
class Estimate:
    """One filter output; arrays are float64 copies (safe to keep)."""

    t: float  # input time [s]
    quat: np.ndarray  # (4,) wxyz body→world, the normalised IMU quaternion
    gravity_body: np.ndarray  # (3,) unit gravity direction in the base frame
    position: np.ndarray  # (3,) base origin, world [m]
    lin_vel_world: np.ndarray  # (3,) [m/s]
    lin_vel_body: np.ndarray  # (3,) [m/s]
    ang_vel_body: np.ndarray  # (3,) the gyro [rad/s]
    cov_diag: np.ndarray  # (18,) state covariance diagonal
    contact: np.ndarray  # (4,) bool stance flags used
    foot_force: np.ndarray  # (4,) normal force used for stance detection [N]


def quat_to_rotmat(quat: np.ndarray) -> np.ndarray:
    """wxyz unit quaternion → 3×3 body-to-world rotation."""
    w, x, y, z = quat
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def foot_forces_from_torque(q: np.ndarray, tau: np.ndarray, R: np.ndarray, damping: float = 1e-3,
                            J: np.ndarray | None = None) -> np.ndarray:
    """Ground normal force per foot [N] (4,) estimated from the joint torques.

    Quasi-static leg: τ = Jᵀ F with F the force the foot pushes on the ground (base frame), so
    F = J⁻ᵀ τ (damped: J (JᵀJ + λ²I)⁻¹ τ). The normal force is the world-z component of the ground
    reaction −F. Neglected: leg inertia and gravity, rotor inertia and any joint friction the caller did
    not subtract from τ, so a fast-swinging leg reads a few N to a few tens of N; the contact hysteresis
    thresholds absorb most of that.
    """
    J = K.foot_jacobians(q) if J is None else J
    tau_l = np.asarray(tau, dtype=float).reshape(NUM_FEET, 3)
    JtJ = np.einsum("lji,ljk->lik", J, J) + damping**2 * np.eye(3)
    F_body = np.einsum("lij,lj->li", J, np.linalg.solve(JtJ, tau_l[..., None])[..., 0])
    return -(F_body @ R.T)[:, 2]


def _vec(name: str, x: Any, n: int) -> np.ndarray:
    a = np.asarray(x, dtype=float).reshape(-1) if x is not None else None
    if a is None or a.shape != (n,):
        raise EstimatorInputError(f"{name}: expected {n} values, got {None if a is None else a.shape}")
    if not np.all(np.isfinite(a)):
        raise EstimatorInputError(f"{name}: non-finite value {a.tolist()}")
    return a


class KalmanEstimator:
    """The filter; call `update` once per joint-state sample (500 Hz on the Go2)."""

    def __init__(self, cfg: EstimatorConfig | None = None) -> None:
        self.cfg = cfg or EstimatorConfig()
        I3 = np.eye(3)
        self._diag18, self._diag28 = np.diag_indices(STATE_DIM), np.diag_indices(_MEAS_DIM)
        self._C = np.zeros((_MEAS_DIM, STATE_DIM))
        for i in range(NUM_FEET):
            self._C[3 * i:3 * i + 3, 0:3] = I3  # p − p_foot_i
            self._C[3 * i:3 * i + 3, 6 + 3 * i:9 + 3 * i] = -I3
            self._C[12 + 3 * i:15 + 3 * i, 3:6] = I3  # v
            self._C[24 + i, 8 + 3 * i] = 1.0  # p_foot_i,z
        self.reset()

    # --- state ----------------------------------------------------------------------------------
    def reset(self, position_xy: tuple[float, float] = (0.0, 0.0)) -> None:
        """Forget everything; the next `update` re-initialises from the kinematics at `position_xy`."""
        self._x = np.zeros(STATE_DIM)
        self._P = np.eye(STATE_DIM)
        self._t: float | None = None
        self._xy0 = np.asarray(position_xy, dtype=float)
        self._contact = np.zeros(NUM_FEET, dtype=bool)
        self._touchdown_t = np.full(NUM_FEET, -np.inf)
        self._last: Estimate | None = None

    @property
    def initialized(self) -> bool:
        return self._t is not None

    @property
    def last(self) -> Estimate | None:
        """The last good estimate (None before the first update)."""
        return self._last

    def _initialize(self, t: float, R: np.ndarray, feet_b: np.ndarray) -> None:
        """Base above the lowest feet (assumed standing on z = 0), at rest, feet where the kinematics put them."""
        feet_w = feet_b @ R.T
        lowest = np.sort(feet_w[:, 2])[:2].mean()
        p = np.array([self._xy0[0], self._xy0[1], self.cfg.foot_radius - lowest])
        self._x[:] = 0.0
        self._x[0:3] = p
        self._x[6:] = (p + feet_w).reshape(-1)
        c = self.cfg
        self._P = np.diag(np.concatenate([np.full(3, c.initial_pos_var), np.full(3, c.initial_vel_var),
                                          np.full(12, c.initial_pos_var)]))
        self._t = t

    # --- contact --------------------------------------------------------------------------------
    def _detect_contact(self, t: float, force: np.ndarray) -> None:
        on = force > self.cfg.contact_on_n
        off = force < self.cfg.contact_off_n
        new = np.where(self._contact, ~off, on)
        self._touchdown_t[new & ~self._contact] = t
        self._contact = new

    def _trust(self, t: float) -> np.ndarray:
        ramp = np.clip((t - self._touchdown_t) / self.cfg.trust_ramp_s, 0.0, 1.0)
        return np.where(self._contact, ramp, 0.0)

    # --- the filter -----------------------------------------------------------------------------
    def update(self, t: float, q: Any, qd: Any, quat: Any, gyro: Any, accel: Any,
               foot_force: Any | None = None, tau: Any | None = None) -> Estimate:
        """Advance to time `t` [s] and fuse one sample.

        q, qd: (12,) joint angles/velocities in policy order; quat: (4,) wxyz body→world; gyro: (3,)
        body angular velocity; accel: (3,) body specific force (+g on z at rest). Stance comes from
        `foot_force` (4,) normal forces [N] if given, else from `tau` (12,) joint torques; one of the two
        is required. Raises `EstimatorInputError` (state untouched) on malformed input.
        """
        try:
            t = float(t)
        except (TypeError, ValueError) as e:
            raise EstimatorInputError(f"t: not a number {t!r}") from e
        if not np.isfinite(t):
            raise EstimatorInputError(f"t: non-finite time {t!r}")
        q = _vec("q", q, NUM_JOINTS)
        qd = _vec("qd", qd, NUM_JOINTS)
        quat = _vec("quat", quat, 4)
        gyro = _vec("gyro", gyro, 3)
        accel = _vec("accel", accel, 3)
        norm = float(np.linalg.norm(quat))
        if not 0.5 < norm < 1.5:
            raise EstimatorInputError(f"quat: norm {norm:.3g} is not close to 1")
        if foot_force is not None:
            force = _vec("foot_force", foot_force, NUM_FEET)
        elif tau is not None:
            tau = _vec("tau", tau, NUM_JOINTS)
            force = None
        else:
            raise EstimatorInputError("need foot_force or tau for stance detection")
        if self._t is not None and t <= self._t:
            raise EstimatorInputError(f"t: time not increasing ({t!r} after {self._t!r})")

        quat = quat / norm
        R = quat_to_rotmat(quat)
        feet_b, J = K.foot_positions_and_jacobians(q)
        if force is None:
            tau_leg = tau - self.cfg.joint_damping * qd
            force = foot_forces_from_torque(q, tau_leg, R, self.cfg.torque_jacobian_damping, J)
        feet_vel_b = K.cross(gyro, feet_b) + np.einsum("lij,lj->li", J, qd.reshape(NUM_FEET, 3))
        calf_omega_b = gyro + K.calf_angular_velocities(q, qd)
        self._detect_contact(t, force)

        if self._t is None:
            self._initialize(t, R, feet_b)
        else:
            self._step(min(t - self._t, self.cfg.max_dt), R, accel, feet_b, feet_vel_b, calf_omega_b, t)
            self._t = t

        v = self._x[3:6].copy()
        self._last = Estimate(
            t=float(t), quat=quat, gravity_body=R.T @ np.array([0.0, 0.0, -1.0]), position=self._x[0:3].copy(),
            lin_vel_world=v, lin_vel_body=R.T @ v, ang_vel_body=gyro.copy(), cov_diag=np.diag(self._P).copy(),
            contact=self._contact.copy(), foot_force=force.copy(),
        )
        return self._last

    def _step(self, dt: float, R: np.ndarray, accel: np.ndarray, feet_b: np.ndarray, feet_vel_b: np.ndarray,
              calf_omega_b: np.ndarray, t: float) -> None:
        c = self.cfg
        x, P = self._x, self._P
        a = R @ accel
        a[2] -= c.gravity

        # Predict (A = [[I, dt I], [0, I]] on p, v; identity on the feet), applied in place: A P Aᵀ.
        x = x.copy()
        x[0:3] += dt * x[3:6] + 0.5 * dt * dt * a
        x[3:6] += dt * a
        trust = self._trust(t)
        suspect = 1.0 + (1.0 - trust) * c.high_suspect_number  # (4,)
        q_diag = np.concatenate([
            np.full(3, c.process_noise_pimu * dt / 20.0),
            np.full(3, c.process_noise_vimu * dt * 9.8 / 20.0),
            np.repeat(c.process_noise_pfoot * dt * suspect, 3),
        ])
        P = P.copy()
        P[0:3, :] += dt * P[3:6, :]
        P[:, 0:3] += dt * P[:, 3:6]
        P[self._diag18] += q_diag

        # Measurements; untrusted feet measure (mostly) the prediction, with inflated noise.
        feet_w = feet_b @ R.T
        y = np.empty(_MEAS_DIM)
        y[0:12] = -feet_w.reshape(-1)
        # Base velocity that keeps each foot's contact point still: centre velocity = ω_calf × (r ẑ).
        v_stance = -(feet_vel_b @ R.T) + K.cross(calf_omega_b @ R.T, np.array([0.0, 0.0, c.foot_radius]))
        y[12:24] = ((1.0 - trust)[:, None] * x[3:6] + trust[:, None] * v_stance).reshape(-1)
        pred_foot_z = x[0:3][2] + feet_w[:, 2]
        y[24:28] = (1.0 - trust) * pred_foot_z + trust * c.foot_radius
        r_diag = np.concatenate([
            np.repeat(c.sensor_noise_pimu_rel_foot * suspect, 3),
            np.repeat(c.sensor_noise_vimu_rel_foot * suspect, 3),
            c.sensor_noise_zfoot * suspect,
        ])

        # Update.
        C = self._C
        PCt = P @ C.T
        S = C @ PCt
        S[self._diag28] += r_diag
        K_gain = np.linalg.solve(S, PCt.T).T  # S is symmetric
        x = x + K_gain @ (y - C @ x)
        P = P - K_gain @ PCt.T
        self._x = x
        self._P = 0.5 * (P + P.T)
