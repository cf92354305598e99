"""Go2 bridge without a robot: SDK motor/foot order, LowCmd/LowState translation, foot-force calibration, and
the start/step/stop flow against a fake in-process SDK (the real DDS link needs the robot)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from hardware import go2_bridge as B
from hardware.interface import DAMPING_KD, MotorCommand
from sim.go2 import constants as C
from sim.go2.contract import TORQUE_LIMITS


def test_sdk_order_is_a_leg_permutation_of_the_policy_order() -> None:
    assert B.POLICY_JOINT_NAMES == C.JOINT_NAMES and len(B.GO2_TORQUE_LIMITS) == len(TORQUE_LIMITS)
    assert sorted(B.SDK_JOINT_NAMES) == sorted(C.JOINT_NAMES)
    for j, name in enumerate(B.SDK_JOINT_NAMES):  # SDK slot j carries the policy joint of the same name
        x = np.zeros(12)
        x[C.JOINT_NAMES.index(name)] = 1.0
        assert B.policy_to_sdk(x)[j] == 1.0


@pytest.mark.parametrize(("policy_idx", "sdk_idx"), [(2, 5), (0, 3), (3, 0), (5, 2), (7, 10), (11, 8), (6, 9)])
def test_known_joint_lands_at_its_sdk_index(policy_idx: int, sdk_idx: int) -> None:
    x = np.zeros(12)
    x[policy_idx] = 1.0
    assert np.flatnonzero(B.policy_to_sdk(x)).tolist() == [sdk_idx]
    assert B.SDK_JOINT_NAMES[sdk_idx] == C.JOINT_NAMES[policy_idx]
    y = np.zeros(12)
    y[sdk_idx] = 1.0
    assert np.flatnonzero(B.sdk_to_policy(y)).tolist() == [policy_idx]


def test_sdk_order_is_fr_fl_rr_rl_and_round_trips_are_identity() -> None:
    assert [n.split("_")[0] for n in B.SDK_JOINT_NAMES[::3]] == ["FR", "FL", "RR", "RL"]
    x = np.random.default_rng(0).normal(size=(5, 12))
    assert np.array_equal(B.sdk_to_policy(B.policy_to_sdk(x)), x)
    assert np.array_equal(B.policy_to_sdk(B.sdk_to_policy(x)), x)
    assert not np.array_equal(B.policy_to_sdk(x), x)
    f = np.arange(4.0)
    assert B.feet_policy_to_sdk(f).tolist() == [1.0, 0.0, 3.0, 2.0]  # SDK FR, FL, RR, RL
    assert np.array_equal(B.feet_sdk_to_policy(B.feet_policy_to_sdk(f)), f)


def _fake_lowcmd() -> SimpleNamespace:
    motors = [SimpleNamespace(mode=0, q=0.0, dq=0.0, kp=0.0, kd=0.0, tau=0.0) for _ in range(20)]
    return SimpleNamespace(head=[0, 0], level_flag=0, gpio=1, crc=0, motor_cmd=motors)


def _fake_lowstate(q_sdk: np.ndarray, foot_raw: list[int]) -> SimpleNamespace:
    ms = [SimpleNamespace(q=float(q_sdk[j]), dq=10.0 + j, tau_est=20.0 + j) for j in range(12)]
    ms += [SimpleNamespace(q=0.0, dq=0.0, tau_est=0.0) for _ in range(8)]
    imu = SimpleNamespace(quaternion=[2.0, 0.0, 0.0, 0.0], gyroscope=[0.1, 0.2, 0.3], accelerometer=[0.0, 0.0, 9.8])
    return SimpleNamespace(motor_state=ms, imu_state=imu, foot_force=foot_raw)


def test_fill_lowcmd_writes_policy_command_in_sdk_slots() -> None:
    lowcmd = _fake_lowcmd()
    B.init_lowcmd(lowcmd)
    assert lowcmd.head == [0xFE, 0xEF] and lowcmd.level_flag == 0xFF and lowcmd.gpio == 0
    assert all(m.mode == B.PMSM_MODE and m.q == B.POS_STOP_F and m.kp == 0 for m in lowcmd.motor_cmd)
    idx = np.arange(12.0)
    cmd = MotorCommand(q_des=idx, qd_des=idx + 100, kp=idx + 200, kd=idx + 300, tau_ff=idx + 400)
    B.fill_lowcmd(lowcmd, cmd)
    m = lowcmd.motor_cmd[5]  # SDK FL_calf = policy index 2
    assert (m.q, m.dq, m.kp, m.kd, m.tau) == (2.0, 102.0, 202.0, 302.0, 402.0)
    assert lowcmd.motor_cmd[0].q == 3.0  # SDK FR_hip = policy index 3
    assert sorted(lowcmd.motor_cmd[j].q for j in range(12)) == list(range(12))
    assert all(mc.q == B.POS_STOP_F for mc in lowcmd.motor_cmd[12:])  # unused slots untouched


def test_lowstate_translation_permutes_joints_and_feet_and_keeps_imu_conventions() -> None:
    q_sdk = np.arange(12.0)
    s = B.lowstate_to_robot_state(_fake_lowstate(q_sdk, [11, 22, 33, 44]), t=1.5)
    assert s.t == 1.5
    assert s.q[2] == 5.0 and s.q[3] == 0.0  # FL_calf ← SDK 5, FR_hip ← SDK 0
    assert np.array_equal(s.q, B.sdk_to_policy(q_sdk))
    assert s.qd[2] == 15.0 and s.tau_est[2] == 25.0
    assert s.quat.tolist() == [1.0, 0.0, 0.0, 0.0]  # wxyz passthrough, normalised
    assert s.gyro.tolist() == [0.1, 0.2, 0.3] and s.accel[2] == pytest.approx(9.8)
    assert s.foot_force.tolist() == [22.0, 11.0, 44.0, 33.0]  # raw SDK FR, FL, RR, RL → FL, FR, RL, RR
    assert s.base_pos is None and s.base_lin_vel_world is None  # no ground truth on hardware

    cal = B.FootForceCalibration(offset=(2.0, 1.0, 4.0, 3.0), scale=0.5, threshold=12.0)
    s = B.lowstate_to_robot_state(_fake_lowstate(q_sdk, [11, 22, 33, 44]), t=0.0, calib=cal)
    assert s.foot_force.tolist() == [10.0, 5.0, 20.0, 15.0]
    assert s.foot_contact.tolist() == [False, False, True, True]


@pytest.mark.skipif(importlib.util.find_spec("unitree_sdk2py") is not None, reason="SDK installed")
def test_start_without_sdk_raises_a_clear_error() -> None:
    with pytest.raises(B.Go2SdkUnavailableError, match="unitree_sdk2py"):
        B.Go2Bridge().start()


class _FakeSdk:
    """In-process stand-in for the DDS channels: records LowCmd writes, feeds LowState from a thread."""

    def __init__(self) -> None:
        self.writes: list[list[tuple[float, float, float]]] = []
        self.feeding = True
        outer = self

        class Pub:
            def __init__(self, topic: str, _t: object) -> None:
                assert topic == "rt/lowcmd"

            def Init(self) -> None:  # noqa: N802 (the SDK's names)
                pass

            def Write(self, msg: SimpleNamespace) -> None:  # noqa: N802 (the SDK's names)
                assert msg.crc == 1234
                outer.writes.append([(m.q, m.kp, m.kd) for m in msg.motor_cmd[:12]])

        class Sub:
            def __init__(self, topic: str, _t: object) -> None:
                assert topic == "rt/lowstate"
                self.stop = threading.Event()

            def Init(self, handler: object, _depth: int) -> None:  # noqa: N802 (the SDK's names)
                def feed() -> None:
                    while not self.stop.is_set():
                        if outer.feeding:
                            handler(_fake_lowstate(B.policy_to_sdk(C.DEFAULT_JOINT_POS), [0, 0, 0, 0]))
                        time.sleep(0.002)
                threading.Thread(target=feed, daemon=True).start()

            def Close(self) -> None:  # noqa: N802 (the SDK's names)
                self.stop.set()

        self.api = dict(ChannelFactoryInitialize=lambda *a: None, ChannelPublisher=Pub, ChannelSubscriber=Sub,
                        new_lowcmd=_fake_lowcmd, LowCmd_=object, LowState_=object,
                        CRC=lambda: SimpleNamespace(Crc=lambda msg: 1234))


def test_bridge_flow_against_fake_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = _FakeSdk()
    monkeypatch.setattr(B, "_import_sdk", lambda: sdk.api)
    bridge = B.Go2Bridge(release_sport_mode=False, state_timeout=0.05)
    bridge.start(wait_s=2.0)
    assert np.allclose(bridge.read().q, C.DEFAULT_JOINT_POS)
    assert sdk.writes and all(kp == 0 and kd == DAMPING_KD for _, kp, kd in sdk.writes[-1])  # starts damped

    with pytest.raises(ValueError, match="not finite"):
        bridge.write(MotorCommand.hold(np.full(12, np.nan), 40, 1))
    bridge.write(MotorCommand.hold(C.DEFAULT_JOINT_POS, 40.0, 1.0))
    bridge.step()
    sent = sdk.writes[-1]
    assert sent[5][0] == pytest.approx(C.DEFAULT_JOINT_POS[2]) and sent[5][1] == 40.0  # policy FL_calf at SDK 5

    sdk.feeding = False  # the robot goes quiet: the bridge must not keep servoing blind
    time.sleep(0.15)
    bridge.step()
    assert all(kp == 0 for _, kp, _ in sdk.writes[-1]) and bridge.stale_damps == 1
    bridge.stop()
    assert all(kp == 0 for _, kp, _ in sdk.writes[-1])


def test_onboard_path_is_sim_free_and_fails_clearly_without_sdk() -> None:
    """`--robot go2` must not import MuJoCo or torch (sim.go2's numpy-only constants are fine) and must exit
    with a message, not a traceback."""
    code = ("import sys; import hardware.server, hardware.go2_bridge; "
            "assert not {'mujoco', 'torch', 'sim.go2.env', 'sim.go2.model'} & set(sys.modules), sorted(sys.modules); "
            "sys.exit(hardware.server.main(['--robot', 'go2', '--duration', '0.1']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    if importlib.util.find_spec("unitree_sdk2py") is None:
        assert res.returncode == 2 and "unitree_sdk2py" in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_command_limits_are_the_mjcf_joint_ranges_and_motor_limits() -> None:
    from hardware.interface import CommandLimits, validate_command
    from sim.go2.model import build_model

    m = build_model()
    lim = CommandLimits.go2()
    np.testing.assert_allclose(lim.q_low, m.jnt_range[1:, 0], atol=1e-4)
    np.testing.assert_allclose(lim.q_high, m.jnt_range[1:, 1], atol=1e-4)
    np.testing.assert_allclose(lim.tau_max, m.actuator_ctrlrange[:, 1])
    z = np.zeros(12)
    q = m.key("home").qpos[7:]
    assert validate_command(12, q, z, z + 40, z + 1, z, limits=lim) is None
    assert "outside the joint range" in validate_command(12, q + 5.0, z, z + 40, z + 1, z, limits=lim)
    assert validate_command(12, q + 5.0, z, z, z + 1, z, limits=lim) is None  # kp = 0: q_des has no effect
    assert "beyond the motor limit" in validate_command(12, q, z, z, z + 1, z + 50.0, limits=lim)
