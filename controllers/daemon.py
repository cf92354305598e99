"""Onboard controller daemon: 500 Hz joint commands from a contract-checked ONNX policy, over LCM.

    python -m controllers.daemon --policy policy.onnx [--robot-config configs/robots/go2.yaml] [--auto]

One thread, one loop at COMMAND_HZ with absolute deadlines. Between ticks it serves LCM (select on the
socket), so every message is validated (controllers.inputs) and time-stamped as it arrives. Each tick:
watchdogs → mode step → joint target for the mode → publish JOINT_COMMAND; ONNX inference every
control_dt / command period ticks in POLICY. Every fault (silent input, NaN/Inf, wrong size, out-of-order or
duplicate seq/utime, e-stop, exception) puts the daemon in DAMPING at the next tick (≤ 2 ms after the
cause is seen) and records why. numpy + onnxruntime + lcm + pyyaml only: no torch, no mujoco.

Exit codes: 0 normal (duration over or SIGINT/SIGTERM, after publishing damping), 1 LCM unavailable,
2 refused to start (bad robot config, policy file, or policy/robot contract mismatch).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from controllers.cmd_arg import parse_cmd
from controllers.command import CommandShaper, JointTarget, PolicyTargets
from controllers.inputs import (
    ChannelMonitor,
    Verdict,
    roll_pitch_from_quat,
    validate_imu,
    validate_joint_state,
    validate_joystick,
    validate_state_estimate,
)
from controllers.observation import ObservationBuilder, ObservationError, ObsInputs, clock_phase
from controllers.robot_config import DEFAULT_ROBOT_CONFIG, RobotConfig, load_robot_config
from controllers.scheduler import RateLoop
from controllers.state_machine import ModeMachine, Transition
from controllers.stats import Histogram, Window
from hardware import channels as ch
from hardware.channels import Mode
from hardware.msgs import daemon_status_t, imu_t, joint_command_t, joint_state_t, joystick_t, state_estimate_t
from hardware.realtime import apply_realtime
from som_robot.config import ConfigError
from som_robot.contract import ContractError
from som_robot.policy_runtime import OnnxPolicy

__all__ = ["ControllerDaemon", "main", "READY_LINE"]

READY_LINE = "READY controllers.daemon"
TAG = "[controllers.daemon]"


def _log(text: str) -> None:
    print(f"{TAG} {text}", file=sys.stderr, flush=True)


class RateLimitedLog:
    """At most one line per key per `interval_s`; the next line says how many were suppressed."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, key: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        n = self._suppressed.pop(key, 0)
        self._last[key] = now
        _log(text + (f" ({n} similar suppressed)" if n else ""))


