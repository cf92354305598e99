"""Cheap timing statistics for a 500 Hz loop: O(1) record, percentiles on demand.

`Histogram` keeps the whole run in ~1 % log-spaced bins (bounded memory for a daemon that runs for days);
`Window` keeps the last N samples exactly, for the 10 Hz status message's "recent p99".
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Histogram", "Window"]


class Histogram:
    """Log-binned histogram of positive values in [lo, hi]; percentile error ≤ the bin width (~1 %)."""

    def __init__(self, lo: float = 0.1, hi: float = 1e7, rel_res: float = 0.01) -> None:
        self._lo, self._k = math.log(lo), 1.0 / math.log1p(rel_res)
        self._n_bins = int((math.log(hi) - self._lo) * self._k) + 2
        self._counts = [0] * self._n_bins
        self.count, self.total, self.max = 0, 0.0, -math.inf

    def add(self, x: float) -> None:
        i = 0 if x <= 0 else min(self._n_bins - 1, max(0, int((math.log(x) - self._lo) * self._k) + 1))
        self._counts[i] += 1
        self.count += 1
        self.total += x
        self.max = max(self.max, x)

    def _value(self, i: int) -> float:
        return 0.0 if i == 0 else math.exp(self._lo + (i - 0.5) / self._k)

    def percentile(self, p: float) -> float:
        """Approximate p-th percentile (nan when empty); the maximum is returned exactly for p=100."""
        if self.count == 0:
            return math.nan
        if p >= 100:
            return self.max
        rank, acc = p / 100.0 * self.count, 0
        for i, c in enumerate(self._counts):
            acc += c
            if acc >= rank and c:
                return min(self._value(i), self.max)
        return self.max

    def summary(self) -> dict[str, float | None]:
        """p50/p99/max/mean/count; None (JSON null) for an empty histogram."""
        if self.count == 0:
            return {"p50": None, "p99": None, "max": None, "mean": None, "count": 0}
        return {"p50": self.percentile(50), "p99": self.percentile(99), "max": self.max,
                "mean": self.total / self.count, "count": self.count}


class Window:
    """Ring buffer of the last `size` samples."""

    def __init__(self, size: int) -> None:
        self._buf = np.zeros(size, np.float64)
        self._i = self._n = 0

    def add(self, x: float) -> None:
        self._buf[self._i] = x
        self._i = (self._i + 1) % len(self._buf)
        self._n = min(self._n + 1, len(self._buf))

    def percentile(self, p: float) -> float:
        return float(np.percentile(self._buf[:self._n], p)) if self._n else 0.0
