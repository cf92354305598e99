"""Test harness for the controller daemon: a fake robot + estimator over real LCM, a command/status
recorder, the daemon as a subprocess, and a small SOM policy exported with a given contract.

Every daemon gets its own multicast port so tests never hear each other (or other LCM users on the host).
Times are time.monotonic() receive/publish times in the test process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lcm
import numpy as np

from hardware import channels as ch
from hardware.channels import Mode
from hardware.msgs import daemon_status_t, imu_t, joint_command_t, joint_state_t, joystick_t, state_estimate_t
from som_robot.contract import PolicyContract

ROOT = Path(__file__).resolve().parents[2]
N = 12
LYING_POSE = np.tile([0.0, 1.2, -2.6], 4)  # where the fake robot's joints sit (a crouch, inside the limits)
SAFETY_BOUND_S = 0.050  # the bound: damping within 50 ms of any fault


def lcm_url() -> str:
    """A private multicast port for one daemon + its fake robot (free now, below the ephemeral range)."""
    return ch.private_udpm_url()


def now_us() -> int:
    return time.time_ns() // 1000


def policy_file(base: Path, contract: PolicyContract) -> Path:
    """Export (once per contract and session) a small SOM actor with `contract` embedded; needs torch."""
    path = base / "daemon_policies" / f"{hashlib.sha1(contract.to_json().encode()).hexdigest()[:12]}.onnx"
    if path.exists():
        return path
    import torch

    from som_robot.algos import SOM, SOMConfig
    from som_robot.export import export_onnx

    torch.manual_seed(0)
    agent = SOM(contract.obs_dim, contract.act_dim, SOMConfig(hidden=(64, 64)))
    torch.nn.init.normal_(agent.actor.net[-1].weight, std=0.3)  # a non-trivial policy
    return export_onnx(agent, contract, path)


# ---- messages -------------------------------------------------------------------------------------------
def assert_no_trip(daemon: dict[str, Any]) -> None:
    """A `som_robot.deploy --sim` run's daemon report: PASSIVE → STAND_UP → POLICY, no fault, and DAMPING only at
    the shutdown the chain sends (SIGINT)."""
    history = [(h["mode"], h["reason"]) for h in daemon["mode_history"]]
    assert daemon["faults"] == 0 and history[-1] == ("DAMPING", "shutdown: SIGINT"), history
    assert [m for m, _ in history] == ["PASSIVE", "STAND_UP", "POLICY", "DAMPING"], history


def joint_state(seq: int, utime: int, q: np.ndarray = LYING_POSE, n: int = N) -> joint_state_t:
    m = joint_state_t()
    m.utime, m.seq, m.n = utime, seq, n
    m.q, m.qd, m.tau_est = list(q[:n]), [0.0] * n, [0.0] * n
    return m


def imu(seq: int, utime: int) -> imu_t:
    m = imu_t()
    m.utime, m.seq = utime, seq
    m.quat, m.gyro, m.accel = [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 9.81]
    return m


def estimate(seq: int, utime: int) -> state_estimate_t:
    m = state_estimate_t()
    m.utime, m.seq, m.source_utime = utime, seq, utime
    m.quat, m.gravity_body, m.position = [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 0.0, 0.27]
    m.lin_vel_world, m.lin_vel_body, m.ang_vel_body = [0.0] * 3, [0.0] * 3, [0.0] * 3
    m.n_cov, m.cov_diag, m.n_feet, m.contact = 3, [0.01] * 3, 4, [True] * 4
    return m


def joystick(seq: int, utime: int, mode: Mode = Mode.POLICY, estop: bool = False, vx: float = 0.3) -> joystick_t:
    m = joystick_t()
    m.utime, m.seq, m.vx, m.vy, m.yaw_rate, m.mode, m.estop = utime, seq, vx, 0.0, 0.0, int(mode), estop
    return m


MAKERS: dict[str, Callable[[int, int], Any]] = {ch.JOINT_STATE: joint_state, ch.IMU: imu,
                                                 ch.STATE_ESTIMATE: estimate}


class FakeRobot:
    """Publishes well-formed joint state, IMU and state estimate at 500 Hz from a thread; faults on demand."""

    def __init__(self, url: str) -> None:
        self.lc = lcm.LCM(url)
        self.seq = {c: 0 for c in (*MAKERS, ch.JOYSTICK)}
        self.last: dict[str, Any] = {}
        self.last_pub: dict[str, float] = {}
        self.silent: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FakeRobot:
        # The daemon's sensor watchdogs are 20 ms: keep this thread from waiting long for the GIL on a busy host.
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        sys.setswitchinterval(self._switch)

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # best effort (root / CAP_SYS_NICE): a punctual robot
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(10))
        period, t = 1.0 / ch.SENSOR_HZ, time.monotonic()
        while not self._stop.is_set():
            for c, make in MAKERS.items():
                if c not in self.silent:
                    self.publish(c, make)
            t += period
            delay = t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                t = time.monotonic()

    def publish(self, channel: str, make: Callable[[int, int], Any], **kw: Any) -> float:
        """Publish make(next seq, now) on `channel`; returns the monotonic time just after publishing."""
        with self._lock:
            self.seq[channel] += 1
            msg = make(self.seq[channel], now_us(), **kw)
            self.lc.publish(channel, msg.encode())
            self.last[channel] = msg
            self.last_pub[channel] = t = time.monotonic()
        return t

    def publish_raw(self, channel: str, data: bytes) -> float:
        with self._lock:
            self.lc.publish(channel, data)
            return time.monotonic()

    def republish_last(self, channel: str) -> float:
        """Send `channel`'s last message again, under the publish lock: read outside it, the loop's next
        message can go out first and the copy arrives out of order instead of duplicated."""
        with self._lock:
            self.lc.publish(channel, self.last[channel].encode())
            return time.monotonic()

    def silence(self, channel: str) -> float:
        """Stop publishing `channel`; returns the time of its last message (when the silence began)."""
        with self._lock:
            self.silent.add(channel)
            return self.last_pub[channel]


@dataclass
class Recorder:
    """Subscribes JOINT_COMMAND and DAEMON_STATUS; keeps (receive time, message) lists."""

    url: str
    commands: list[tuple[float, joint_command_t]] = field(default_factory=list)
    statuses: list[tuple[float, daemon_status_t]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lc = lcm.LCM(self.url)
        self.lc.subscribe(ch.JOINT_COMMAND, lambda c, d: self.commands.append((time.monotonic(),
                                                                                joint_command_t.decode(d))))
        self.lc.subscribe(ch.DAEMON_STATUS, lambda c, d: self.statuses.append((time.monotonic(),
                                                                               daemon_status_t.decode(d))))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.lc.handle_timeout(50)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def wait_mode(self, mode: Mode, timeout: float = 10.0) -> float:
        """Wait for the first command in `mode`; returns its receive time."""
        t_end = time.monotonic() + timeout
        i = 0
        while time.monotonic() < t_end:
            cmds = self.commands
            for t, m in cmds[i:]:
                if m.mode == mode:
                    return t
            i = len(cmds)
            time.sleep(0.005)
        seen = sorted({Mode(m.mode).name for _, m in self.commands})
        raise AssertionError(f"no {mode.name} command within {timeout} s (modes seen: {seen})")

    def first_after(self, t0: float, mode: Mode) -> tuple[float, joint_command_t]:
        return next((t, m) for t, m in self.commands if t >= t0 and m.mode == mode)

    def last_status(self, timeout: float = 2.0, pred: Callable[[daemon_status_t], bool] = lambda s: True
                    ) -> daemon_status_t:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            hits = [s for _, s in self.statuses if pred(s)]
            if hits:
                return hits[-1]
            time.sleep(0.01)
        raise AssertionError(f"no matching status within {timeout} s; last: "
                             f"{[(s.mode, s.last_error) for _, s in self.statuses[-3:]]}")


class DaemonProc:
    """`python -m controllers.daemon` as a subprocess; waits for its READY line."""

    def __init__(self, policy: Path, url: str, *args: str, log: Path | None = None) -> None:
        self.cmd = [sys.executable, "-m", "controllers.daemon", "--policy", str(policy), "--url", url, *args]
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self._err = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115 - closed in stop()
        self.logger = None  # every logged run is also recorded with lcm-logger (replay with lcm-logplayer)
        if log is not None:
            from som_robot.deploy.chain import lcm_bin

            self.logger = subprocess.Popen([lcm_bin("lcm-logger"), "-q", "-f", f"--lcm-url={url}",
                                            str(log.with_suffix(".lcmlog"))], stdout=subprocess.DEVNULL)
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._err, text=True)
        self.stdout: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)
            if line.startswith("READY controllers.daemon"):
                self.ready.set()

    def wait_ready(self, timeout: float = 30.0) -> None:
        if not self.ready.wait(timeout):
            raise AssertionError(f"daemon not READY within {timeout} s (rc={self.proc.poll()}): {self.stderr()}")

    def stderr(self) -> str:
        return self.log.read_text() if self.log and self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if self._err is not subprocess.PIPE:
            self._err.close()
        if self.logger is not None:
            self.logger.send_signal(signal.SIGINT)
            self.logger.wait(5.0)
        return rc


class Joystick:
    """Operator stand-in: publishes joystick_t at 50 Hz with a settable requested mode."""

    def __init__(self, robot: FakeRobot, mode: Mode = Mode.PASSIVE, vx: float = 0.3) -> None:
        self.robot, self.mode, self.vx = robot, mode, vx
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.robot.publish(ch.JOYSTICK, joystick, mode=self.mode, vx=self.vx)
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
