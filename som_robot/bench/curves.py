"""Side-by-side learning curves of finished runs against wall-clock time (the budget that matters here).

    python -m som_robot.bench curves --runs runs/go2_som_s0,runs/go2_sac_s0 --out policies/curves.png
    python -m som_robot.bench curves --runs ... --x steps   # runs from VMs of different speeds

Reads each run's tensorboard scalars (with their wall times), plots xy tracking error, the tracking
reward, the curriculum level and the fall rate against minutes since the run's first scalar (or, with
`x="steps"`, against env steps: these VMs differ 2-4x in speed from one session to the next, so only
runs made side by side compare in minutes), and returns per run: env steps, minutes, the final
(last-5%-mean) figures and the first minute (and env step) at which the tracking error stayed under
each threshold for a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["compare_runs"]

TAGS = ("tracking/lin_vel_error", "reward/tracking", "curriculum/level", "env/terminated")


def _label(run: Path) -> str:
    """The run's name; a quadruped bench's training folder is `<out>/train`, so it is named by its bench."""
    return run.parent.name if run.name == "train" else run.name


def _series(run: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in TAGS:
        if tag in acc.Tags()["scalars"]:
            ev = acc.Scalars(tag)
            out[tag] = (np.array([e.wall_time for e in ev]), np.array([e.step for e in ev]),
                        np.array([e.value for e in ev]))
    return out


def _first_below(minutes: np.ndarray, v: np.ndarray, thr: float, hold_min: float = 1.0) -> float | None:
    """First minute from which every logged value stays below thr for `hold_min` minutes (None: never)."""
    for t in minutes:
        window = (minutes >= t) & (minutes <= t + hold_min)
        if window.sum() >= 3 and np.all(v[window] < thr) and t + hold_min <= minutes[-1]:
            return float(t)
    return None


def compare_runs(runs: Sequence[Path], out: Path, thresholds: Sequence[float] = (0.3, 0.2, 0.15),
                 x: str = "minutes") -> dict[str, Any]:
    """Plot `runs` side by side into `out` and summarise each (module docstring); `x`: minutes or steps."""
    if x not in ("minutes", "steps"):
        raise ValueError(f"x must be 'minutes' or 'steps', got {x!r}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TAGS), figsize=(5 * len(TAGS), 4))
    summary: dict[str, Any] = {}
    for run in runs:
        s = _series(run)
        t0 = min(ser[0][0] for ser in s.values())
        rec: dict[str, Any] = {}
        for ax, tag in zip(axes, TAGS, strict=True):
            if tag not in s:
                continue
            wall, steps, v = s[tag]
            minutes = (wall - t0) / 60.0
            k = max(1, len(v) // 100)
            smooth = np.convolve(v, np.ones(k) / k, mode="valid")
            ax.plot((minutes if x == "minutes" else steps / 1e6)[k - 1:], smooth, label=_label(run))
            tail = v[int(0.95 * len(v)):] if len(v) > 20 else v
            rec[f"final_{tag}"] = float(np.mean(tail))
            rec["env_steps"], rec["minutes"] = int(steps[-1]), float(minutes[-1])
            if tag == "tracking/lin_vel_error":
                first = {str(t): _first_below(minutes, v, t) for t in thresholds}
                rec["minutes_to_tracking_error_below"] = first
                rec["env_steps_to_tracking_error_below"] = {
                    k_: None if m is None else int(steps[np.searchsorted(minutes, m)]) for k_, m in first.items()}
        summary[_label(run)] = rec
    for ax, tag in zip(axes, TAGS, strict=True):
        ax.set(title=tag, xlabel="wall-clock minutes" if x == "minutes" else "env steps (millions)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return summary
