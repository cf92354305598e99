"""ONNX Runtime latency of an exported policy at batch 1 on one thread, as the daemon calls it.

Onboard-safe (numpy + onnxruntime): `python -m som_robot.bench onnx --policy policy.onnx` runs on
the robot computer itself, where the number matters.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from som_robot.policy_runtime import OnnxPolicy

__all__ = ["onnx_latency"]


def onnx_latency(path: str | Path, n: int = 20_000, warmup: int = 500, seed: int = 0) -> dict[str, float]:
    """Median / p99 / max µs of `OnnxPolicy.__call__` (checks included) and of the bare session run."""
    policy = OnnxPolicy(path, threads=1)
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(64, policy.contract.obs_dim)).astype(np.float32)
    feeds = [{"obs": o[None], "noise": np.zeros((1, policy.contract.act_dim), np.float32)} for o in obs]

    def timed(fn) -> np.ndarray:  # noqa: ANN001 - a zero-arg callable taking the sample index
        for i in range(warmup):
            fn(i)
        ts = np.empty(n)
        for i in range(n):
            t0 = time.perf_counter_ns()
            fn(i)
            ts[i] = (time.perf_counter_ns() - t0) / 1e3
        return ts

    checked = timed(lambda i: policy(obs[i % 64]))
    bare = timed(lambda i: policy.session.run(["action"], feeds[i % 64]))
    return {"median_us": float(np.median(checked)), "p99_us": float(np.percentile(checked, 99)),
            "max_us": float(checked.max()), "session_median_us": float(np.median(bare)),
            "session_p99_us": float(np.percentile(bare, 99)), "threads": 1, "n": n}
