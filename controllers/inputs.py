"""Input gate of the daemon: decode, validate and time-stamp every LCM message before anything uses it.

Policy (one rule per kind of bad input, so behaviour is predictable):

* undecodable bytes (bad fingerprint, truncated, garbage) → `GARBAGE`: dropped and counted; no sample is
  replaced, so nothing bad reaches the policy; if a channel delivers only garbage its watchdog fires;
* a decodable message with NaN/Inf in any numeric field, a finite value outside its physical bounds
  (`Bounds`: joint range plus a margin, joint speed, torque, gyro and accelerometer full scale, quaternion
  norm, estimated velocities), a wrong array size, or a seq/utime that does not strictly increase
  (duplicate or out of order) → `INVALID`: dropped, and the daemon treats it as a fault
  (DAMPING), because the robot/estimator/joystick producing it can no longer be trusted;
* otherwise `ACCEPTED`: becomes the channel's latest sample, stamped with the monotonic receive time.

The ordering reference follows the last message received (valid or not), so one replayed or duplicated
packet costs exactly one rejection and a restarted producer resynchronises after one.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hardware.channels import Mode

__all__ = ["Verdict", "Bounds", "ChannelMonitor", "validate_joint_state", "validate_imu", "validate_state_estimate",
           "validate_joystick", "roll_pitch_from_quat"]


@dataclass(frozen=True)
class Bounds:
    """Per-field physical bounds (None: only finiteness is checked). Arrays: per-element (low, high)."""

    q_low: tuple[float, ...] | None = None
    q_high: tuple[float, ...] | None = None
    qd_max: float = math.inf
    tau_max: tuple[float, ...] | None = None
    gyro_max: float = math.inf
    accel_max: float = math.inf
    quat_norm_tol: float = math.inf
    lin_vel_max: float = math.inf
    ang_vel_max: float = math.inf
    position_max: float = math.inf


def _outside(msg: Any, field: str, low: Iterable[float], high: Iterable[float], unit: str) -> str | None:
    for i, (x, lo, hi) in enumerate(zip(getattr(msg, field), low, high, strict=False)):
        if not lo <= x <= hi:
            return f"implausible '{field}'[{i}] = {x:.4g} {unit} (bounds [{lo:.4g}, {hi:.4g}])"
    return None


def _abs_outside(msg: Any, field: str, bound: float, unit: str) -> str | None:
    if not math.isfinite(bound):
        return None
    n = len(getattr(msg, field))
    return _outside(msg, field, (-bound,) * n, (bound,) * n, unit)


def _quat_norm(msg: Any, tol: float) -> str | None:
    norm = math.sqrt(sum(x * x for x in msg.quat))
    if norm < 0.5:
        return "degenerate quaternion in 'quat'"
    if abs(norm - 1.0) > tol:
        return f"implausible 'quat' norm {norm:.4g} (bounds 1 ± {tol:g})"
    return None


def roll_pitch_from_quat(quat: Iterable[float]) -> tuple[float, float]:
    """ZYX roll and pitch [rad] of a wxyz body-to-world quaternion (same convention as the training env)."""
    w, x, y, z = quat
    n = math.sqrt(w * w + x * x + y * y + z * z) or 1.0
    w, x, y, z = w / n, x / n, y / n, z / n
    r20, r21, r22 = 2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)
    return math.atan2(r21, r22), math.asin(max(-1.0, min(1.0, -r20)))


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    GARBAGE = "garbage"
    INVALID = "invalid"


def _finite(msg: Any, fields: Iterable[str]) -> str | None:
    for f in fields:
        v = getattr(msg, f)
        vals = v if isinstance(v, (list, tuple)) else (v,)
        if not all(math.isfinite(x) for x in vals):
            return f"non-finite value in '{f}'"
    return None


def _sized(msg: Any, sizes: dict[str, int]) -> str | None:
    for f, n in sizes.items():
        if len(getattr(msg, f)) != n:
            return f"'{f}' has {len(getattr(msg, f))} entries, expected {n}"
    return None


def validate_joint_state(num_joints: int, b: Bounds = Bounds()) -> Callable[[Any], str | None]:  # noqa: B008
    """joint_state_t: n must be the robot's joint count, all arrays that long, finite and within bounds."""
    def check(m: Any) -> str | None:
        if m.n != num_joints:
            return f"wrong array size: n={m.n}, robot has {num_joints} joints"
        bad = _sized(m, dict.fromkeys(("q", "qd", "tau_est"), num_joints)) or _finite(m, ("q", "qd", "tau_est"))
        if bad is None and b.q_low is not None and b.q_high is not None:
            bad = _outside(m, "q", b.q_low, b.q_high, "rad")
        if bad is None:
            bad = _abs_outside(m, "qd", b.qd_max, "rad/s")
        if bad is None and b.tau_max is not None:
            bad = _outside(m, "tau_est", [-t for t in b.tau_max], b.tau_max, "N m")
        return bad
    return check


