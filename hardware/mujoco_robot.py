"""The MuJoCo Go2 as a hardware backend: a 1 kHz motor-driver PD loop and noisy onboard sensors.

It sits beside the Go2 bridge (`hardware.go2_bridge`) behind the same `RobotInterface`, as ros2_control
treats a simulator as one more hardware interface: `hardware.server --robot sim` runs it, so the
estimator and the controller daemon see the messages (joint state, IMU, foot forces) they would see on
hardware, plus ground truth. It reads the scene from `sim.go2.model` and the robot facts from `robots.go2`.

The motor drivers' PD law τ = clip(kp(q* − q) + kd(qd* − qd) + τ_ff, ±τ_max) is MuJoCo's own actuator
model: each actuator is an affine one (force = ctrl − kp·q − kd·qd, with ctrl = kp·q* + kd·qd* + τ_ff and
the motor limit as its force range), written once per command. So `step(n)` runs n physics steps in C
(`mj_step(nstep=n)`) without a Python iteration per millisecond, and computes exactly the torque the
explicit per-step PD would (Euler integration: actuator forces are not made implicit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import mujoco
import numpy as np

from hardware.channels import SIM_HZ
from hardware.interface import DAMPING_KD, MotorCommand, RobotInterface, RobotState
from robots.go2 import TORQUE_LIMITS
from sim.go2 import constants as C
from sim.go2.config import Go2EnvConfig
from sim.go2.model import build_spec, make_pd_actuators

__all__ = ["ImuNoise", "MujocoGo2", "LYING_JOINT_POS"]

# Folded legs with the belly on the floor: the pose a powered-off Go2 lies in.
LYING_JOINT_POS = np.tile(np.array([0.0, 1.25, -2.70]), 4)
_GRAVITY = 9.81


@dataclass(frozen=True)
class ImuNoise:
    """Gaussian IMU noise standard deviations (per axis, per sample); bias is drawn once per reset."""

    gyro: float = 0.01  # rad/s
    accel: float = 0.05  # m/s²
    orientation: float = 0.002  # rad, rotation-vector noise on the reported quaternion
    gyro_bias: float = 0.0  # rad/s

    @classmethod
    def none(cls) -> ImuNoise:
        return cls(0.0, 0.0, 0.0, 0.0)


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def _rotvec_quat(v: np.ndarray) -> np.ndarray:
    ang = float(np.linalg.norm(v))
    if ang < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return np.concatenate([[np.cos(ang / 2)], np.sin(ang / 2) * v / ang])


class MujocoGo2(RobotInterface):
    """MuJoCo Go2 at `SIM_HZ`; every physics step applies the held PD command like the Go2's motor drivers.

    Sensors are read from the current state rows (qpos/qvel), except the accelerometer and foot forces,
    which MuJoCo computes at the start of a step and so lag the state by one physics step (1 ms).
    """

    def __init__(self, terrain: Literal["flat", "rough"] = "flat", seed: int = 0, imu_noise: ImuNoise | None = None,
                 init: Literal["home", "lying"] = "home", contact_threshold: float = 5.0,
                 damping_kd: float = DAMPING_KD) -> None:
        self._terrain = terrain
        self._seed = seed
        self.imu_noise = imu_noise if imu_noise is not None else ImuNoise()
        self._init = init
        self.contact_threshold = contact_threshold  # N of normal force that counts as stance
        self._damping_kd = damping_kd
        self.tau_limit = np.asarray(TORQUE_LIMITS, dtype=float)
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self._cmd = MotorCommand.damping(C.NUM_JOINTS, damping_kd)
        self._tau = np.zeros(C.NUM_JOINTS)
        self._rng = np.random.default_rng(seed)
        self._gyro_bias = np.zeros(3)

    # --- RobotInterface ---------------------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        return C.NUM_JOINTS

    @property
    def dt(self) -> float:
        return 1.0 / SIM_HZ

    def start(self) -> None:
        if self.model is None:
            self._build()
        self.reset()

    def read(self) -> RobotState:
        m, d = self._md()
        quat = d.qpos[3:7].copy()
        R = np.empty(9)
        mujoco.mju_quat2Mat(R, quat)
        R = R.reshape(3, 3)
        ang_vel_body = d.qvel[3:6].copy()  # free-joint angular velocity is in the body frame
        force = self._foot_forces()
        n = self.imu_noise
        rng = self._rng
        noisy_quat = _quat_mul(quat, _rotvec_quat(rng.normal(0.0, n.orientation, 3))) if n.orientation else quat
        return RobotState(
            t=float(d.time), q=d.qpos[7:].copy(), qd=d.qvel[6:].copy(), tau_est=self._tau.copy(),
            quat=noisy_quat / np.linalg.norm(noisy_quat),
            gyro=ang_vel_body + self._gyro_bias + (rng.normal(0.0, n.gyro, 3) if n.gyro else 0.0),
            accel=d.sensordata[self._acc].copy() + (rng.normal(0.0, n.accel, 3) if n.accel else 0.0),
            foot_force=force, foot_contact=force > self.contact_threshold,
            base_quat=quat, base_pos=d.qpos[0:3].copy(), base_lin_vel_world=d.qvel[0:3].copy(),
            base_ang_vel_body=ang_vel_body)

    def write(self, cmd: MotorCommand) -> None:
        self._cmd = MotorCommand(*(np.asarray(a, dtype=float).copy() for a in
                                   (cmd.q_des, cmd.qd_des, cmd.kp, cmd.kd, cmd.tau_ff)))

    def step(self, nstep: int = 1) -> None:
        """`nstep` physics steps with the held PD command, in C."""
        m, d = self._md()
        c = self._cmd
        m.actuator_biasprm[:, 1] = -c.kp
        m.actuator_biasprm[:, 2] = -c.kd
        d.ctrl[:] = c.kp * c.q_des + c.kd * c.qd_des + c.tau_ff
        mujoco.mj_step(m, d, nstep=nstep)
        self._tau = d.actuator_force.copy()  # the (clipped) torque of the last physics step

    def damp(self, kd: float | None = None) -> None:
        super().damp(self._damping_kd if kd is None else kd)

    def stop(self) -> None:
        if self.data is not None:
            self.damp()

    # --- sim extras -------------------------------------------------------------------------------
    @property
    def command(self) -> MotorCommand:
        """The held command (what the next `step()` applies)."""
        return self._cmd

    def reset(self, seed: int | None = None) -> None:
        """Back to the initial pose (home keyframe or lying), at rest, damped; reseeds the sensor noise."""
        m, d = self._md()
        self._rng = np.random.default_rng(self._seed if seed is None else seed)
        bias = self.imu_noise.gyro_bias
        self._gyro_bias = self._rng.normal(0.0, bias, 3) if bias else np.zeros(3)
        mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
        if self._terrain == "rough":
            d.qpos[2] += Go2EnvConfig().rough.max_height
        self._cmd = MotorCommand.damping(C.NUM_JOINTS, self._damping_kd)
        self._tau = np.zeros(C.NUM_JOINTS)
        if self._init == "lying":
            d.qpos[2] = 0.16 + (Go2EnvConfig().rough.max_height if self._terrain == "rough" else 0.0)
            d.qpos[7:] = LYING_JOINT_POS
            self.step(int(1.0 * SIM_HZ))  # settle onto the belly, then restart the clock
            d.time = 0.0
            d.qvel[:] = 0.0
        mujoco.mj_forward(m, d)

    # --- internals --------------------------------------------------------------------------------
    def _md(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        if self.model is None or self.data is None:
            raise RuntimeError("MujocoGo2.start() first")
        return self.model, self.data

    def _build(self) -> None:
        spec = build_spec(Go2EnvConfig(terrain=self._terrain))
        spec.add_sensor(name="imu_acc", type=mujoco.mjtSensor.mjSENS_ACCELEROMETER, objtype=mujoco.mjtObj.mjOBJ_SITE,
                        objname="imu")
        m = spec.compile()
        m.opt.timestep = 1.0 / SIM_HZ
        assert tuple(m.joint(i).name for i in range(1, m.njnt)) == C.JOINT_NAMES
        assert int(m.actuator_trnid[0, 0]) == 1 and np.allclose(m.actuator_gear[:, 0], 1.0)
        make_pd_actuators(m)  # the motor drivers' PD as MuJoCo actuators, clipped to the motor limits
        assert np.allclose(m.actuator_forcerange[:, 1], self.tau_limit)
        self.model, self.data = m, mujoco.MjData(m)
        self._acc = C.sensor_slice(m, "imu_acc")
        self._foot_geom = np.array([m.geom(g).id for g in C.FOOT_GEOMS])

    def _foot_forces(self) -> np.ndarray:
        """Normal contact force (N) on each foot sphere, summed over its contacts."""
        m, d = self._md()
        out = np.zeros(4)
        if d.ncon == 0:
            return out
        g1, g2 = d.contact.geom1, d.contact.geom2
        f6 = np.zeros(6)
        for leg, gid in enumerate(self._foot_geom):
            for i in np.flatnonzero((g1 == gid) | (g2 == gid)):
                mujoco.mj_contactForce(m, d, int(i), f6)
                out[leg] += f6[0]
        return out
