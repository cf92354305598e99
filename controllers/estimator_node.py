"""State-estimator process: JOINT_STATE + IMU (+ FOOT_CONTACT) over LCM in, STATE_ESTIMATE out.

    python -m controllers.estimator_node [--duration S] [--url URL] [--config YAML]

Every accepted joint state (500 Hz) is fused with the latest IMU sample, provided that sample is within
`--imu-max-age-ms` (20 ms) of the joint state's utime, and one estimate is published with
source_utime = the joint-state utime. Foot forces come from FOOT_CONTACT when a sample is equally
fresh, else from the joint torques (see `controllers.estimator`).

Bad input (undecodable bytes, wrong array sizes, non-finite values, seq or utime not increasing) is
dropped with a rate-limited log line naming the reason, and nothing is published for it: the daemon
downstream sees the estimate go stale instead of seeing a made-up one. A stream whose seq/utime went
backwards for `RESYNC_AFTER` messages in a row (the robot process restarted) is adopted afresh.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np

from controllers.estimator import (
    NUM_FEET,
    NUM_JOINTS,
    STATE_DIM,
    Estimate,
    EstimatorConfig,
    EstimatorInputError,
    KalmanEstimator,
    load_estimator_config,
)
from controllers.inputs import Bounds, validate_imu, validate_joint_state
from hardware import channels as ch
from hardware.msgs import foot_contact_t, imu_t, joint_state_t, state_estimate_t

__all__ = ["EstimatorNode", "RateLimitedLog", "main", "RESYNC_AFTER", "READY_LINE"]

log = logging.getLogger("controllers.estimator_node")

READY_LINE = "READY controllers.estimator_node"
RESYNC_AFTER = 250  # consecutive out-of-order messages (0.5 s at 500 Hz) before a restarted stream is adopted
IMU_MAX_AGE_US = 20_000
QUAT_NORM_TOL = 0.1


class RateLimitedLog:
    """At most one warning per reason per `interval_s`, with the count of the ones swallowed meanwhile."""

    def __init__(self, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s, self.clock = interval_s, clock
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def warn(self, reason: str, detail: str) -> None:
        now = self.clock()
        if now - self._last.get(reason, -math.inf) < self.interval_s:
            self._suppressed[reason] += 1
            return
        extra = f" (+{self._suppressed.pop(reason)} more since last report)" if self._suppressed[reason] else ""
        self._last[reason] = now
        log.warning("%s: %s%s", reason, detail, extra)


class _StreamOrder:
    """Rejects messages whose seq or utime does not increase; adopts a restarted stream after a while."""

    def __init__(self) -> None:
        self.seq: int | None = None
        self.utime: int | None = None
        self.bad_run = 0

    def accept(self, seq: int, utime: int) -> tuple[bool, bool]:
        """(accepted, resynced)."""
        if self.seq is None or (seq > self.seq and utime > self.utime):
            self.seq, self.utime, self.bad_run = seq, utime, 0
            return True, False
        self.bad_run += 1
        if self.bad_run >= RESYNC_AFTER:
            self.seq, self.utime, self.bad_run = seq, utime, 0
            return True, True
        return False, False


@dataclass
class _Imu:
    utime: int
    quat: np.ndarray
    gyro: np.ndarray
    accel: np.ndarray


@dataclass
class _Contact:
    utime: int
    force: np.ndarray


def _finite(*arrays: Sequence[float]) -> bool:
    return all(np.all(np.isfinite(np.asarray(a, dtype=float))) for a in arrays)


class EstimatorNode:
    """The message handling, separate from the LCM loop so it can be driven directly in tests.

    `publish(channel, bytes)` sends a message; `clock()` is wall time in seconds (for the estimate utime).
    """

    def __init__(self, cfg: EstimatorConfig, publish: Callable[[str, bytes], None],
                 clock: Callable[[], float] = time.time, imu_max_age_us: int = IMU_MAX_AGE_US,
                 bounds: Bounds | None = None) -> None:
        self.filter = KalmanEstimator(cfg)
        self.bounds = bounds  # physical input bounds (the daemon's, from the robot config); None: finiteness only
        self._joint_state_bounds = validate_joint_state(NUM_JOINTS, bounds) if bounds is not None else None
        self.publish, self.clock, self.imu_max_age_us = publish, clock, imu_max_age_us
        self.orders = {name: _StreamOrder() for name in (ch.JOINT_STATE, ch.IMU, ch.FOOT_CONTACT)}
        self.imu: _Imu | None = None
        self.contact: _Contact | None = None
        self.t0_utime: int | None = None
        self.seq = 0
        self.published = 0
        self.rejected: Counter[str] = Counter()
        self.warn = RateLimitedLog()

    # --- helpers -------------------------------------------------------------------------------
    def _reject(self, channel: str, reason: str, detail: str) -> None:
        key = f"{channel} {reason}"
        self.rejected[key] += 1
        self.warn.warn(key, detail)

    def _decode(self, channel: str, msg_type: Any, data: bytes) -> Any | None:
        try:
            return msg_type.decode(data)
        except Exception as e:  # lcm-gen raises ValueError on a bad fingerprint, struct.error on short data
            self._reject(channel, "undecodable", f"{type(e).__name__}: {e}")
            return None

    def _in_order(self, channel: str, msg: Any) -> bool:
        ok, resynced = self.orders[channel].accept(int(msg.seq), int(msg.utime))
        if not ok:
            self._reject(channel, "out of order", f"seq {msg.seq} utime {msg.utime} after "
                         f"seq {self.orders[channel].seq} utime {self.orders[channel].utime}")
        elif resynced:
            log.warning("%s: stream restarted (seq %d utime %d); adopting it", channel, msg.seq, msg.utime)
            if channel == ch.JOINT_STATE:
                self.filter.reset()
                self.t0_utime = None
        return ok

    # --- handlers ------------------------------------------------------------------------------
    def on_imu(self, data: bytes) -> None:
        msg = self._decode(ch.IMU, imu_t, data)
        if msg is None:
            return
        if not _finite(msg.quat, msg.gyro, msg.accel):
            self._reject(ch.IMU, "non-finite", f"quat {msg.quat} gyro {msg.gyro} accel {msg.accel}")
            return
        norm = float(np.linalg.norm(msg.quat))
        if abs(norm - 1.0) > QUAT_NORM_TOL:
            self._reject(ch.IMU, "bad quaternion", f"norm {norm:.3g}")
            return
        if self.bounds is not None and (why := validate_imu(msg, self.bounds)) is not None:
            self._reject(ch.IMU, "implausible", why)
            return
        if self._in_order(ch.IMU, msg):
            self.imu = _Imu(int(msg.utime), np.array(msg.quat, dtype=float), np.array(msg.gyro, dtype=float),
                            np.array(msg.accel, dtype=float))

    def on_foot_contact(self, data: bytes) -> None:
        msg = self._decode(ch.FOOT_CONTACT, foot_contact_t, data)
        if msg is None:
            return
        if msg.n != NUM_FEET or len(msg.force) != NUM_FEET:
            self._reject(ch.FOOT_CONTACT, "wrong size", f"n={msg.n}, expected {NUM_FEET}")
            return
        if not _finite(msg.force):
            self._reject(ch.FOOT_CONTACT, "non-finite", f"force {msg.force}")
            return
        if self._in_order(ch.FOOT_CONTACT, msg):
            self.contact = _Contact(int(msg.utime), np.array(msg.force, dtype=float))

    def on_joint_state(self, data: bytes) -> Estimate | None:
        """Run the filter and publish; returns the estimate, or None when the sample was not used."""
        msg = self._decode(ch.JOINT_STATE, joint_state_t, data)
        if msg is None:
            return None
        if msg.n != NUM_JOINTS or not len(msg.q) == len(msg.qd) == len(msg.tau_est) == NUM_JOINTS:
            self._reject(ch.JOINT_STATE, "wrong size", f"n={msg.n}, expected {NUM_JOINTS}")
            return None
        if not _finite(msg.q, msg.qd, msg.tau_est):
            self._reject(ch.JOINT_STATE, "non-finite", "q/qd/tau_est")
            return None
        if self._joint_state_bounds is not None and (why := self._joint_state_bounds(msg)) is not None:
            self._reject(ch.JOINT_STATE, "implausible", why)
            return None
        if not self._in_order(ch.JOINT_STATE, msg):
            return None
        imu = self.imu
        if imu is None or abs(msg.utime - imu.utime) > self.imu_max_age_us:
            age = "none yet" if imu is None else f"{(msg.utime - imu.utime) / 1e3:.1f} ms"
            self._reject(ch.IMU, "stale", f"IMU sample age {age} at joint state seq {msg.seq}")
            return None
        contact = self.contact
        force = contact.force if contact and abs(msg.utime - contact.utime) <= self.imu_max_age_us else None
        if self.t0_utime is None:
            self.t0_utime = int(msg.utime)
        try:
            est = self.filter.update((msg.utime - self.t0_utime) * 1e-6, msg.q, msg.qd, imu.quat, imu.gyro,
                                     imu.accel, foot_force=force, tau=msg.tau_est)
        except EstimatorInputError as e:
            self._reject(ch.JOINT_STATE, "filter input", str(e))
            return None
        self.publish(ch.STATE_ESTIMATE, self._encode(est, int(msg.utime)))
        self.published += 1
        return est

    def _encode(self, est: Estimate, source_utime: int) -> bytes:
        out = state_estimate_t()
        out.utime = int(self.clock() * 1e6)
        out.seq = self.seq
        self.seq += 1
        out.source_utime = source_utime
        out.quat = est.quat.tolist()
        out.gravity_body = est.gravity_body.tolist()
        out.position = est.position.tolist()
        out.lin_vel_world = est.lin_vel_world.tolist()
        out.lin_vel_body = est.lin_vel_body.tolist()
        out.ang_vel_body = est.ang_vel_body.tolist()
        out.n_cov = STATE_DIM
        out.cov_diag = est.cov_diag.tolist()
        out.n_feet = NUM_FEET
        out.contact = [bool(c) for c in est.contact]
        return out.encode()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m controllers.estimator_node", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=None, help="exit (0) after this many seconds")
    p.add_argument("--url", default=None, help=f"LCM URL (default $SOM_LCM_URL, else {ch.DEFAULT_URL})")
    p.add_argument("--config", default=None, help="YAML with EstimatorConfig keys (or an 'estimator:' section)")
    p.add_argument("--rt", action="store_true", help="SCHED_FIFO (below the daemon, --rt-priority) if permitted")
    p.add_argument("--rt-priority", type=int, default=75)
    p.add_argument("--imu-max-age-ms", type=float, default=IMU_MAX_AGE_US / 1e3,
                   help="newest IMU sample must be this close to the joint state's utime")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM or --duration; 0 on a clean stop."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from controllers.robot_config import load_robot_config
    from som_robot.config import ConfigError, load_yaml

    try:
        cfg = load_estimator_config(load_yaml(args.config) if args.config else None)
        lc = ch.open_lcm(args.url)
        node = EstimatorNode(cfg, lc.publish, imu_max_age_us=int(args.imu_max_age_ms * 1e3),
                             bounds=load_robot_config().input_bounds())
        ch.subscribe(lc, ch.JOINT_STATE, lambda _c, data: node.on_joint_state(data))
        ch.subscribe(lc, ch.IMU, lambda _c, data: node.on_imu(data))
        ch.subscribe(lc, ch.FOOT_CONTACT, lambda _c, data: node.on_foot_contact(data))
    except (ConfigError, OSError, ch.LcmUnavailableError) as e:
        print(f"estimator_node: {e}", file=sys.stderr, flush=True)
        return 2

    if args.rt:
        from hardware.realtime import apply_realtime

        for line in apply_realtime(args.rt_priority, ()):
            log.info("rt: %s", line)

    stop = False

    def _stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(READY_LINE, flush=True)
    end = time.monotonic() + args.duration if args.duration is not None else math.inf
    io_errors = 0
    while not stop and time.monotonic() < end:
        try:
            lc.handle_timeout(20)
            io_errors = 0
        except OSError as e:  # lcm reports a signal interrupting its select() as an error (EINTR)
            io_errors += 1
            if io_errors > 100:
                raise
            if io_errors > 1:  # a single one is the stop signal, whose handler may not have run yet
                node.warn.warn("lcm", f"handle_timeout: {e}")
    log.info("stopping: %d estimates published, rejected: %s", node.published, dict(node.rejected) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
