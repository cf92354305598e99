"""Watch the deploy chain from outside: what the robot receives and how well the robot moves.

A background thread subscribes to the commands, the daemon status, the state estimate and (in
simulation) the ground truth, and keeps the raw series the report needs: command arrival times
(the 500 Hz stream as the robot sees it), sensor-to-command latency (arrival time minus the
`source_utime` the daemon stamped), commanded / estimated / true base velocity, and the mode
timeline. Undecodable packets are counted, never fatal.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from hardware import channels as ch
from hardware.msgs import daemon_status_t, joint_command_t, state_estimate_t

__all__ = ["ChainMonitor", "Series"]


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass
class Series:
    """Raw samples; times are wall-clock seconds (time.time()) at arrival unless noted."""

    cmd_arrival: list[float] = field(default_factory=list)  # perf_counter seconds, for period statistics
    cmd_latency_us: list[float] = field(default_factory=list)  # arrival − source_utime
    cmd_mode: list[int] = field(default_factory=list)
    status: list[tuple[float, int, str, int, int]] = field(default_factory=list)  # t, mode, error, overruns, cycles
    truth: list[tuple[float, float, float, float]] = field(default_factory=list)  # utime s, vx, vy, yaw rate (body)
    estimate: list[tuple[float, float, float, float]] = field(default_factory=list)  # source utime s, vx, vy, yaw
    bad_packets: int = 0


class ChainMonitor:
    """Subscribe on `url` in a thread; `series` fills while the chain runs."""

    def __init__(self, url: str) -> None:
        self.lc = ch.open_lcm(url)
        self.series = Series()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        ch.subscribe(self.lc, ch.JOINT_COMMAND, self._on_cmd)
        ch.subscribe(self.lc, ch.DAEMON_STATUS, self._on_status)
        ch.subscribe(self.lc, ch.STATE_ESTIMATE, self._on_estimate)
        ch.subscribe(self.lc, ch.SIM_TRUTH, self._on_truth)
        self._thread = threading.Thread(target=self._run, daemon=True, name="chain-monitor")

    def start(self) -> ChainMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.lc.handle_timeout(50)

    # -- handlers (the LCM thread) --------------------------------------------------------------
    def _decode(self, cls: type, data: bytes):  # -> message or None
        try:
            return cls.decode(data)
        except Exception:  # garbage on a channel is the daemon's problem to reject; here we only count it
            with self.lock:
                self.series.bad_packets += 1
            return None

    def _on_cmd(self, _: str, data: bytes) -> None:
        t, now = time.perf_counter(), _now_us()
        m = self._decode(joint_command_t, data)
        if m is None:
            return
        with self.lock:
            self.series.cmd_arrival.append(t)
            self.series.cmd_latency_us.append(float(now - m.source_utime) if m.source_utime > 0 else float("nan"))
            self.series.cmd_mode.append(int(m.mode))

    def _on_status(self, _: str, data: bytes) -> None:
        m = self._decode(daemon_status_t, data)
        if m is not None:
            with self.lock:
                self.series.status.append((time.time(), int(m.mode), m.last_error, int(m.overruns), int(m.cycles)))

    def _on_estimate(self, _: str, data: bytes) -> None:
        m = self._decode(state_estimate_t, data)
        if m is not None:
            with self.lock:
                self.series.estimate.append((m.source_utime / 1e6, *m.lin_vel_body[:2], m.ang_vel_body[2]))

    def _on_truth(self, _: str, data: bytes) -> None:
        m = self._decode(state_estimate_t, data)
        if m is not None:
            with self.lock:
                self.series.truth.append((m.utime / 1e6, *m.lin_vel_body[:2], m.ang_vel_body[2]))

    # -- queries ------------------------------------------------------------------------------------
    def mode(self) -> int | None:
        """The daemon's latest reported mode (None before its first status)."""
        with self.lock:
            return self.series.status[-1][1] if self.series.status else None

    def last_error(self) -> str:
        with self.lock:
            return self.series.status[-1][2] if self.series.status else ""

    def wait_mode(self, mode: int, timeout: float) -> bool:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.mode() == mode:
                return True
            time.sleep(0.01)
        return False

    def first_command_in_mode(self, mode: int, after: float) -> float | None:
        """perf_counter arrival time of the first command in `mode` that arrived after `after`."""
        with self.lock:
            for t, m in zip(self.series.cmd_arrival, self.series.cmd_mode, strict=True):
                if t > after and m == mode:
                    return t
        return None
