"""The physical Unitree Go2 behind the hardware interface, via `unitree_sdk2py` (DDS `rt/lowstate`, `rt/lowcmd`).

Everything that can be wrong without a robot in the room is a pure function here and unit-tested: the
motor order (SDK: FR, FL, RR, RL; policy: FL, FR, RL, RR), the LowCmd/LowState translation and the foot
force calibration. The SDK itself is imported only in `start()`. Onboard code: numpy only; the joint names
come from `sim.go2.constants` (no torch, no mujoco), the torque and joint limits from `hardware.interface`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from hardware.interface import DAMPING_KD, CommandLimits, MotorCommand, RobotInterface, RobotState, validate_command
from robots.go2 import JOINT_NAMES, LEGS
from robots.go2 import TORQUE_LIMITS as _TAU_MAX

__all__ = [
    "POLICY_LEGS",
    "SDK_LEGS",
    "POLICY_JOINT_NAMES",
    "SDK_JOINT_NAMES",
    "GO2_TORQUE_LIMITS",
    "Go2SdkUnavailableError",
    "FootForceCalibration",
    "policy_to_sdk",
    "sdk_to_policy",
    "feet_policy_to_sdk",
    "feet_sdk_to_policy",
    "init_lowcmd",
    "fill_lowcmd",
    "lowstate_to_robot_state",
    "Go2Bridge",
]

POLICY_LEGS = LEGS  # FL, FR, RL, RR: the policy's (and the MJCF's) leg order
SDK_LEGS = ("FR", "FL", "RR", "RL")  # unitree_go LowCmd/LowState motor and foot order
_PARTS = ("hip", "thigh", "calf")
POLICY_JOINT_NAMES = JOINT_NAMES
SDK_JOINT_NAMES = tuple(f"{leg}_{p}_joint" for leg in SDK_LEGS for p in _PARTS)
GO2_TORQUE_LIMITS = np.asarray(_TAU_MAX)  # N·m per joint in policy order
_LIMITS = CommandLimits.go2()  # q_des within the joint ranges (+ margin), |tau_ff| within the motor limits

# _POLICY_OF_SDK[j]: policy index of SDK motor j. A leg swap, hence its own inverse, but both are kept
# explicit so nothing relies on that.
_POLICY_OF_SDK = np.array([POLICY_JOINT_NAMES.index(n) for n in SDK_JOINT_NAMES])
_SDK_OF_POLICY = np.argsort(_POLICY_OF_SDK)
_POLICY_FOOT_OF_SDK = np.array([POLICY_LEGS.index(leg) for leg in SDK_LEGS])
_SDK_FOOT_OF_POLICY = np.argsort(_POLICY_FOOT_OF_SDK)

NUM_MOTORS = 12
SDK_MOTOR_SLOTS = 20  # LowCmd_.motor_cmd / LowState_.motor_state length; slots 12..19 are unused on the Go2
PMSM_MODE = 0x01  # motor_cmd.mode: servo (FOC) mode
POS_STOP_F = 2.146e9  # q value that disables the driver's position loop (unitree_legged_const)
VEL_STOP_F = 16000.0  # dq value that disables the driver's velocity loop


class Go2SdkUnavailableError(RuntimeError):
    """unitree_sdk2py is not installed (it is only needed on the robot's computer)."""


def policy_to_sdk(x: np.ndarray) -> np.ndarray:
    """Per-joint array (…, 12) from policy order to SDK motor order."""
    return np.asarray(x)[..., _POLICY_OF_SDK]


def sdk_to_policy(x: np.ndarray) -> np.ndarray:
    """Per-joint array (…, 12) from SDK motor order to policy order."""
    return np.asarray(x)[..., _SDK_OF_POLICY]


def feet_policy_to_sdk(x: np.ndarray) -> np.ndarray:
    return np.asarray(x)[..., _POLICY_FOOT_OF_SDK]


def feet_sdk_to_policy(x: np.ndarray) -> np.ndarray:
    """Per-foot array (…, 4) from SDK foot order (FR, FL, RR, RL) to policy leg order."""
    return np.asarray(x)[..., _SDK_FOOT_OF_POLICY]


@dataclass(frozen=True)
class FootForceCalibration:
    """LowState.foot_force is an uncalibrated int16 sensor reading per foot, not newtons.

    force = scale · (raw − offset), per foot in policy order; contact = force > threshold. The defaults pass
    the raw counts through (threshold in counts); measure `offset` with the feet in the air and `scale`
    against a known load to publish newtons.
    """

    offset: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    scale: float = 1.0
    threshold: float = 50.0

    def apply(self, raw_policy_order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        force = self.scale * (np.asarray(raw_policy_order, dtype=float) - np.asarray(self.offset))
        return force, force > self.threshold


def init_lowcmd(lowcmd: Any) -> None:
    """Header and all 20 motor slots in a passive servo state (as the SDK examples initialise LowCmd_)."""
    lowcmd.head[0], lowcmd.head[1] = 0xFE, 0xEF
    lowcmd.level_flag = 0xFF
    lowcmd.gpio = 0
    for m in lowcmd.motor_cmd[:SDK_MOTOR_SLOTS]:
        m.mode = PMSM_MODE
        m.q, m.dq = POS_STOP_F, VEL_STOP_F
        m.kp = m.kd = m.tau = 0.0


def fill_lowcmd(lowcmd: Any, cmd: MotorCommand) -> None:
    """Write a policy-order command into LowCmd_.motor_cmd[0:12] in SDK order (CRC is the caller's)."""
    q, dq, kp, kd, tau = (policy_to_sdk(np.asarray(a, dtype=float))
                          for a in (cmd.q_des, cmd.qd_des, cmd.kp, cmd.kd, cmd.tau_ff))
    for j in range(NUM_MOTORS):
        m = lowcmd.motor_cmd[j]
        m.mode = PMSM_MODE
        m.q, m.dq, m.kp, m.kd, m.tau = float(q[j]), float(dq[j]), float(kp[j]), float(kd[j]), float(tau[j])


def lowstate_to_robot_state(ls: Any, t: float, calib: FootForceCalibration | None = None) -> RobotState:
    """LowState_ (duck-typed: motor_state[i].q/dq/tau_est, imu_state.quaternion wxyz/gyroscope/accelerometer,
    foot_force) → RobotState in policy order. The SDK IMU already matches imu_t: wxyz body→world, rad/s,
    specific force in m/s² (+g on z at rest), so only the joints and feet are permuted."""
    ms = ls.motor_state
    q = sdk_to_policy(np.array([ms[j].q for j in range(NUM_MOTORS)], dtype=float))
    qd = sdk_to_policy(np.array([ms[j].dq for j in range(NUM_MOTORS)], dtype=float))
    tau = sdk_to_policy(np.array([ms[j].tau_est for j in range(NUM_MOTORS)], dtype=float))
    imu = ls.imu_state
    quat = np.array(imu.quaternion, dtype=float)
    norm = np.linalg.norm(quat)
    quat = quat / norm if norm > 0 else np.array([1.0, 0.0, 0.0, 0.0])
    force, contact = (calib or FootForceCalibration()).apply(feet_sdk_to_policy(np.array(ls.foot_force, dtype=float)))
    return RobotState(t=t, q=q, qd=qd, tau_est=tau, quat=quat, gyro=np.array(imu.gyroscope, dtype=float),
                      accel=np.array(imu.accelerometer, dtype=float), foot_force=force, foot_contact=contact)


def _import_sdk() -> dict[str, Any]:
    try:
        from unitree_sdk2py.core.channel import ChannelFactoryInitialize, ChannelPublisher, ChannelSubscriber
        from unitree_sdk2py.idl.default import unitree_go_msg_dds__LowCmd_
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowCmd_, LowState_
        from unitree_sdk2py.utils.crc import CRC
    except ImportError as e:
        raise Go2SdkUnavailableError(
            f"Go2Bridge needs unitree_sdk2py ({e}); on the robot computer: "
            "pip install git+https://github.com/unitreerobotics/unitree_sdk2_python (needs cyclonedds 0.10.x)") from e
    return dict(ChannelFactoryInitialize=ChannelFactoryInitialize, ChannelPublisher=ChannelPublisher,
                ChannelSubscriber=ChannelSubscriber, new_lowcmd=unitree_go_msg_dds__LowCmd_, LowCmd_=LowCmd_,
                LowState_=LowState_, CRC=CRC)


class Go2Bridge(RobotInterface):
    """Unitree Go2 in low-level mode: LowState in on the SDK's DDS thread, LowCmd out on every `step()`.

    The motor drivers run the PD law themselves, so `step()` just sends the held command (with a fresh
    CRC); if LowState stops arriving for `state_timeout` s the bridge damps on its own.
    """

    def __init__(self, network_interface: str | None = None, calib: FootForceCalibration | None = None,
                 dt: float = 0.002, state_timeout: float = 0.1, damping_kd: float = DAMPING_KD,
                 release_sport_mode: bool = True) -> None:
        self._iface = network_interface
        self.calib = calib or FootForceCalibration()
        self._dt = dt
        self._state_timeout = state_timeout
        self._damping_kd = damping_kd
        self._release = release_sport_mode
        self._lock = threading.Lock()
        self._state: RobotState | None = None
        self._state_mono = 0.0
        self._cmd = MotorCommand.damping(NUM_MOTORS, damping_kd)
        self._sdk: dict[str, Any] | None = None
        self._pub: Any = None
        self._sub: Any = None
        self._lowcmd: Any = None
        self._crc: Any = None
        self.stale_damps = 0

    @property
    def num_joints(self) -> int:
        return NUM_MOTORS

    @property
    def dt(self) -> float:
        return self._dt

    def start(self, wait_s: float = 5.0) -> None:
        sdk = self._sdk = _import_sdk()
        if self._iface:
            sdk["ChannelFactoryInitialize"](0, self._iface)
        else:
            sdk["ChannelFactoryInitialize"](0)
        if self._release:
            self._release_sport_mode()
        self._lowcmd = sdk["new_lowcmd"]()
        init_lowcmd(self._lowcmd)
        self._crc = sdk["CRC"]()
        self._pub = sdk["ChannelPublisher"]("rt/lowcmd", sdk["LowCmd_"])
        self._pub.Init()
        self._sub = sdk["ChannelSubscriber"]("rt/lowstate", sdk["LowState_"])
        self._sub.Init(self._on_lowstate, 10)
        deadline = time.monotonic() + wait_s
        while self._state is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no rt/lowstate from the Go2 within {wait_s} s (network interface "
                                   f"{self._iface!r}; is the robot on and the cable in?)")
            time.sleep(0.01)
        self.damp()
        self.step()

    def read(self) -> RobotState:
        with self._lock:
            if self._state is None:
                raise RuntimeError("Go2Bridge.start() first (no LowState yet)")
            return self._state

    def write(self, cmd: MotorCommand) -> None:
        reason = validate_command(len(cmd.q_des), cmd.q_des, cmd.qd_des, cmd.kp, cmd.kd, cmd.tau_ff, NUM_MOTORS,
                                  limits=_LIMITS)
        if reason is not None:
            raise ValueError(f"refusing motor command: {reason}")
        tau_ff = np.clip(np.asarray(cmd.tau_ff, dtype=float), -GO2_TORQUE_LIMITS, GO2_TORQUE_LIMITS)
        self._cmd = MotorCommand(np.asarray(cmd.q_des, float).copy(), np.asarray(cmd.qd_des, float).copy(),
                                 np.asarray(cmd.kp, float).copy(), np.asarray(cmd.kd, float).copy(), tau_ff)

    def step(self, nstep: int = 1) -> None:
        """Send the held command once (the motor drivers hold it for the `nstep` ticks)."""
        if self._pub is None:
            raise RuntimeError("Go2Bridge.start() first")
        if time.monotonic() - self._state_mono > self._state_timeout and not self._cmd.is_damping():
            self.stale_damps += 1  # lost the robot's state: never servo blind
            self.damp()
        fill_lowcmd(self._lowcmd, self._cmd)
        self._lowcmd.crc = self._crc.Crc(self._lowcmd)
        self._pub.Write(self._lowcmd)

    def damp(self, kd: float | None = None) -> None:
        super().damp(self._damping_kd if kd is None else kd)

    def stop(self) -> None:
        if self._pub is None:
            return
        self.damp()
        for _ in range(10):  # a few sends so a dropped packet cannot leave the last gains in the drivers
            self.step()
            time.sleep(self._dt)
        for ch in (self._sub, self._pub):
            close = getattr(ch, "Close", None)
            if close is not None:
                close()
        self._pub = self._sub = None

    # --- internals --------------------------------------------------------------------------------
    def _on_lowstate(self, msg: Any) -> None:
        state = lowstate_to_robot_state(msg, time.time(), self.calib)
        with self._lock:
            self._state, self._state_mono = state, time.monotonic()

    def _release_sport_mode(self, tries: int = 10) -> None:
        """Low-level commands fight the onboard sport controller unless it is released first."""
        from unitree_sdk2py.comm.motion_switcher.motion_switcher_client import MotionSwitcherClient

        msc = MotionSwitcherClient()
        msc.SetTimeout(5.0)
        msc.Init()
        for _ in range(tries):
            _, result = msc.CheckMode()
            if not result or not result.get("name"):
                return
            msc.ReleaseMode()
            time.sleep(1.0)
        raise RuntimeError("the Go2 sport mode did not release; stop it in the app and retry")
