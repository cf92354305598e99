"""`som_robot.deploy --sim --viewer` on a virtual display (Xvfb): the window shows the robot and the chain
keeps its deadlines with it open (the viewer is its own process, posing its own model from LCM)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from daemon_harness import assert_no_trip, lcm_url, policy_file

from sim.go2.contract import go2_contract

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (.ci/run installs Debian's xvfb)")
    num = 100 + os.getpid() % 400
    # niced like the viewer: the X server does the software GL's pixel work, and it must not compete with the chain
    proc = subprocess.Popen(["nice", "-n", "19", xvfb, f":{num}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = Path(f"/tmp/.X11-unix/X{num}")
    t_end = time.monotonic() + 20
    while not sock.exists() and time.monotonic() < t_end and proc.poll() is None:
        time.sleep(0.1)
    assert sock.exists(), "Xvfb did not start"
    yield f":{num}"
    proc.terminate()
    proc.wait(10)


def _deploy(policy: Path, out: Path, env: dict[str, str], viewer: bool) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "som_robot.deploy", "--sim", "--policy", str(policy), "--duration", "8",
           "--cmd", "0.3,0,0", "--out", str(out), "--url", lcm_url(), *(["--viewer"] if viewer else [])]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _daemon(out: Path) -> dict[str, Any]:
    """The daemon's own section of a run's report (measured in the RT loop, not by the deploy process's monitor)."""
    return json.loads((out / "report.json").read_text())["daemon"]


def _timing(daemon: dict[str, Any]) -> tuple[float, float]:
    """p99 period error and sensor→command latency [µs]."""
    return daemon["period_err_us"]["p99"], daemon["sensor_to_command_latency_us"]["p99"]


def test_viewer_shows_the_robot_and_leaves_the_chain_timing_alone(display: str, tmp_path: Path) -> None:
    from PIL import ImageGrab

    policy = policy_file(tmp_path, go2_contract())
    headless = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    base = _deploy(policy, tmp_path / "without", headless, viewer=False)
    assert base.wait(180) == 0, base.stderr.read()[-3000:]

    run = _deploy(policy, tmp_path / "with", headless | {"DISPLAY": display}, viewer=True)
    log = tmp_path / "with" / "viewer.log"
    t_end = time.monotonic() + 120
    while not (log.exists() and "READY" in log.read_text()) and time.monotonic() < t_end and run.poll() is None:
        time.sleep(0.2)
    assert log.exists() and "READY" in log.read_text(), run.stderr.read()[-3000:] if run.poll() is not None else ""
    time.sleep(3.0)  # the robot is up and walking in the window
    shot = np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB")).astype(int)
    assert run.wait(180) == 0, run.stderr.read()[-3000:]
    assert "viewer open" in run.stdout.read()

    window = shot.max(axis=2) > 8  # the root window is black; the viewer's floor is lit grey
    assert window.mean() > 0.2, window.mean()
    floor = np.median(shot[window], axis=0)
    robot = window & (np.abs(shot - floor).max(axis=2) > 25)
    robot[:110, :260] = False  # the overlay text box (top left of the window, which opens at the origin)
    assert robot.sum() / window.sum() > 0.005, robot.sum() / window.sum()  # not blank: the robot stands out

    daemon = _daemon(tmp_path / "with")
    (p_without, l_without), (p_with, l_with) = _timing(_daemon(tmp_path / "without")), _timing(daemon)
    print(f"period error p99 {p_without:.0f} -> {p_with:.0f} us, latency p99 {l_without:.0f} -> {l_with:.0f} us")
    assert_no_trip(daemon)  # with it open
    assert daemon["rate_hz"] > 490, daemon["rate_hz"]
    # Absolute bounds, not a ratio to the run without it: on 2 shared cores the niced viewer and Xvfb still cost
    # the chain scheduling jitter (latency p99 1.0 → 4.9 ms in a CI run, 2026-12-07), and two runs minutes apart
    # see different neighbours. A viewer that held the loop would stall it for a software-GL frame (tens of ms)
    # 30 times a second, 6 % of the 500 Hz cycles, which puts both p99s far past these bounds.
    assert p_with <= 5000, (p_without, p_with)  # 2.5 command periods
    assert l_with <= 15000, (l_without, l_with)  # half the 30 ms sensor timeout, past which the daemon damps
