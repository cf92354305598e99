"""The controller daemon end to end: refuses a mismatched policy, runs PASSIVE → STAND_UP → POLICY at 500 Hz
on healthy inputs, follows the joystick, survives garbage, and imports without torch or mujoco.

Real LCM across processes (a private multicast port per test), real ONNX Runtime, the daemon as a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from daemon_harness import (
    LYING_POSE,
    ROOT,
    DaemonProc,
    FakeRobot,
    Joystick,
    Recorder,
    joint_state,
    lcm_url,
    policy_file,
)

from controllers.robot_config import load_robot_config
from hardware import channels as ch
from hardware.channels import Mode

CFG = load_robot_config()
LOWER, UPPER = np.array(CFG.joint_limits.lower), np.array(CFG.joint_limits.upper)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return policy_file(tmp_path_factory.getbasetemp(), CFG.contract)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[str, FakeRobot, Recorder]]:
    url = lcm_url()
    rec = Recorder(url)
    with FakeRobot(url) as robot:
        yield url, robot, rec
    rec.close()


def _modes(cmds: list) -> list[Mode]:
    """Distinct consecutive modes of a command stream."""
    out: list[Mode] = []
    for _, m in cmds:
        if not out or out[-1] != m.mode:
            out.append(Mode(m.mode))
    return out


@pytest.mark.parametrize(("field", "value"), [
    ("joint_names", CFG.contract.joint_names[3:6] + CFG.contract.joint_names[:3] + CFG.contract.joint_names[6:]),
    ("kp", (25.0,) * 12),
])
def test_refuses_a_policy_with_another_contract(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
                                                field: str, value: object) -> None:
    other = policy_file(tmp_path_factory.getbasetemp(), dataclasses.replace(CFG.contract, **{field: value}))
    d = DaemonProc(other, lcm_url(), "--auto", log=tmp_path / "daemon.log")
    rc = d.proc.wait(60)
    d.stop()
    err = d.stderr()
    assert rc == 2, err
    assert "refusing to start" in err and f"'{field}'" in err, err
    assert not d.ready.is_set()


def test_a_held_port_stops_the_daemon_with_a_message(policy: Path, tmp_path: Path) -> None:
    """lcm returns no subscription when its receive port is held by a socket without SO_REUSEADDR; the daemon
    must say so and exit before READY (it has commanded nothing, so the robot's watchdog keeps damping)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("", 0))
        d = DaemonProc(policy, f"udpm://239.255.76.67:{held.getsockname()[1]}?ttl=0", "--auto",
                       log=tmp_path / "daemon.log")
        rc = d.proc.wait(60)
        d.stop()
    err = d.stderr()
    assert rc == 1, err
    assert "cannot subscribe" in err and "Traceback" not in err, err
    assert not d.ready.is_set()


def test_healthy_auto_run_stands_up_then_runs_the_policy_at_500hz(
        policy: Path, rig: tuple[str, FakeRobot, Recorder], tmp_path: Path) -> None:
    url, robot, rec = rig
    stats_path = tmp_path / "stats.json"
    d = DaemonProc(policy, url, "--auto", "--set", "deploy.stand_up_s=0.3", "--stats-json", str(stats_path),
                   log=tmp_path / "daemon.log")
    d.wait_ready()
    t_policy = rec.wait_mode(Mode.POLICY)
    time.sleep(1.0)
    t_stop = time.monotonic()
    assert d.stop() == 0, d.stderr()
    time.sleep(0.05)
    cmds = list(rec.commands)
    err = d.stderr()

    modes = _modes(cmds)
    assert modes[-3:] == [Mode.STAND_UP, Mode.POLICY, Mode.DAMPING] and set(modes[:-3]) <= {Mode.PASSIVE}, modes
    for _, m in cmds:
        q = np.array(m.q_des)
        assert m.n == 12 and np.isfinite(q).all() and np.all(q >= LOWER) and np.all(q <= UPPER)
    # stand-up ramps from the measured pose to the default pose with the contract's gains
    stand = [m for _, m in cmds if m.mode == Mode.STAND_UP]
    np.testing.assert_allclose(stand[0].q_des, LYING_POSE, atol=0.05)
    np.testing.assert_allclose(stand[-1].q_des, CFG.contract.default_pose, atol=0.05)
    # POLICY: ≈500 Hz commands (daemon clock and our receive clock), new targets at ≈50 Hz, contract gains
    pol = [(t, m) for t, m in cmds if m.mode == Mode.POLICY and t_policy <= t <= t_stop]
    rate_tx = (len(pol) - 1) / ((pol[-1][1].utime - pol[0][1].utime) * 1e-6)
    rate_rx = (len(pol) - 1) / (pol[-1][0] - pol[0][0])
    changes = sum(not np.array_equal(a.q_des, b.q_des) for (_, a), (_, b) in zip(pol, pol[1:], strict=False))
    policy_hz = changes / (pol[-1][0] - pol[0][0])
    lat_ms = np.median([(m.utime - m.source_utime) / 1e3 for _, m in pol])
    print(f"commands {rate_tx:.1f} Hz (daemon clock) {rate_rx:.1f} Hz (received), targets {policy_hz:.1f} Hz, "
          f"median command age {lat_ms:.2f} ms")
    assert 450 < rate_tx < 550 and 400 < rate_rx < 600
    assert 40 < policy_hz < 60
    assert all(np.all(np.array(m.kp) == 40.0) and np.all(np.array(m.kd) == 1.0) for _, m in pol)
    assert all(m.source_utime > 0 for _, m in pol) and lat_ms < 20
    seqs = [m.seq for _, m in cmds]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # SIGTERM: damping commands, then exit 0
    damp = [m for t, m in cmds if m.mode == Mode.DAMPING]
    assert len(damp) >= 50 and all(not any(m.kp) for m in damp)
    # status at ~10 Hz and on mode changes
    st = [s for t, s in rec.statuses if t_policy + 0.1 <= t <= t_stop]
    assert 7 <= len(st) <= 16 and all(s.mode == Mode.POLICY for s in st), [s.mode for s in st]
    assert st[-1].cycles > 500 and st[-1].infer_us_p99 > 0 and st[-1].faults == 0
    assert "rate=" in err and "overruns=" in err
    # stats file
    stats = json.loads(stats_path.read_text())
    assert [h["mode"] for h in stats["mode_history"]] == ["PASSIVE", "STAND_UP", "POLICY", "DAMPING"]
    assert "SIGTERM" in stats["mode_history"][-1]["reason"]
    for k in ("period_err_us", "infer_us", "sensor_to_command_latency_us"):
        assert stats[k]["p50"] <= stats[k]["p99"]
    assert stats["overruns_per_min"] >= 0 and stats["faults"] == 0
    print(json.dumps({k: stats[k] for k in ("rate_hz", "period_err_us", "infer_us", "overruns", "overruns_per_min",
                                            "sensor_to_command_latency_us")}))


def test_joystick_drives_the_modes(policy: Path, rig: tuple[str, FakeRobot, Recorder], tmp_path: Path) -> None:
    url, robot, rec = rig
    d = DaemonProc(policy, url, "--set", "deploy.stand_up_s=0.2", log=tmp_path / "daemon.log")
    joy = Joystick(robot, Mode.POLICY)  # already asking for POLICY at start: not an edge, nothing moves
    try:
        d.wait_ready()
        time.sleep(0.3)
        assert _modes(rec.commands) == [Mode.PASSIVE]
        assert not any(rec.commands[-1][1].kp) and not any(rec.commands[-1][1].kd)
        joy.mode = Mode.STAND_UP
        rec.wait_mode(Mode.STAND_UP, 2)
        joy.mode = Mode.POLICY
        rec.wait_mode(Mode.POLICY, 2)
        time.sleep(0.2)
        joy.mode = Mode.PASSIVE  # "stop" while walking: damping, not zero torque
        t_stop = rec.wait_mode(Mode.DAMPING, 2)
        time.sleep(0.1)
        assert all(m.mode == Mode.DAMPING for t, m in rec.commands if t >= t_stop)
        joy.mode = Mode.DAMPING
        time.sleep(0.05)
        joy.mode = Mode.PASSIVE  # a new PASSIVE request from DAMPING: go limp
        rec.wait_mode(Mode.PASSIVE, 2)
        time.sleep(0.05)
        assert _modes(rec.commands) == [Mode.PASSIVE, Mode.STAND_UP, Mode.POLICY, Mode.DAMPING, Mode.PASSIVE]
    finally:
        joy.close()
        assert d.stop() == 0, d.stderr()


def test_garbage_on_every_input_is_dropped_never_crashes(
        policy: Path, rig: tuple[str, FakeRobot, Recorder], tmp_path: Path) -> None:
    url, robot, rec = rig
    d = DaemonProc(policy, url, "--auto", "--set", "deploy.stand_up_s=0.2", log=tmp_path / "daemon.log")
    try:
        d.wait_ready()
        rec.wait_mode(Mode.POLICY)
        truncated = joint_state(1, 1).encode()[:20]  # right fingerprint, cut short
        blobs = [b"", b"\x00garbage", os.urandom(300), truncated]
        inputs = (ch.JOINT_STATE, ch.IMU, ch.STATE_ESTIMATE, ch.JOYSTICK)
        t_garbage = time.monotonic()
        for c in inputs:
            for b in blobs:
                robot.publish_raw(c, b)
        time.sleep(0.3)
        assert d.alive()
        assert _modes([(t, m) for t, m in rec.commands if t >= t_garbage]) == [Mode.POLICY]
        st = rec.last_status(pred=lambda s: s.faults >= len(inputs) * len(blobs))
        assert st.mode == Mode.POLICY and "undecodable" in st.last_error
        assert rec.statuses[-1][0] > t_garbage + 0.15  # status still arriving
    finally:
        assert d.stop() == 0, d.stderr()
    assert "undecodable" in d.stderr()


BLOCK_TRAINING_STACK = textwrap.dedent("""
    import importlib.abc, sys
    class _Onboard(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "mujoco"):
                raise ImportError(f"{name} is not installed onboard")
            return None
    sys.meta_path.insert(0, _Onboard())
""")


def test_onboard_import_graph_has_no_torch_or_mujoco(policy: Path) -> None:
    code = BLOCK_TRAINING_STACK + textwrap.dedent(f"""
        import contextlib, io, runpy
        import controllers.daemon
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "mujoco", "sim"))
        assert not heavy, heavy
        out = io.StringIO()
        sys.argv = ["controllers.daemon", "--help"]
        with contextlib.redirect_stdout(out):
            try:
                runpy.run_module("controllers.daemon", run_name="__main__", alter_sys=True)
            except SystemExit as e:
                assert e.code == 0, e.code
        assert "--policy" in out.getvalue() and "--auto" in out.getvalue()
        rc = controllers.daemon.main(["--policy", {str(policy)!r}, "--duration", "0.3", "--url", {lcm_url()!r}])
        assert rc == 0, rc
        print("ONBOARD OK")
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "ONBOARD OK" in res.stdout, res.stdout + res.stderr
