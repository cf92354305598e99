"""The robot-side LCM process: runs a RobotInterface, publishes its sensors at SENSOR_HZ, applies joint commands.

    python -m hardware.server --robot sim [--lockstep] [--duration S] [--url URL] [--seed N]

Safety lives here, next to the motors, not in the controller: every JOINT_COMMAND is validated (n, finite,
gain ranges) and a bad one puts the robot in damping instead of reaching the drivers; a valid command is
held for at most `--cmd-timeout` s of silence, then the robot damps until valid commands resume.

Two clocks:
  * real time (default): one robot tick per `robot.dt` on absolute perf_counter deadlines (select() on the
    LCM socket until just before the deadline, then a short spin), sensors every SIM_HZ/SENSOR_HZ ticks;
  * `--lockstep` (sim only, deterministic): one initial sensor sample, then each received command advances
    the sim by exactly one sensor period (2 physics steps) and publishes the next sample. Time only moves when
    a command arrives, so the hold timeout (counted in sim time) never fires; invalid commands still damp.
    While no command arrives the last sample is re-sent unchanged (same seq and utime) every
    `--lockstep-resend` s, so a consumer that subscribed late still starts the chain.

Prints `READY hardware.server` once subscribed and publishing, and `DONE hardware.server {json stats}` on
exit (SIGINT/SIGTERM or --duration: the robot is left damped, exit code 0).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import json
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hardware import channels as ch
from hardware.interface import DAMPING_KD, CommandLimits, MotorCommand, RobotInterface, RobotState, validate_command
from hardware.msgs import foot_contact_t, imu_t, joint_command_t, joint_state_t, state_estimate_t
from hardware.realtime import apply_realtime, running_realtime

__all__ = ["SensorPublisher", "CommandGate", "build_robot", "main"]

log = logging.getLogger("hardware.server")


def _quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


class SensorPublisher:
    """Encodes one RobotState into JOINT_STATE, IMU, FOOT_CONTACT (+ SIM_TRUTH), sharing one utime."""

    def __init__(self, lc: Any, truth: bool) -> None:
        self.lc = lc
        self.truth = truth
        self.seq = {c: 0 for c in (ch.JOINT_STATE, ch.IMU, ch.FOOT_CONTACT, ch.SIM_TRUTH)}
        self.last: list[tuple[str, bytes]] = []
        self.samples = 0

    def _next(self, channel: str) -> int:
        s = self.seq[channel]
        self.seq[channel] = s + 1
        return s

    def publish(self, s: RobotState) -> None:
        utime = time.time_ns() // 1000
        js = joint_state_t()
        js.utime, js.seq, js.n = utime, self._next(ch.JOINT_STATE), len(s.q)
        js.q, js.qd, js.tau_est = s.q.tolist(), s.qd.tolist(), s.tau_est.tolist()
        imu = imu_t()
        imu.utime, imu.seq = utime, self._next(ch.IMU)
        imu.quat, imu.gyro, imu.accel = s.quat.tolist(), s.gyro.tolist(), s.accel.tolist()
        fc = foot_contact_t()
        fc.utime, fc.seq, fc.n = utime, self._next(ch.FOOT_CONTACT), len(s.foot_force)
        fc.force, fc.contact = s.foot_force.tolist(), [bool(c) for c in s.foot_contact]
        out = [(ch.JOINT_STATE, js.encode()), (ch.IMU, imu.encode()), (ch.FOOT_CONTACT, fc.encode())]
        if self.truth and s.base_pos is not None:
            out.append((ch.SIM_TRUTH, self._truth(s, utime).encode()))
        for c, data in out:
            self.lc.publish(c, data)
        self.last = out
        self.samples += 1

    def republish(self) -> None:
        """Send the last sample again, byte for byte (lockstep keep-alive)."""
        for c, data in self.last:
            self.lc.publish(c, data)

    def _truth(self, s: RobotState, utime: int) -> state_estimate_t:
        assert s.base_quat is not None and s.base_lin_vel_world is not None and s.base_ang_vel_body is not None
        R = _quat_to_rotmat(s.base_quat)
        m = state_estimate_t()
        m.utime, m.seq, m.source_utime = utime, self._next(ch.SIM_TRUTH), utime
        m.quat = s.base_quat.tolist()
        m.gravity_body = (R.T @ np.array([0.0, 0.0, -1.0])).tolist()
        m.position = s.base_pos.tolist()
        m.lin_vel_world = s.base_lin_vel_world.tolist()
        m.lin_vel_body = (R.T @ s.base_lin_vel_world).tolist()
        m.ang_vel_body = s.base_ang_vel_body.tolist()
        m.n_cov, m.cov_diag = 0, []
        m.n_feet, m.contact = len(s.foot_contact), [bool(c) for c in s.foot_contact]
        return m


class CommandClock:
    """Arrival timing of joint commands as the robot loop sees them (the deploy report's robot-side figures).

    Recorded in the LCM callback, i.e. when the server's loop reads the socket: period error against the
    nominal COMMAND_HZ and sensor-to-command latency (arrival wall time − the command's source_utime).
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self.arrival: list[float] = []
        self.latency_us: list[float] = []

    def on_arrival(self, data: bytes) -> None:
        if len(self.arrival) >= self.limit:
            return
        t, wall_us = time.perf_counter(), time.time_ns() // 1000
        self.arrival.append(t)
        with contextlib.suppress(Exception):  # garbage is the gate's business; it is only not timed here
            src = joint_command_t.decode(data).source_utime
            if src > 0:
                self.latency_us.append(float(wall_us - src))

    def stats(self) -> dict[str, float]:
        def pct(x: np.ndarray, q: float) -> float:
            return round(float(np.percentile(x, q)), 1) if len(x) else float("nan")

        err = np.abs(np.diff(np.asarray(self.arrival)) * 1e6 - 1e6 / ch.COMMAND_HZ)
        lat = np.asarray(self.latency_us)
        return {"cmd_period_err_us_p50": pct(err, 50), "cmd_period_err_us_p99": pct(err, 99),
                "cmd_latency_us_p50": pct(lat, 50), "cmd_latency_us_p99": pct(lat, 99)}


class CommandGate:
    """Validates commands, applies the valid ones from one writer, and damps on rejects, silence and conflicts.

    One writer: the gate locks onto the first command stream it sees (again after a silence), and accepts a
    message of that stream only if its seq moves forward by at most `max_seq_gap` (lost packets are fine). A
    second publisher's interleaved seq stream, or a seq regression, is rejected and counted; the intruder is
    logged once per episode, and `conflict_count` foreign messages within `conflict_window_s` damp the robot
    until `conflict_clear_s` pass without one. Every field goes through the `validate_command` the Go2 bridge
    also uses, with the joint-range and torque limits.
    """

    def __init__(self, robot: RobotInterface, timeout: float, damping_kd: float,
                 limits: CommandLimits | None = None, max_seq_gap: int = 100, conflict_count: int = 5,
                 conflict_window_s: float = 0.5, conflict_clear_s: float = 1.0) -> None:
        self.robot = robot
        self.timeout = timeout
        self.damping_kd = damping_kd
        self.limits = limits
        self.max_seq_gap, self.conflict_count = max_seq_gap, conflict_count
        self.conflict_window_s, self.conflict_clear_s = conflict_window_s, conflict_clear_s
        self.state = "waiting"  # waiting (no command yet, damped) | active | timeout | rejected | conflict
        self.last_valid = 0.0
        self.accepted = self.rejected = self.timeouts = self.foreign = self.conflicts = 0
        self._last_reject_log = -1e9
        self._stream_seq: int | None = None
        self._foreign_t: list[float] = []
        self._intruder_logged = False

    def _in_stream(self, seq: int) -> bool:
        """Lock on (first command, or after a silence) or check the locked stream's seq moves forward."""
        if self._stream_seq is None or self.state in ("waiting", "timeout"):
            if self._stream_seq is not None:
                log.info("command stream re-locked at seq %d after %s", seq, self.state)
            self._stream_seq = seq
            return True
        if 0 < seq - self._stream_seq <= self.max_seq_gap:
            self._stream_seq = seq
            return True
        return False

    def _on_foreign(self, seq: int, now: float) -> None:
        self.foreign += 1
        if not self._intruder_logged:
            log.warning("rejected a joint command from a second writer or a seq regression (seq %d, stream at %d); "
                        "only one command stream may drive the robot", seq, self._stream_seq)
            self._intruder_logged = True
        self._foreign_t = [t for t in self._foreign_t if now - t <= self.conflict_window_s] + [now]
        if len(self._foreign_t) >= self.conflict_count and self.state != "conflict":
            self.conflicts += 1
            self.state = "conflict"
            self.robot.damp(self.damping_kd)
            log.warning("persistent command conflict (%d foreign commands in %.1f s): damping until it stops",
                        len(self._foreign_t), self.conflict_window_s)

    def on_message(self, data: bytes, now: float) -> bool:
        """Apply or reject one encoded joint_command_t; True if it was applied."""
        try:
            msg = joint_command_t.decode(data)
            seq = int(msg.seq)
        except Exception as e:  # malformed bytes must not kill the motor loop
            msg, seq, reason = None, None, f"undecodable ({type(e).__name__}: {e})"
        if seq is not None and not self._in_stream(seq):
            self._on_foreign(seq, now)
            return False
        if msg is not None:
            reason = validate_command(msg.n, msg.q_des, msg.qd_des, msg.kp, msg.kd, msg.tau_ff,
                                      self.robot.num_joints, limits=self.limits)
        if reason is not None:
            self.rejected += 1
            self.robot.damp(self.damping_kd)
            if self.state != "rejected" or now - self._last_reject_log > 1.0:
                log.warning("rejected joint command (%s); damping [%d rejected so far]", reason, self.rejected)
                self._last_reject_log = now
            if self.state != "conflict":
                self.state = "rejected"
            return False
        if self.state == "conflict":
            if self._foreign_t and now - self._foreign_t[-1] < self.conflict_clear_s:
                self.robot.damp(self.damping_kd)  # the writer's valid commands wait until the conflict is over
                self.last_valid = now
                return False
            self._intruder_logged = False
        self.robot.write(MotorCommand(np.asarray(msg.q_des, float), np.asarray(msg.qd_des, float),
                                      np.asarray(msg.kp, float), np.asarray(msg.kd, float),
                                      np.asarray(msg.tau_ff, float)))
        if self.state in ("timeout", "rejected", "conflict"):
            log.info("valid joint commands resumed after %s", self.state)
        self.state = "active"
        self.last_valid = now
        self.accepted += 1
        return True

    def check_timeout(self, now: float) -> None:
        if self.state in ("active", "conflict") and now - self.last_valid > self.timeout:
            self.robot.damp(self.damping_kd)
            self.timeouts += 1
            self.state = "timeout"
            log.warning("no joint command for %.3f s (> %.3f s); damping until commands resume",
                        now - self.last_valid, self.timeout)


def build_robot(args: argparse.Namespace) -> RobotInterface:
    """The robot named by --robot; sim imports MuJoCo, go2 the Unitree SDK, each only when chosen."""
    if args.robot == "sim":
        from hardware.mujoco_robot import ImuNoise, MujocoGo2

        gyro, accel, ori = args.imu_noise
        return MujocoGo2(terrain=args.terrain, seed=args.seed, imu_noise=ImuNoise(gyro, accel, ori), init=args.init,
                         damping_kd=args.damping_kd)
    from hardware.go2_bridge import FootForceCalibration, Go2Bridge

    calib = FootForceCalibration(offset=tuple(args.foot_force_offset), scale=args.foot_force_scale,
                                 threshold=args.foot_contact_threshold)
    return Go2Bridge(network_interface=args.network_interface, calib=calib, damping_kd=args.damping_kd)


class _Stop:
    def __init__(self) -> None:
        self.flag = False
        self.signum = 0

    def __call__(self, signum: int, _frame: object) -> None:
        if not self.flag:  # the first signal names the stop; a second one during shutdown changes nothing
            self.flag, self.signum = True, signum


def _set_timer_slack(ns: int = 1000) -> None:
    """Shrink the kernel's timer slack (default 50 µs) so select() wakes close to the deadline (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(29, ns, 0, 0, 0)  # PR_SET_TIMERSLACK


def run_realtime(robot: RobotInterface, lc: Any, pub: SensorPublisher, gate: CommandGate, inbox: collections.deque,
                 stop: _Stop, duration: float, spin_s: float) -> dict[str, float]:
    """One sensor period per tick on absolute deadlines: commands in, `decim` physics steps in one call (in C
    for the MuJoCo robot, no Python iteration per millisecond), one sensor sample out; returns timing stats
    (`tick_hz` counts physics ticks, `loop_hz` sensor periods)."""
    fd = lc.fileno()
    decim = max(1, round(1.0 / (ch.SENSOR_HZ * robot.dt)))
    period = decim * robot.dt
    t0 = time.perf_counter()
    t_end = t0 + duration if duration > 0 else float("inf")
    t_next = t0
    ticks = overruns = resyncs = 0
    late_max = 0.0
    fifo = running_realtime()  # --rt: yield to LCM's receive thread
    spin: Callable[[], None] = os.sched_yield if fifo else (lambda: None)  # (CFS: a yield would cede the tick)
    lates: list[float] = []
    while not stop.flag:
        now = time.perf_counter()
        if now >= t_end:
            break
        while inbox:
            gate.on_message(inbox.popleft(), now)
        gate.check_timeout(now)
        robot.step(decim)
        ticks += 1
        pub.publish(robot.read())
        t_next += period
        while True:  # sleep in select (handling commands as they arrive), then spin to the deadline
            rem = t_next - time.perf_counter()
            if rem <= spin_s:
                break
            if select.select([fd], [], [], rem - spin_s)[0]:
                lc.handle()
        while time.perf_counter() < t_next:
            spin()
        # A tick that overran never sleeps in select, and under --rt LCM's receive thread shares this thread's
        # SCHED_FIFO priority and CPU: yield so it can move the socket's datagrams into LCM's queue (else the
        # kernel drops them: a loaded CI box accepted 230 of ~4000 commands), then read what is queued.
        if fifo:
            os.sched_yield()
        for _ in range(256):
            if not select.select([fd], [], [], 0)[0]:
                break
            lc.handle()
        late = time.perf_counter() - t_next
        late_max = max(late_max, late)
        if len(lates) < 200_000:
            lates.append(late)
        if late > period:
            overruns += 1
            if late > 20 * period:  # stalled (e.g. suspended): restart the schedule instead of bursting
                t_next = time.perf_counter()
                resyncs += 1
    elapsed = time.perf_counter() - t0
    arr = np.asarray(lates) * 1e6
    return {"ticks": ticks * decim, "elapsed_s": round(elapsed, 3),
            "tick_hz": round(ticks * decim / max(elapsed, 1e-9), 1), "loop_hz": round(ticks / max(elapsed, 1e-9), 1),
            "overruns": overruns, "resyncs": resyncs, "late_us_p50": round(float(np.percentile(arr, 50)), 1)
            if len(arr) else 0.0, "late_us_p99": round(float(np.percentile(arr, 99)), 1) if len(arr) else 0.0,
            "late_us_max": round(late_max * 1e6, 1)}


def run_lockstep(robot: RobotInterface, lc: Any, pub: SensorPublisher, gate: CommandGate, inbox: collections.deque,
                 stop: _Stop, duration: float, resend_s: float) -> dict[str, float]:
    """One sensor period of physics per received command; deterministic for a given command sequence."""
    fd = lc.fileno()
    decim = max(1, round(1.0 / (ch.SENSOR_HZ * robot.dt)))
    wake_r, wake_w = os.pipe()  # a signal wakes the select below (which PEP 475 would otherwise resume)
    os.set_blocking(wake_w, False)
    old_wakeup = signal.set_wakeup_fd(wake_w)
    try:
        return _lockstep_loop(robot, lc, fd, wake_r, decim, pub, gate, inbox, stop, duration, resend_s)
    finally:
        signal.set_wakeup_fd(old_wakeup)
        os.close(wake_r)
        os.close(wake_w)


def _lockstep_loop(robot: RobotInterface, lc: Any, fd: int, wake_fd: int, decim: int, pub: SensorPublisher,
                   gate: CommandGate, inbox: collections.deque, stop: _Stop, duration: float,
                   resend_s: float) -> dict[str, float]:
    t0 = time.monotonic()
    t_end = t0 + duration if duration > 0 else float("inf")
    last_activity = t0
    steps = resends = 0
    while not stop.flag:
        now = time.monotonic()
        if now >= t_end:
            break
        if not inbox:
            wait = max(0.0, min(t_end, last_activity + resend_s) - now)
            if fd in select.select([fd, wake_fd], [], [], wait)[0]:
                lc.handle()
        while inbox:
            sim_t = steps * decim * robot.dt  # the gate's clock in lockstep: sim time (no wall-clock timeout)
            gate.on_message(inbox.popleft(), sim_t)
            robot.step(decim)
            steps += 1
            pub.publish(robot.read())
            last_activity = time.monotonic()
        if not stop.flag and time.monotonic() - last_activity >= resend_s:
            pub.republish()
            resends += 1
            last_activity = time.monotonic()
    return {"ticks": steps * decim, "sensor_periods": steps, "resends": resends,
            "elapsed_s": round(time.monotonic() - t0, 3)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hardware.server", description=__doc__.split("\n\n")[0])
    p.add_argument("--robot", choices=("sim", "go2"), default="sim")
    p.add_argument("--lockstep", action="store_true", help="sim only: advance one sensor period per command")
    p.add_argument("--duration", type=float, default=0.0, help="wall-clock seconds to run (0: until signalled)")
    p.add_argument("--url", default=None, help="LCM provider URL (default $SOM_LCM_URL or channels.DEFAULT_URL)")
    p.add_argument("--seed", type=int, default=0, help="sensor-noise seed (sim)")
    p.add_argument("--imu-noise", type=float, nargs=3, default=(0.01, 0.05, 0.002), metavar=("GYRO", "ACCEL", "ORI"),
                   help="sim IMU noise std: gyro rad/s, accel m/s², orientation rad")
    p.add_argument("--log-truth", action=argparse.BooleanOptionalAction, default=True,
                   help="publish SIM_TRUTH (sim ground truth) with every sensor sample")
    p.add_argument("--cmd-timeout", type=float, default=0.05, help="s a valid command is held before damping")
    p.add_argument("--damping-kd", type=float, default=DAMPING_KD)
    p.add_argument("--terrain", choices=("flat", "rough"), default="flat")
    p.add_argument("--init", choices=("home", "lying"), default="home", help="sim start pose")
    p.add_argument("--spin-us", type=float, default=100.0, help="busy-wait before each deadline (real time)")
    p.add_argument("--lockstep-resend", type=float, default=0.2, help="s of silence before re-sending a sample")
    p.add_argument("--network-interface", default=None, help="go2: NIC wired to the robot (e.g. enp3s0)")
    p.add_argument("--rt", action="store_true", help="SCHED_FIFO + CPU affinity, if permitted")
    p.add_argument("--rt-priority", type=int, default=70, help="below the daemon's 80: the controller wins ties")
    p.add_argument("--rt-cpus", type=int, nargs="*", default=[0], help="CPUs for the robot loop")
    p.add_argument("--foot-force-offset", type=float, nargs=4, default=(0.0, 0.0, 0.0, 0.0),
                   metavar=("FL", "FR", "RL", "RR"), help="go2: raw foot-force reading with the feet unloaded")
    p.add_argument("--foot-force-scale", type=float, default=1.0)
    p.add_argument("--foot-contact-threshold", type=float, default=50.0)
    args = p.parse_args(argv)
    if args.lockstep and args.robot != "sim":
        p.error("--lockstep needs --robot sim (hardware runs in real time)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(levelname)s %(message)s")
    stop = _Stop()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    _set_timer_slack()
    if args.rt:
        for line in apply_realtime(args.rt_priority, args.rt_cpus):
            log.info("rt: %s", line)

    inbox: collections.deque[bytes] = collections.deque()
    clock = CommandClock()

    def on_command(_channel: str, data: bytes) -> None:
        clock.on_arrival(data)
        inbox.append(data)

    try:  # LCM first: a port it cannot bind ends here, before the robot is started
        lc = ch.open_lcm(args.url)
        sub = ch.subscribe(lc, ch.JOINT_COMMAND, on_command)
        robot = build_robot(args)
        robot.start()  # damped until the first valid command
    except (ch.LcmUnavailableError, RuntimeError) as e:  # missing SDK, no robot, no multicast route, port taken
        log.error("cannot start: %s", e)
        return 2
    pub = SensorPublisher(lc, truth=args.log_truth)
    gate = CommandGate(robot, args.cmd_timeout, args.damping_kd, CommandLimits.go2())
    pub.publish(robot.read())  # the first sample: starts a lockstep chain, and proves publishing works
    print("READY hardware.server", flush=True)
    log.info("robot=%s lockstep=%s dt=%.4f s cmd_timeout=%.3f s", args.robot, args.lockstep, robot.dt,
             args.cmd_timeout)
    try:
        if args.lockstep:
            stats = run_lockstep(robot, lc, pub, gate, inbox, stop, args.duration, args.lockstep_resend)
        else:
            stats = run_realtime(robot, lc, pub, gate, inbox, stop, args.duration, args.spin_us * 1e-6)
    finally:
        robot.damp(args.damping_kd)
        robot.stop()
        lc.unsubscribe(sub)
    stats.update(samples=pub.samples, accepted=gate.accepted, rejected=gate.rejected, timeouts=gate.timeouts,
                 foreign=gate.foreign, conflicts=gate.conflicts,
                 signal=stop.signum, **clock.stats())
    log.info("stopped (%s): %s", signal.Signals(stop.signum).name if stop.signum else "duration", stats)
    print("DONE hardware.server " + json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
