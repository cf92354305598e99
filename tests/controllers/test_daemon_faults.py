"""Every fault puts the running daemon in DAMPING within 50 ms and its status says why.

A fresh daemon per fault (DAMPING latches). Real LCM across processes, real ONNX Runtime. The delay is
measured in this process: from the fault's publish time (or the last message before a silence) to the
receive time of the first DAMPING joint command, so it includes transport both ways.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import lcm
import numpy as np
import pytest
from daemon_harness import (
    LYING_POSE,
    SAFETY_BOUND_S,
    DaemonProc,
    FakeRobot,
    Recorder,
    estimate,
    imu,
    joint_state,
    joystick,
    lcm_url,
    now_us,
    policy_file,
)

from controllers.robot_config import load_robot_config
from hardware import channels as ch
from hardware.channels import Mode

CFG = load_robot_config()


def _nan_imu(seq: int, utime: int) -> object:
    m = imu(seq, utime)
    m.gyro = [0.0, math.nan, 0.0]
    return m


def _inf_estimate(seq: int, utime: int) -> object:
    m = estimate(seq, utime)
    m.ang_vel_body = [0.0, 0.0, math.inf]
    return m


def _spinning_imu(seq: int, utime: int) -> object:
    m = imu(seq, utime)
    m.gyro = [0.0, 100.0, 0.0]  # finite, but ~3x a ±2000 deg/s gyro's full scale
    return m


def _rolled_imu(seq: int, utime: int) -> object:
    m = imu(seq, utime)
    m.quat = [math.cos(0.65), math.sin(0.65), 0.0, 0.0]  # 1.3 rad about x: on its side
    return m


def _racing_estimate(seq: int, utime: int) -> object:
    m = estimate(seq, utime)
    m.lin_vel_body = [20.0, 0.0, 0.0]
    return m


def _far_joint(seq: int, utime: int) -> object:
    q = LYING_POSE.copy()
    q[2] = 9.0  # a calf encoder reading 9 rad: far outside its [-2.72, -0.84] rad range
    return joint_state(seq, utime, q=q)


def _replay(robot: FakeRobot, channel: str, make: Callable[..., object]) -> float:
    """An out-of-order message: three samples old."""
    return robot.publish_raw(channel, make(robot.seq[channel] - 3, now_us() - 6000).encode())


# name → (inject(robot) -> injection time, substring of status.last_error)
FAULTS: dict[str, tuple[Callable[[FakeRobot], float], str]] = {
    "joint_state_silent": (lambda r: r.silence(ch.JOINT_STATE), f"{ch.JOINT_STATE} silent"),
    "imu_silent": (lambda r: r.silence(ch.IMU), f"{ch.IMU} silent"),
    "estimate_silent": (lambda r: r.silence(ch.STATE_ESTIMATE), f"{ch.STATE_ESTIMATE} silent"),
    "joint_state_nan": (lambda r: r.publish(ch.JOINT_STATE, joint_state, q=np.full(12, np.nan)),
                        "non-finite value in 'q'"),
    "imu_nan": (lambda r: r.publish(ch.IMU, _nan_imu), "non-finite value in 'gyro'"),
    "estimate_inf": (lambda r: r.publish(ch.STATE_ESTIMATE, _inf_estimate), "non-finite value in 'ang_vel_body'"),
    "joint_state_wrong_size": (lambda r: r.publish(ch.JOINT_STATE, joint_state, n=11), "wrong array size: n=11"),
    "joint_state_duplicate": (lambda r: r.republish_last(ch.JOINT_STATE),
                              "duplicated seq/utime"),
    "estimate_out_of_order": (lambda r: _replay(r, ch.STATE_ESTIMATE, estimate), "out-of-order"),
    "estop": (lambda r: r.publish(ch.JOYSTICK, joystick, estop=True), "e-stop"),
    # finite but physically impossible values with a correct seq/utime (a faulty encoder / IMU / filter)
    "joint_state_out_of_range": (lambda r: r.publish(ch.JOINT_STATE, _far_joint), "implausible 'q'[2] = 9"),
    "imu_gyro_implausible": (lambda r: r.publish(ch.IMU, _spinning_imu), "implausible 'gyro'[1] = 100"),
    "estimate_velocity_implausible": (lambda r: r.publish(ch.STATE_ESTIMATE, _racing_estimate),
                                      "implausible 'lin_vel_body'[0] = 20"),
    "fall": (lambda r: r.publish(ch.IMU, _rolled_imu), "fall detected (roll +1.30 rad"),
}


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return policy_file(tmp_path_factory.getbasetemp(), CFG.contract)


@pytest.fixture
def running(policy: Path, tmp_path: Path) -> Iterator[tuple[FakeRobot, Recorder, DaemonProc]]:
    """Daemon in POLICY (via --auto) with a healthy fake robot + estimator."""
    url = lcm_url()
    rec = Recorder(url)
    with FakeRobot(url) as robot:
        d = DaemonProc(policy, url, "--auto", "--set", "deploy.stand_up_s=0.2", log=tmp_path / "daemon.log")
        try:
            d.wait_ready()
            rec.wait_mode(Mode.POLICY)
            time.sleep(0.3)  # a few policy steps
            yield robot, rec, d
        finally:
            rc = d.stop()
            rec.close()
    assert rc == 0, d.stderr()
    logged = {e.channel for e in lcm.EventLog(str(tmp_path / "daemon.lcmlog"), "r")}  # replayable record
    assert {ch.JOINT_STATE, ch.JOINT_COMMAND, ch.DAEMON_STATUS} <= logged, logged


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_damps_within_50ms_and_says_why(fault: str, running: tuple[FakeRobot, Recorder, DaemonProc]) -> None:
    robot, rec, d = running
    inject, why = FAULTS[fault]
    assert not any(m.mode == Mode.DAMPING for _, m in rec.commands), f"damped before the fault: {d.stderr()}"
    t_fault = inject(robot)
    t_damp, first = rec.first_after(t_fault, Mode.DAMPING) if _wait(rec, t_fault) else (math.inf, None)
    delay = t_damp - t_fault
    print(f"{fault}: DAMPING {delay * 1e3:.1f} ms after the fault")
    assert delay < SAFETY_BOUND_S, f"{fault}: DAMPING after {delay * 1e3:.1f} ms\n{d.stderr()}"
    assert first is not None and not any(first.kp) and all(k == CFG.deploy.damping_kd for k in first.kd)
    np.testing.assert_allclose(first.q_des, LYING_POSE, atol=1e-6)  # q_des = the last good measured q
    status = rec.last_status(pred=lambda s: s.mode == Mode.DAMPING)
    assert why in status.last_error and status.faults >= 1, status.last_error
    time.sleep(0.1)
    assert all(m.mode == Mode.DAMPING for t, m in rec.commands if t >= t_damp)  # latched
    assert d.alive()


def _wait(rec: Recorder, t0: float, timeout: float = 1.0) -> bool:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if any(t >= t0 and m.mode == Mode.DAMPING for t, m in rec.commands[-200:]):
            return True
        time.sleep(0.005)
    return False
