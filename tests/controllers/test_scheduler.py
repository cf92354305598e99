"""The daemon's rate loop: absolute deadlines, and the phase lock to the robot's sensor clock (real time)."""

import time

import numpy as np

from controllers.scheduler import RateLoop

PERIOD = 0.002


def _run(loop: RateLoop, ticks: int, sensor_phase: float) -> np.ndarray:
    """Tick `ticks` times against a 500 Hz sensor with the given phase; returns start − last sample times."""
    t0 = time.perf_counter()
    loop.deadline = t0
    lag = []
    for _ in range(ticks):
        start = loop.start_tick()
        k = np.floor((start - t0 - sensor_phase) / PERIOD)
        last_sample = t0 + sensor_phase + k * PERIOD  # the newest sample that has arrived by now
        loop.sync(last_sample)
        lag.append(start - last_sample)
        loop.wait(None, lambda: None)
    return np.asarray(lag)


def test_phase_lock_starts_ticks_just_after_the_samples() -> None:
    locked = _run(RateLoop(PERIOD, spin_s=0.0005, phase_offset_s=0.0003), 500, sensor_phase=0.0004)
    free = _run(RateLoop(PERIOD, spin_s=0.0005), 500, sensor_phase=0.0004)
    # after 0.5 s (the lock moves <= 50 µs per tick, so 1.3 ms of phase takes ~30-60 ticks)
    lag_locked, lag_free = np.median(locked[250:]), np.median(free[250:])
    assert lag_locked < 0.0008, lag_locked  # ≈ the 0.3 ms offset (+ wake-up jitter on a loaded box)
    assert lag_free > 0.0012, lag_free  # unlocked, each sample waits 1.6 ms here before it is used


def test_phase_steps_are_bounded_so_the_period_stays_fixed() -> None:
    loop = RateLoop(PERIOD, phase_offset_s=0.0003)
    loop.deadline = 10.0
    loop.sync(10.0011)  # target 10.0014 ≡ 9.9994 (mod 2 ms): move earlier, by at most 50 µs
    assert loop._phase_step() == -50e-6
    loop.sync(9.99972)  # target 10.00002: 20 µs late, corrected by the gain (0.2)
    assert abs(loop._phase_step() - 0.2 * 20e-6) < 1e-9
    assert RateLoop(PERIOD)._phase_step() == 0.0  # off unless configured