class ControllerDaemon:
    """The loop, its inputs, the mode machine and the publishers; `run()` returns the exit code."""

    def __init__(self, cfg: RobotConfig, policy: OnnxPolicy, lc: Any, *, auto: bool = False,
                 cmd: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        self.cfg, self.policy, self.lc, self.auto = cfg, policy, lc, auto
        c, d, w = cfg.contract, cfg.deploy, cfg.watchdog
        self.n = c.act_dim
        self.builder = ObservationBuilder(c)  # raises ObservationError for a term the robot cannot provide
        self.shaper = CommandShaper(cfg)
        self.policy_every = max(1, round(c.control_dt * ch.COMMAND_HZ))
        self.targets = PolicyTargets(self.policy_every, d.interpolation)
        self.cmd_lo = np.array([d.command_vx[0], d.command_vy[0], d.command_yaw_rate[0]])
        self.cmd_hi = np.array([d.command_vx[1], d.command_vy[1], d.command_yaw_rate[1]])
        self.default_cmd = np.clip(np.asarray(cmd, np.float64), self.cmd_lo, self.cmd_hi)
        b = cfg.input_bounds()
        self.monitors = {
            ch.JOINT_STATE: ChannelMonitor(ch.JOINT_STATE, joint_state_t.decode, validate_joint_state(self.n, b),
                                           w.joint_state),
            ch.IMU: ChannelMonitor(ch.IMU, imu_t.decode, lambda m: validate_imu(m, b), w.imu),
            ch.STATE_ESTIMATE: ChannelMonitor(ch.STATE_ESTIMATE, state_estimate_t.decode,
                                              validate_state_estimate(d.num_feet, b), w.state_estimate),
            ch.JOYSTICK: ChannelMonitor(ch.JOYSTICK, joystick_t.decode, validate_joystick, w.joystick),
        }
        self.sensors = [self.monitors[k] for k in (ch.JOINT_STATE, ch.IMU, ch.STATE_ESTIMATE)]
        self.machine = ModeMachine(on_change=self._on_mode_change)
        self.loop = RateLoop(1.0 / ch.COMMAND_HZ, d.spin_s, phase_offset_s=d.phase_offset_s,
                             sample_grace_s=d.sample_grace_s)
        self.ratelog = RateLimitedLog()
        # latest validated state
        self.q: np.ndarray | None = None
        self.qd = np.zeros(self.n)
        self.last_action = np.zeros(self.n)
        self._js_mode_ref: int | None = None
        # per-mode state
        self._mode_t0 = time.monotonic()
        self._stand_start = self.shaper.default.copy()
        self._stand_done = False
        self._policy_tick = 0
        self._policy_steps = 0
        # bookkeeping
        self.faults = 0
        self.last_error = ""
        self.infer_us = Histogram()
        self.recent_infer_us = Window(max(1, ch.POLICY_HZ))
        self.latency_us = Histogram()
        self._cmd_seq = self._status_seq = 0
        self._status_due = True
        self._stop_reason = ""
        if auto:
            self.machine.request(Mode.POLICY)
        for name in self.monitors:
            ch.subscribe(lc, name, self._on_message)

    # ---- inputs -----------------------------------------------------------------------------------------
    def _note(self, reason: str) -> None:
        """Set the status's last_error, except that the cause of the current DAMPING is kept: the follow-on
        rejections a fault triggers (e.g. the real sample after an injected one is out of order) are counted
        and logged but must not hide why the robot stopped."""
        if self.machine.mode != Mode.DAMPING or not self.last_error:
            self.last_error = reason

    def _fault(self, reason: str, key: str) -> None:
        """Record a safety event and go to DAMPING (latched until the operator re-arms)."""
        self.faults += 1
        self._note(reason)
        self.machine.fault(reason)
        self.ratelog(key, f"FAULT {reason} → {self.machine.mode.name}")

    def _on_message(self, channel: str, data: bytes) -> None:
        try:
            self._handle(channel, data)
        except Exception as e:  # noqa: BLE001 - a handler bug must not kill the loop
            self._fault(f"exception handling {channel}: {type(e).__name__}: {e}", f"exc-{channel}")

    def _handle(self, channel: str, data: bytes) -> None:
        mon = self.monitors[channel]
        verdict, reason = mon.offer(data, time.monotonic())
        if verdict is Verdict.GARBAGE:
            self.faults += 1
            self._note(f"rejected {channel}: {reason}")
            self.ratelog(f"garbage-{channel}", f"rejected {channel}: {reason} (dropped)")
            return
        if verdict is Verdict.INVALID:
            self._fault(f"rejected {channel}: {reason}", f"invalid-{channel}")
            return
        m = mon.latest
        if channel == ch.JOINT_STATE:
            self.loop.sync(time.perf_counter())
            self.q = np.array(m.q, np.float64)
            self.qd = np.array(m.qd, np.float64)
        elif channel == ch.IMU:
            self._fall_check(m)
        elif channel == ch.JOYSTICK:
            if m.estop and not self.machine.estopped:
                self.faults += 1
                self.last_error = "e-stop from joystick (latched until restart)"  # always shown: it is latched
                self.machine.estop(self.last_error)
                _log(f"FAULT {self.last_error}")
            if self._js_mode_ref is not None and m.mode != self._js_mode_ref:  # edge-triggered requests
                self.machine.request(Mode(m.mode))
            self._js_mode_ref = m.mode

    def _fall_check(self, imu: Any) -> None:
        """Tipped over (roll/pitch beyond the training env's termination limits) while driving the legs: damp.
        PASSIVE and DAMPING are exempt, so a robot lying flat can still be stood up."""
        if self.machine.mode not in (Mode.STAND_UP, Mode.POLICY):
            return
        p = self.cfg.plausibility
        roll, pitch = roll_pitch_from_quat(imu.quat)
        if abs(roll) > p.max_roll or abs(pitch) > p.max_pitch:
            which = f"roll {roll:+.2f} rad" if abs(roll) > p.max_roll else f"pitch {pitch:+.2f} rad"
            self._fault(f"fall detected ({which}, limit {max(p.max_roll, p.max_pitch):g} rad)", "fall")

    def _watchdogs(self, now: float) -> None:
        mode = self.machine.mode
        if mode == Mode.DAMPING:
            return
        for mon in self.sensors:
            if mon.stale(now):
                self._fault(f"{mon.channel} silent for {mon.age(now) * 1e3:.0f} ms (limit "
                            f"{mon.timeout_s * 1e3:.0f} ms)", f"stale-{mon.channel}")
                return
        joy = self.monitors[ch.JOYSTICK]
        if mode == Mode.POLICY and joy.stale(now):
            self._fault(f"{ch.JOYSTICK} silent for {joy.age(now) * 1e3:.0f} ms in POLICY", "stale-joystick")
            return
        js = self.monitors[ch.JOINT_STATE].latest
        if mode in (Mode.STAND_UP, Mode.POLICY) and js is not None and self.cfg.watchdog.max_command_age > 0:
            age = time.time_ns() / 1e3 - js.utime
            if age > self.cfg.watchdog.max_command_age * 1e6:
                self._fault(f"{ch.JOINT_STATE} sample is {age / 1e3:.0f} ms old by utime (limit "
                            f"{self.cfg.watchdog.max_command_age * 1e3:.0f} ms)", "age-joint-state")

    def _healthy(self, now: float) -> bool:
        return all(m.seen and not m.stale(now) for m in self.sensors)

    # ---- modes ------------------------------------------------------------------------------------------
    def _on_mode_change(self, tr: Transition) -> None:
        self._mode_t0 = tr.t
        self._status_due = True
        if tr.mode == Mode.STAND_UP:
            self._stand_start = self.q.copy() if self.q is not None else self.shaper.default.copy()
            self._stand_done = False
        elif tr.mode == Mode.POLICY:
            self._policy_tick = 0
            self._policy_steps = 0  # the trot clock restarts at POLICY entry, as at an episode start in training
            self.last_action[:] = 0.0
            self.targets.reset(self.q if self.q is not None else self.shaper.default)
        _log(f"mode {tr.mode.name}: {tr.reason}")

    def _command(self) -> np.ndarray:
        joy = self.monitors[ch.JOYSTICK].latest
        raw = self.default_cmd if joy is None else np.array([joy.vx, joy.vy, joy.yaw_rate], np.float64)
        return np.clip(raw, self.cmd_lo, self.cmd_hi)

    def _infer(self) -> None:
        est = self.monitors[ch.STATE_ESTIMATE].latest
        command, phase = self._command(), clock_phase(self._policy_steps, self.cfg.contract)
        inputs = ObsInputs(gravity_body=np.asarray(est.gravity_body, np.float64),
                           ang_vel_body=np.asarray(est.ang_vel_body, np.float64),
                           lin_vel_body=np.asarray(est.lin_vel_body, np.float64), command=command,
                           q=self.q, qd=self.qd, last_action=self.last_action, gait_phase=phase)
        self._policy_steps += 1
        obs = self.builder.build(inputs)
        t0 = time.perf_counter()
        action = np.asarray(self.policy(obs), np.float64)  # PolicyInputError on NaN/shape: caught by the tick
        dt_us = (time.perf_counter() - t0) * 1e6
        self.infer_us.add(dt_us)
        self.recent_infer_us.add(dt_us)
        if action.shape != (self.n,) or not np.isfinite(action).all():
            raise ValueError(f"policy produced a non-finite or mis-shaped action {action.shape}")
        c = self.cfg.contract.action_clip
        self.last_action = np.clip(action, -c, c)
        self.targets.set(self.shaper.action_to_q(self.last_action, phase, command))

    def _target(self, now: float) -> JointTarget:
        mode = self.machine.mode
        q = self.q if self.q is not None else self.shaper.default
        if mode == Mode.STAND_UP:
            target, self._stand_done = self.shaper.stand_up(self._stand_start, now - self._mode_t0)
            return target
        if mode == Mode.POLICY:
            if self._policy_tick % self.policy_every == 0:
                self._infer()
            self._policy_tick += 1
            return self.shaper.policy(self.targets.advance())
        if mode == Mode.DAMPING:
            return self.shaper.damping(q)
        return self.shaper.passive(q)

    # ---- outputs ----------------------------------------------------------------------------------------
    def _publish(self, t: JointTarget) -> None:
        js = self.monitors[ch.JOINT_STATE].latest
        m = joint_command_t()
        m.utime = time.time_ns() // 1000
        m.seq = self._cmd_seq
        self._cmd_seq += 1
        m.source_utime = js.utime if js is not None else 0
        m.mode = int(t.mode)
        m.n = self.n
        m.q_des, m.qd_des = t.q_des.tolist(), [0.0] * self.n
        m.kp, m.kd, m.tau_ff = t.kp.tolist(), t.kd.tolist(), [0.0] * self.n
        self.lc.publish(ch.JOINT_COMMAND, m.encode())
        if m.source_utime:
            self.latency_us.add(time.time_ns() / 1e3 - m.source_utime)

    def publish_status(self) -> None:
        s = daemon_status_t()
        s.utime, s.seq = time.time_ns() // 1000, self._status_seq
        self._status_seq += 1
        s.mode, s.cycles, s.overruns = int(self.machine.mode), self.loop.cycles, self.loop.overruns
        s.clamped, s.faults = self.shaper.clamped, self.faults
        s.infer_us_p99 = self.recent_infer_us.percentile(99)
        s.period_err_us_p99 = self.loop.recent_period_err_us.percentile(99)
        s.last_error = self.last_error[:250]
        self.lc.publish(ch.DAEMON_STATUS, s.encode())
        self._status_due = False

    def _tick(self) -> None:
        now = time.monotonic()
        try:
            self._watchdogs(now)
            self.machine.step(self._healthy(now), self._stand_done)
            target = self._target(now)
        except Exception as e:  # noqa: BLE001 - never crash: damp and say why
            self._fault(f"exception in tick ({self.machine.mode.name}): {type(e).__name__}: {e}", "exc-tick")
            target = self.shaper.damping(self.q if self.q is not None else self.shaper.default)
        try:
            self._publish(target)
            if self._status_due or self.loop.cycles % (ch.COMMAND_HZ // ch.STATUS_HZ) == 0:
                self.publish_status()
        except Exception as e:  # noqa: BLE001 - e.g. the network went away: keep looping, keep trying
            self._fault(f"cannot publish: {type(e).__name__}: {e}", "exc-publish")

    def _handle_io(self) -> None:
        try:
            self.lc.handle_timeout(0)
        except Exception as e:  # noqa: BLE001
            self.ratelog("lcm", f"LCM handle error: {type(e).__name__}: {e}")

    def request_stop(self, reason: str) -> None:
        self._stop_reason = reason

    def run(self, duration_s: float | None = None) -> int:
        """Loop until `duration_s` elapses or request_stop(); then damp for shutdown_damping_s; returns 0."""
        fd = self.lc.fileno()
        t_start = self._t_start = time.monotonic()
        self.loop.deadline = time.perf_counter()
        last_line, last_cycles, last_overruns = t_start, 0, 0
        gc.collect()
        gc.freeze()  # start-up objects leave the collector's working set: shorter pauses in the loop
        print(READY_LINE, flush=True)
        while not self._stop_reason:
            self.loop.start_tick()
            self._tick()
            now = time.monotonic()
            if duration_s is not None and now - t_start >= duration_s:
                self.request_stop(f"duration {duration_s:g} s over")
            if now - last_line >= 1.0:
                rate = (self.loop.cycles - last_cycles) / (now - last_line)
                _log(f"mode={self.machine.mode.name} rate={rate:.1f}Hz overruns={self.loop.overruns} "
                     f"(+{self.loop.overruns - last_overruns}) faults={self.faults} clamped={self.shaper.clamped} "
                     f"infer_p99={self.recent_infer_us.percentile(99):.0f}us "
                     f"period_err_p99={self.loop.recent_period_err_us.percentile(99):.0f}us")
                last_line, last_cycles, last_overruns = now, self.loop.cycles, self.loop.overruns
            self.loop.wait(fd, self._handle_io)
        self._shutdown(fd)
        return 0

    def _shutdown(self, fd: int) -> None:
        """Leave the robot damped: DAMPING commands for shutdown_damping_s, then a final status."""
        if self.machine.mode != Mode.DAMPING:
            self.machine.fault(f"shutdown: {self._stop_reason}")
        _log(f"stopping ({self._stop_reason}); damping for {self.cfg.deploy.shutdown_damping_s:g} s")
        t_end = time.monotonic() + self.cfg.deploy.shutdown_damping_s
        while True:
            self.loop.start_tick()
            self._publish(self.shaper.damping(self.q if self.q is not None else self.shaper.default))
            if time.monotonic() >= t_end:
                break
            self.loop.wait(fd, self._handle_io)
        self.publish_status()

    def stats(self) -> dict[str, Any]:
        """Run summary for --stats-json (times in µs)."""
        elapsed = time.monotonic() - self._t_start
        t0 = self.machine.history[0].t
        return {
            "duration_s": elapsed, "cycles": self.loop.cycles, "rate_hz": self.loop.cycles / max(elapsed, 1e-9),
            "period_err_us": self.loop.period_err_us.summary(), "infer_us": self.infer_us.summary(),
            "overruns": self.loop.overruns, "overruns_per_min": self.loop.overruns / max(elapsed, 1e-9) * 60,
            "grace_waits": self.loop.grace_waits, "grace_misses": self.loop.grace_misses,
            "sensor_to_command_latency_us": self.latency_us.summary(), "clamped": self.shaper.clamped,
            "faults": self.faults, "last_error": self.last_error, "estopped": self.machine.estopped,
            "inputs": {k: {"accepted": m.accepted, "garbage": m.garbage, "invalid": m.invalid}
                       for k, m in self.monitors.items()},
            "mode_history": [{"t_s": tr.t - t0, "utime": tr.utime, "mode": tr.mode.name, "reason": tr.reason}
                             for tr in self.machine.history],
        }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m controllers.daemon", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True, type=Path, help="exported ONNX policy (contract embedded)")
    p.add_argument("--robot-config", type=Path, default=DEFAULT_ROBOT_CONFIG, help="robot YAML (default: %(default)s)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a robot-config key, e.g. deploy.stand_up_s=0.5 (repeatable)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: run)")
    p.add_argument("--cmd", type=parse_cmd, default=(0.0, 0.0, 0.0), metavar="VX,VY,YAW",
                   help="velocity command used while no joystick message has arrived")
    p.add_argument("--auto", action="store_true",
                   help="PASSIVE → STAND_UP → POLICY on its own once sensors are healthy (sim runs)")
    p.add_argument("--url", default=None, help=f"LCM URL (default: $SOM_LCM_URL or {ch.DEFAULT_URL})")
    p.add_argument("--rt", action="store_true", help="SCHED_FIFO + CPU affinity from the robot config, if permitted")
    p.add_argument("--sim-hardware", action="store_true",
                   help="the robot is the MuJoCo server: use the config's watchdog_sim limits (physical: watchdog)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    p.add_argument("--stats-json", type=Path, default=None, help="write run statistics here at exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_robot_config(args.robot_config, args.overrides)
        if args.sim_hardware:
            cfg = cfg.for_sim_hardware()
        policy = OnnxPolicy(args.policy, expected=cfg.contract, threads=args.threads)
        ObservationBuilder(cfg.contract)
    except (ConfigError, ContractError, ObservationError, OSError) as e:
        print(f"controllers.daemon: refusing to start: {e}", file=sys.stderr, flush=True)
        return 2
    except Exception as e:  # noqa: BLE001 - e.g. ONNX Runtime cannot parse the file
        print(f"controllers.daemon: refusing to start: cannot load policy {args.policy}: {type(e).__name__}: {e}",
              file=sys.stderr, flush=True)
        return 2
    try:  # no provider, or a port it cannot bind (the subscriptions): nothing commanded, the robot stays damped
        lc = ch.open_lcm(args.url)
        daemon = ControllerDaemon(cfg, policy, lc, auto=args.auto, cmd=args.cmd)
    except ch.LcmUnavailableError as e:
        print(f"controllers.daemon: {e}", file=sys.stderr, flush=True)
        return 1
    if args.rt:
        for line in apply_realtime(cfg.rt.priority, cfg.rt.cpus):
            _log(f"rt: {line}")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: daemon.request_stop(signal.Signals(s).name))
    _log(f"policy {args.policy} ({cfg.contract.robot}, obs {cfg.contract.obs_dim}, act {cfg.contract.act_dim}), "
         f"{ch.COMMAND_HZ} Hz commands, inference every {daemon.policy_every} ticks, "
         f"interpolation {cfg.deploy.interpolation}, auto={args.auto}, sensor watchdog "
         f"{cfg.watchdog.joint_state * 1e3:.0f} ms ({'simulated' if args.sim_hardware else 'physical'} robot)")
    code = daemon.run(args.duration)
    if args.stats_json is not None:
        args.stats_json.parent.mkdir(parents=True, exist_ok=True)
        args.stats_json.write_text(json.dumps(daemon.stats(), indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
