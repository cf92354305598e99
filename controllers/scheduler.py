"""Fixed-rate loop timing with absolute deadlines, and optional real-time scheduling.

Deadlines are absolute (t0 + k·period on perf_counter) so jitter never accumulates into drift. Waiting is
`select` on the LCM socket until deadline − spin (messages are handled while we wait), then a short busy
spin to the deadline, because the kernel's sleep granularity is coarser than the 2 ms period needs.

Phase lock: the robot samples on its own clock. Without alignment a sample waits a uniformly random part
of a period before the loop uses it (1 ms mean, 2 ms worst at 500 Hz). `sync(t)` reports each sample's
arrival; every deadline then moves a bounded step towards `arrival + phase_offset` (modulo the period),
a first-order PLL that keeps the period fixed to within the step and puts each tick just after the data.

Sample grace: a sample that arrives later than the lock expects (sender jitter on a busy machine) would
otherwise be used a whole period late, which is the tail of the sensor-to-command latency. With
`sample_grace_s` > 0 a tick whose deadline finds no new sample since the previous tick keeps serving I/O
for up to that long and starts as soon as the sample is handled; deadlines stay absolute, so the rate
does not change, and a silent sensor costs each tick the grace, never the watchdogs.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

from controllers.stats import Histogram, Window
from hardware.realtime import running_realtime

__all__ = ["RateLoop"]


def _nop() -> None:
    pass


class RateLoop:
    """Deadline bookkeeping for one periodic loop: period error, overruns, wait with I/O."""

    def __init__(self, period_s: float, spin_s: float = 0.0003, window: int = 500, phase_offset_s: float = -1.0,
                 phase_gain: float = 0.2, phase_max_step_s: float = 50e-6, sample_grace_s: float = 0.0) -> None:
        self.period, self.spin, self.sample_grace = period_s, spin_s, sample_grace_s
        self.phase_offset, self.phase_gain, self.phase_max_step = phase_offset_s, phase_gain, phase_max_step_s
        self._sync_t: float | None = None
        self.deadline = time.perf_counter()
        self.cycles = self.overruns = 0
        self.grace_waits = self.grace_misses = 0  # ticks held for a late sample: it came / it did not
        self.period_err_us = Histogram()
        self.recent_period_err_us = Window(window)
        self._last_start: float | None = None

    def start_tick(self) -> float:
        """Call at the top of each tick; returns the tick's start time (perf_counter)."""
        now = time.perf_counter()
        if self._last_start is not None:
            err = abs(now - self._last_start - self.period) * 1e6
            self.period_err_us.add(err)
            self.recent_period_err_us.add(err)
        self._last_start = now
        self.cycles += 1
        return now

    def sync(self, t_event: float) -> None:
        """A periodic input (the robot's joint-state sample) arrived at perf_counter time `t_event`."""
        self._sync_t = t_event

    def _phase_step(self) -> float:
        """Bounded deadline correction towards `last arrival + phase_offset` (0 when the lock is off)."""
        if self._sync_t is None or self.phase_offset < 0:
            return 0.0
        err = (self._sync_t + self.phase_offset - self.deadline + self.period / 2) % self.period - self.period / 2
        return max(-self.phase_max_step, min(self.phase_max_step, self.phase_gain * err))

    def _fresh(self) -> bool:
        """A sample has arrived since the previous tick started (or no tick / no sample yet to compare)."""
        return self._sync_t is None or self._last_start is None or self._sync_t > self._last_start

    def _await_sample(self, fd: int, handle_one: Callable[[], None]) -> None:
        """Hold this tick up to `sample_grace` past its deadline for a sample that is late for this period."""
        if self._fresh():
            return
        limit = self.deadline + self.sample_grace
        while not self._fresh():
            remaining = limit - time.perf_counter()
            if remaining <= 0:
                self.grace_misses += 1
                return
            if select.select([fd], [], [], remaining)[0]:
                handle_one()
        self.grace_waits += 1

    def wait(self, fd: int | None, handle_one: Callable[[], None], max_msgs: int = 256) -> None:
        """Serve I/O until the next deadline, spin to it, then drain whatever is still queued, so the next tick's
        watchdogs judge message age from what has arrived, not from how long this process was descheduled.
        A tick that ends past its next deadline is an overrun; a whole period late restarts the schedule from
        now instead of bursting."""
        self.deadline += self.period
        self.deadline += self._phase_step()
        fifo = running_realtime()  # --rt: yield to LCM's receive thread (same priority and CPU) while waiting
        now = time.perf_counter()
        if now > self.deadline:
            self.overruns += 1
            if now - self.deadline > self.period:
                self.deadline = now
        else:
            while True:
                remaining = self.deadline - time.perf_counter() - self.spin
                if remaining <= 0:
                    break
                if fd is None:
                    time.sleep(remaining)
                elif select.select([fd], [], [], remaining)[0]:
                    handle_one()
            spin = os.sched_yield if fifo else _nop  # under CFS a yield would cede the tick
            while time.perf_counter() < self.deadline:
                spin()
            if self.sample_grace > 0 and fd is not None:
                self._await_sample(fd, handle_one)
        if fifo:  # an overrun tick never blocks: let the receive thread queue what the socket holds
            os.sched_yield()
        for _ in range(max_msgs):
            if fd is None or not select.select([fd], [], [], 0)[0]:
                break
            handle_one()
