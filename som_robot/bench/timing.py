"""Round-robin wall-clock timing for the benches that compare callables side by side.

These VMs share two cores and change speed mid-run, so callables whose costs are compared are timed in
turn, round after round, and ratios are taken per round (`paired_ratio`) or between medians of
interleaved samples: a slow phase of the machine then hits both sides alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["interleaved_us", "median_us", "paired_ratio"]


def interleaved_us(fns: dict[str, Callable[[], Any]], n: int, warmup: int = 50
                   ) -> tuple[dict[str, dict[str, float]], dict[str, list[float]]]:
    """Time several callables round-robin, so a load change on a shared machine hits all of them alike.

    Returns the per-callable median/p99 and the raw per-round samples (for `paired_ratio`).
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    raw: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(n):
        for k, fn in fns.items():
            t0 = time.perf_counter_ns()
            fn()
            raw[k].append((time.perf_counter_ns() - t0) / 1e3)
    stats = {}
    for k, ts in raw.items():
        srt = sorted(ts)
        stats[k] = {"median_us": statistics.median(srt), "p99_us": srt[min(len(srt) - 1, int(0.99 * len(srt)))]}
    return stats, raw


def median_us(fn: Callable[[], Any], n: int, warmup: int = 50) -> dict[str, float]:
    """Median and p99 µs of one callable (the one-callable case of `interleaved_us`)."""
    return interleaved_us({"fn": fn}, n, warmup)[0]["fn"]


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median of per-round ratios of two round-robin timings: both sides of each ratio ran within the same
    millisecond, so a slow phase of the machine cancels."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))