def validate_imu(m: Any, b: Bounds = Bounds()) -> str | None:  # noqa: B008
    """imu_t: fixed sizes, finite, a unit quaternion, gyro and accelerometer within full scale."""
    bad = _sized(m, {"quat": 4, "gyro": 3, "accel": 3}) or _finite(m, ("quat", "gyro", "accel"))
    return bad or _quat_norm(m, b.quat_norm_tol) or _abs_outside(m, "gyro", b.gyro_max, "rad/s") \
        or _abs_outside(m, "accel", b.accel_max, "m/s^2")


def validate_state_estimate(num_feet: int, b: Bounds = Bounds()) -> Callable[[Any], str | None]:  # noqa: B008
    """state_estimate_t: fixed sizes, consistent variable arrays (n_feet 0 or num_feet), finite, in bounds."""
    vec3 = ("gravity_body", "position", "lin_vel_world", "lin_vel_body", "ang_vel_body")

    def check(m: Any) -> str | None:
        if m.n_feet not in (0, num_feet):
            return f"wrong array size: n_feet={m.n_feet}, expected 0 or {num_feet}"
        if m.n_cov < 0:
            return f"wrong array size: n_cov={m.n_cov}"
        bad = (_sized(m, {"quat": 4, **dict.fromkeys(vec3, 3), "cov_diag": m.n_cov, "contact": m.n_feet})
               or _finite(m, ("quat", *vec3, "cov_diag")))
        if bad is None:
            bad = _quat_norm(m, b.quat_norm_tol) or _abs_outside(m, "gravity_body", 1.0 + b.quat_norm_tol, "") \
                or _abs_outside(m, "lin_vel_world", b.lin_vel_max, "m/s") \
                or _abs_outside(m, "lin_vel_body", b.lin_vel_max, "m/s") \
                or _abs_outside(m, "ang_vel_body", b.ang_vel_max, "rad/s") \
                or _abs_outside(m, "position", b.position_max, "m")
        return bad
    return check


def validate_joystick(m: Any) -> str | None:
    """joystick_t: finite velocities and a known mode code."""
    bad = _finite(m, ("vx", "vy", "yaw_rate"))
    if bad is None and m.mode not in {int(x) for x in Mode}:
        bad = f"unknown mode {m.mode}"
    return bad


class ChannelMonitor:
    """One input channel: decoder + validator + ordering check + latest accepted sample and its age."""

    def __init__(self, channel: str, decode: Callable[[bytes], Any], validate: Callable[[Any], str | None],
                 timeout_s: float) -> None:
        self.channel, self._decode, self._validate, self.timeout_s = channel, decode, validate, timeout_s
        self.latest: Any = None
        self.latest_recv = -math.inf  # monotonic receive time of `latest`
        self.accepted = self.garbage = self.invalid = 0
        self._last_seq: int | None = None
        self._last_utime: int | None = None

    @property
    def seen(self) -> bool:
        return self.latest is not None

    def age(self, now: float) -> float:
        return now - self.latest_recv

    def stale(self, now: float) -> bool:
        """Seen at least once and older than the watchdog timeout."""
        return self.seen and self.age(now) > self.timeout_s

    def offer(self, data: bytes, now: float) -> tuple[Verdict, str]:
        """Judge one raw message; on ACCEPTED it becomes `latest`. Returns (verdict, reason)."""
        try:
            msg = self._decode(data)
        except Exception as e:  # noqa: BLE001 - any decode failure is garbage, never a crash
            self.garbage += 1
            return Verdict.GARBAGE, f"undecodable {len(data)}-byte message ({type(e).__name__}: {e})"[:160]
        seq, utime = int(msg.seq), int(msg.utime)
        order = None
        if self._last_seq is not None:
            if seq == self._last_seq or utime == self._last_utime:
                order = f"duplicated seq/utime (seq {seq}, utime {utime})"
            elif seq < self._last_seq or utime < self._last_utime:
                order = f"out-of-order seq/utime (seq {seq} after {self._last_seq}, utime {utime} after " \
                        f"{self._last_utime})"
        self._last_seq, self._last_utime = seq, utime
        reason = order or self._validate(msg)
        if reason is not None:
            self.invalid += 1
            return Verdict.INVALID, reason
        self.latest, self.latest_recv = msg, now
        self.accepted += 1
        return Verdict.ACCEPTED, ""
