"""Deploy-run report: the numbers (JSON) and the plots (PNG) from one `som_robot.deploy` run.

All figures come from the same run: the command stream's period error and the sensor-to-command
latency as the robot side receives them, the daemon's own in-loop statistics (period error,
inference time, overruns), estimator error against simulator ground truth, and commanded versus
achieved velocity while the policy drove. matplotlib is optional (onboard installs lack it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hardware.channels import COMMAND_HZ, Mode
from som_robot.deploy.monitor import Series

__all__ = ["summarize", "write_report", "percentiles"]


def percentiles(x: np.ndarray | list[float], qs: tuple[int, ...] = (50, 99)) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {f"p{q}": float("nan") for q in qs} | {"n": 0}
    return {f"p{q}": float(np.percentile(x, q)) for q in qs} | {"max": float(x.max()), "n": int(x.size)}


def _policy_windows(series: Series) -> list[tuple[float, float]]:
    """Wall-clock intervals during which the daemon reported POLICY."""
    out, start = [], None
    for t, mode, *_ in series.status:
        if mode == Mode.POLICY and start is None:
            start = t
        elif mode != Mode.POLICY and start is not None:
            out.append((start, t))
            start = None
    if start is not None and series.status:
        out.append((start, series.status[-1][0]))
    return out


def _in_windows(t: np.ndarray, windows: list[tuple[float, float]], settle: float) -> np.ndarray:
    mask = np.zeros(t.shape, bool)
    for a, b in windows:
        mask |= (t >= a + settle) & (t <= b)
    return mask


def summarize(series: Series, cmd: tuple[float, float, float], daemon_stats: dict[str, Any] | None,
              settle_s: float = 2.0) -> dict[str, Any]:
    """Figures of one run; velocities are averaged over POLICY time after `settle_s`."""
    arrival = np.asarray(series.cmd_arrival)
    periods_us = np.diff(arrival) * 1e6
    nominal = 1e6 / COMMAND_HZ
    out: dict[str, Any] = {
        "commands_received": int(arrival.size),
        "command_rate_hz": float((arrival.size - 1) / (arrival[-1] - arrival[0])) if arrival.size > 1 else 0.0,
        "command_period_us": percentiles(periods_us),
        "command_period_error_us": percentiles(np.abs(periods_us - nominal)),
        "sensor_to_command_latency_us": percentiles(series.cmd_latency_us),
        "bad_packets_seen_by_monitor": series.bad_packets,
        "modes": [{"t": t, "mode": Mode(m).name, "last_error": e} for i, (t, m, e, _, _) in enumerate(series.status)
                  if i == 0 or m != series.status[i - 1][1]],
        "daemon": daemon_stats or {},
    }
    windows = _policy_windows(series)
    out["policy_seconds"] = float(sum(b - a for a, b in windows))
    if series.truth:
        truth = np.asarray(series.truth)
        m = _in_windows(truth[:, 0], windows, settle_s)
        if m.any():
            out["velocity"] = {"command": list(cmd), "achieved_vx": float(truth[m, 1].mean()),
                               "achieved_vy": float(truth[m, 2].mean()), "achieved_yaw": float(truth[m, 3].mean()),
                               "vx_error_rms": float(np.sqrt(np.mean((truth[m, 1] - cmd[0]) ** 2)))}
        if series.estimate:
            est = np.asarray(sorted(series.estimate))
            err = np.stack([np.interp(est[:, 0], truth[:, 0], truth[:, k]) - est[:, k] for k in (1, 2)], 1)
            inside = (est[:, 0] >= truth[0, 0]) & (est[:, 0] <= truth[-1, 0])
            walk = inside & _in_windows(est[:, 0], windows, settle_s)
            out["estimator"] = {
                "rms_vel_error_xy": float(np.sqrt(np.mean(np.sum(err[inside] ** 2, 1)))) if inside.any() else None,
                "rms_vel_error_xy_policy": float(np.sqrt(np.mean(np.sum(err[walk] ** 2, 1)))) if walk.any() else None}
    return out


def write_report(out_dir: Path, series: Series, summary: dict[str, Any]) -> list[Path]:
    """report.json plus, when matplotlib is installed, velocity.png and timing.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json"]
    paths[0].write_text(json.dumps(summary, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return paths
    cmd = summary.get("velocity", {}).get("command") or [float("nan")] * 3
    fig, ax = plt.subplots(figsize=(10, 4))
    t0 = min([s[0] for s in series.truth[:1]] + [s[0] for s in series.estimate[:1]] or [0.0])
    if series.truth:
        tr = np.asarray(series.truth)
        ax.plot(tr[:, 0] - t0, tr[:, 1], lw=0.8, label="achieved vx (sim truth)")
    if series.estimate:
        es = np.asarray(sorted(series.estimate))
        ax.plot(es[:, 0] - t0, es[:, 1], lw=0.8, alpha=0.7, label="estimated vx (Kalman filter)")
    ax.axhline(cmd[0], color="k", ls="--", label=f"commanded vx = {cmd[0]:g}")
    for a, b in _policy_windows(series):
        ax.axvspan(a - t0, b - t0, color="g", alpha=0.08)
    ax.set(xlabel="time [s]", ylabel="base vx [m/s]", title="commanded vs achieved velocity (green: POLICY mode)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out_dir / "velocity.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    periods = np.diff(np.asarray(series.cmd_arrival)) * 1e6
    if periods.size:
        axes[0].hist(periods, bins=100, log=True)
    axes[0].set(xlabel="command inter-arrival [µs] (nominal 2000)", ylabel="count",
                title="500 Hz command stream at the robot")
    lat = np.asarray(series.cmd_latency_us)
    lat = lat[np.isfinite(lat)]
    if lat.size:
        axes[1].hist(lat, bins=100, log=True)
    axes[1].set(xlabel="sensor sample → command received [µs]", ylabel="count", title="sensor-to-command latency")
    fig.tight_layout()
    fig.savefig(out_dir / "timing.png", dpi=110)
    plt.close(fig)
    return paths + [out_dir / "velocity.png", out_dir / "timing.png"]
