"""hardware.server as a real process over real LCM: sensor rate and sequencing, PD standing, damping on command
silence and on invalid commands (with recovery), and lockstep determinism.

Each test uses its own multicast port so concurrent test runs on the host cannot cross-talk.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hardware import channels as ch
from hardware.interface import DAMPING_KD
from hardware.msgs import foot_contact_t, imu_t, joint_command_t, joint_state_t, state_estimate_t
from sim.go2 import constants as C

REPO = Path(__file__).resolve().parents[2]
DECODE = {ch.JOINT_STATE: joint_state_t, ch.IMU: imu_t, ch.FOOT_CONTACT: foot_contact_t,
          ch.SIM_TRUTH: state_estimate_t}


def _url() -> str:
    return ch.private_udpm_url()


@dataclass
class Bus:
    """Test-side LCM endpoint: records every sensor message (receive time, decoded) per channel."""

    url: str
    got: dict[str, list[tuple[float, Any]]] = field(default_factory=lambda: {c: [] for c in DECODE})
    cmd_seq: int = 0
    sent_at: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lc = ch.open_lcm(self.url)
        for c, t in DECODE.items():
            self.lc.subscribe(c, lambda _c, data, c=c, t=t: self.got[_c].append((time.perf_counter(), t.decode(data))))

    def pump(self, timeout_s: float = 0.0) -> None:
        """Handle everything pending, waiting up to timeout_s for the first message."""
        fd = self.lc.fileno()
        wait = timeout_s
        while select.select([fd], [], [], wait)[0]:
            self.lc.handle()
            wait = 0.0

    def send(self, q_des: np.ndarray, kp: float = C.KP, kd: float = C.KD, n: int | None = None) -> None:
        m = joint_command_t()
        m.utime, m.seq, m.source_utime, m.mode = time.time_ns() // 1000, self.cmd_seq, 0, int(ch.Mode.POLICY)
        self.cmd_seq += 1
        q = np.asarray(q_des, dtype=float)
        m.n = len(q) if n is None else n
        m.q_des, m.qd_des = q.tolist(), [0.0] * len(q)
        m.kp, m.kd, m.tau_ff = [kp] * len(q), [kd] * len(q), [0.0] * len(q)
        self.lc.publish(ch.JOINT_COMMAND, m.encode())
        self.sent_at.append(time.perf_counter())

    def send_gaps_over(self, seconds: float) -> int:
        """How many silences longer than `seconds` this (possibly descheduled) test process left between commands."""
        return int((np.diff(self.sent_at) > seconds).sum())

    def run(self, seconds: float, command: Callable[[], None] | None = None) -> None:
        """Pump for `seconds`, calling `command` at COMMAND_HZ on absolute deadlines if given."""
        period = 1.0 / ch.COMMAND_HZ
        t_next = time.perf_counter()
        t_end = t_next + seconds
        while (now := time.perf_counter()) < t_end:
            if command is not None and now >= t_next:
                command()
                t_next += period
                if now - t_next > 0.05:  # the test process was descheduled: don't burst
                    t_next = now
            self.pump(max(0.0, min(t_next if command else t_end, t_end) - time.perf_counter()))

    def run_until_samples(self, channel: str, t0: float, n: int, command: Callable[[], None] | None = None,
                          min_s: float = 0.0, max_s: float = 5.0, min_commands: int = 0) -> list[Any]:
        """Pump (sending `command` as in run) for at least `min_s` and until `channel` has n samples after t0
        and at least `min_commands` commands have been sent in all.

        Why: a count over a fixed window trips when the loaded host delivers fewer samples (CI once got 30 of
        a required 31 in 150 ms); waiting for the samples keeps what is asserted and drops the timing from it.
        """
        t_start = time.perf_counter()
        self.run(min_s, command)
        while (len(self.since(channel, t0)) < n or self.cmd_seq < min_commands) and \
                time.perf_counter() - t_start < max_s:
            self.run(0.05, command)
        return self.since(channel, t0)

    def since(self, channel: str, t0: float) -> list[Any]:
        return [m for t, m in self.got[channel] if t >= t0]


class Server:
    """`python -m hardware.server` subprocess; waits for READY, stops with SIGINT and parses DONE."""

    def __init__(self, url: str, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.p = subprocess.Popen([sys.executable, "-m", "hardware.server", "--url", url, *args], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()  # blocks until READY (or the process dies)
        if line.strip() != "READY hardware.server":
            self.p.kill()
            raise AssertionError(f"no READY: {line!r} {self.p.stderr.read()}")

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> tuple[dict[str, Any], str]:
        if self.alive():
            self.p.send_signal(signal.SIGINT)
        out, err = self.p.communicate(timeout=20)
        assert self.p.returncode == 0, err
        done = [ln for ln in out.splitlines() if ln.startswith("DONE hardware.server ")]
        assert done, out
        return json.loads(done[-1].removeprefix("DONE hardware.server ")), err

    def kill(self) -> None:
        if self.alive():
            self.p.kill()
            self.p.communicate()


@pytest.fixture
def bus_server(request: pytest.FixtureRequest):
    """(bus, start(*args) -> Server); the bus subscribes before the server exists, so no sample is missed."""
    bus = Bus(_url())
    servers: list[Server] = []

    def start(*args: str) -> Server:
        servers.append(Server(bus.url, *args))
        return servers[-1]

    yield bus, start
    for s in servers:
        s.kill()


def _hold() -> np.ndarray:
    return C.DEFAULT_JOINT_POS


def _residual_from_damping(states: list[joint_state_t]) -> float:
    """max |tau_est + kd_damp·qd|: ~0 when the driver applies pure damping (kp = 0)."""
    tau = np.array([s.tau_est for s in states])
    qd = np.array([s.qd for s in states])
    return float(np.abs(tau + DAMPING_KD * qd).max())


def test_sensors_at_500hz_with_increasing_seq(bus_server) -> None:
    bus, start = bus_server
    # 3 s rather than 1.5: one 0.2 s stall of the loaded host moves the mean rate by 7 %, not 13 %
    server = start("--duration", "3.0")  # ends by itself
    deadline = time.monotonic() + 20
    while server.alive() and time.monotonic() < deadline:
        bus.run(0.1)
    bus.pump(0.1)
    stats, _ = server.stop()
    assert stats["signal"] == 0 and stats["elapsed_s"] == pytest.approx(3.0, abs=0.15)
    for c in DECODE:
        msgs = [m for _, m in bus.got[c]]
        assert len(msgs) > 1000, c
        seq = np.array([m.seq for m in msgs])
        utime = np.array([m.utime for m in msgs])
        assert seq[0] == 0 and np.all(np.diff(seq) >= 1) and np.mean(np.diff(seq) == 1) > 0.99, c
        assert np.all(np.diff(utime) > 0), c
        rate = (len(msgs) - 1) / ((utime[-1] - utime[0]) * 1e-6)
        assert 400 < rate < 600, (c, rate)
    js = [m for _, m in bus.got[ch.JOINT_STATE]]
    assert all(m.n == 12 and len(m.q) == 12 for m in js)
    assert all(m.n == 4 for _, m in bus.got[ch.FOOT_CONTACT])
    truth = [m for _, m in bus.got[ch.SIM_TRUTH]]
    assert all(m.n_cov == 0 and m.n_feet == 4 for m in truth)
    # one sample = one utime across channels
    assert {m.utime for m in js[:100]} == {m.utime for _, m in bus.got[ch.IMU][:100]}
    assert 800 < stats["tick_hz"] < 1100 and stats["accepted"] == 0, stats


def test_pd_hold_keeps_standing(bus_server) -> None:
    bus, start = bus_server
    # A long hold timeout: this test is about the PD law, and a starved test process must not make it damp.
    server = start("--duration", "30", "--cmd-timeout", "0.5")
    t0 = time.perf_counter()
    # At least 2 s of commands, and on until 600 ground-truth samples after settling (850 on an idle host)
    # and 600 commands: a starved test process must not make the counts fail.
    bus.run_until_samples(ch.SIM_TRUTH, t0 + 0.3, 600, command=lambda: bus.send(_hold()), min_s=2.0, max_s=10.0,
                          min_commands=600)
    stats, err = server.stop()
    z = np.array([m.position[2] for m in bus.since(ch.SIM_TRUTH, t0 + 0.3)])
    assert len(z) >= 600 and z.min() > 0.2, (len(z), z.min(), stats, err)
    assert abs(z[-1] - 0.245) < 0.03, (z[-1], stats)
    contact = np.array([m.contact for m in bus.since(ch.FOOT_CONTACT, t0 + 1.0)])
    assert contact.all(axis=1).mean() > 0.95, stats
    # No timeout unless this test process itself went silent for about the hold time (CI once starved it
    # ~0.5 s on two busy cores: 749 commands in 2 s); 0.1 s of slack covers LCM delivery and the server's tick.
    starved = bus.send_gaps_over(0.5 - 0.1)
    assert stats["accepted"] > 0.8 * bus.cmd_seq and stats["rejected"] == 0, stats
    assert stats["timeouts"] <= starved, (stats, starved, float(np.diff(bus.sent_at).max()))


def test_silence_damps_after_timeout_then_recovers(bus_server) -> None:
    bus, start = bus_server
    server = start("--duration", "30")
    t0 = time.perf_counter()
    bus.run(0.6, command=lambda: bus.send(_hold()))
    held = bus.since(ch.JOINT_STATE, t0 + 0.3)
    assert _residual_from_damping(held) > 2.0  # PD torques holding the body up are not damping

    t1 = time.perf_counter()
    # silence: the server holds the last command 50 ms, then damps
    damped = bus.run_until_samples(ch.JOINT_STATE, t1 + 0.2, 51, min_s=0.5)
    assert len(damped) > 50 and _residual_from_damping(damped) < 0.3
    z = [m.position[2] for m in bus.since(ch.SIM_TRUTH, t1)]
    assert z[-1] < z[0] - 0.01  # and the robot sags

    t2 = time.perf_counter()
    resumed = bus.run_until_samples(ch.JOINT_STATE, t2 + 0.1, 51, command=lambda: bus.send(_hold()), min_s=0.4)
    q, qd, tau = (np.array([getattr(s, f) for s in resumed]) for f in ("q", "qd", "tau_est"))
    pd = C.KP * (C.DEFAULT_JOINT_POS - q) - C.KD * qd
    # PD law again (1 ms state lag); a few samples may be damped if this loaded test process stalls > 50 ms
    assert np.mean(np.abs(tau - pd).max(axis=1) < 1.5) > 0.8
    stats, err = server.stop()
    assert stats["timeouts"] >= 1 and err.count("no joint command for") == stats["timeouts"]  # once per silence


def test_invalid_commands_are_rejected_and_robot_damps(bus_server) -> None:
    bus, start = bus_server
    server = start("--duration", "30")
    bus.run(0.4, command=lambda: bus.send(_hold()))
    for bad in (lambda: bus.send(np.full(12, np.nan)),  # NaN
                lambda: bus.send(_hold()[:11]),  # wrong size
                lambda: bus.send(_hold(), kp=-5.0),  # negative gain
                lambda: bus.send(_hold(), kp=1e4)):  # absurd gain
        t = time.perf_counter()
        damped = bus.run_until_samples(ch.JOINT_STATE, t + 0.1, 31, command=bad, min_s=0.25)
        assert server.alive()
        assert len(damped) > 30 and _residual_from_damping(damped) < 0.3
        t = time.perf_counter()
        held = bus.run_until_samples(ch.JOINT_STATE, t + 0.1, 21, command=lambda: bus.send(_hold()), min_s=0.2)
        assert _residual_from_damping(held) > 1.0  # recovers
    stats, err = server.stop()
    assert stats["rejected"] > 100
    for reason in ("q_des not finite", "n=11", "kp outside"):
        assert reason in err


def _lockstep_run(url: str, seed: int, steps: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Act as the controller: one command per new joint-state sample, from a fixed sequence (one invalid).

    A sample the server re-sent while waiting (same seq) is recognised by its seq and not answered twice.
    """
    bus = Bus(url)
    server = Server(url, "--lockstep", "--seed", str(seed), "--duration", "60")

    def distinct() -> int:
        return max((m.seq for _, m in bus.got[ch.JOINT_STATE]), default=-1) + 1

    try:
        k = 0
        deadline = time.monotonic() + 30
        while distinct() < steps + 1 and time.monotonic() < deadline:
            bus.pump(0.5)
            while k < min(distinct(), steps):  # answer each new sample exactly once
                if k == steps // 2:
                    bus.send(np.full(12, np.nan))
                else:
                    bus.send(_hold() + 0.2 * np.sin(0.05 * k) * np.tile([0.0, 1.0, -1.0], 4))
                k += 1
        while (any(len({m.seq for _, m in got}) < steps + 1 for got in bus.got.values())
               and time.monotonic() < deadline):
            bus.pump(0.1)  # the other channels of the last sample
        stats, _ = server.stop()
    finally:
        server.kill()

    def first_per_seq(channel: str) -> list[Any]:
        out: dict[int, Any] = {}
        for _, m in bus.got[channel]:
            out.setdefault(m.seq, m)
        assert sorted(out) == list(range(len(out))), "a sample was lost"
        return [out[i] for i in range(len(out))]

    q = np.array([m.q + m.qd + m.tau_est for m in first_per_seq(ch.JOINT_STATE)])
    imu = np.array([m.quat + m.gyro + m.accel for m in first_per_seq(ch.IMU)])
    return q, imu, stats


def test_lockstep_is_deterministic() -> None:
    steps = 400
    q1, imu1, s1 = _lockstep_run(_url(), seed=7, steps=steps)
    q2, imu2, s2 = _lockstep_run(_url(), seed=7, steps=steps)
    assert q1.shape == (steps + 1, 36) and np.array_equal(q1, q2) and np.array_equal(imu1, imu2)
    assert s1["sensor_periods"] == steps and s1["rejected"] == 1 and s1["timeouts"] == 0
    assert np.abs(np.diff(q1[:, :12], axis=0)).max() > 0  # it moved


def test_lockstep_resends_the_waiting_sample_and_sigterm_exits_cleanly(bus_server) -> None:
    bus, start = bus_server
    server = start("--lockstep", "--lockstep-resend", "0.1")
    bus.run(0.55)  # nobody answers: the first sample is re-sent unchanged
    js = [m for _, m in bus.got[ch.JOINT_STATE]]
    assert len(js) >= 3 and {(m.seq, m.utime) for m in js} == {(0, js[0].utime)}
    bus.send(_hold())
    bus.run(0.2)
    assert max(m.seq for _, m in bus.got[ch.JOINT_STATE]) == 1  # one command, one new sample
    server.p.send_signal(signal.SIGTERM)
    server.p.wait(timeout=20)  # exits on its own (stop() would otherwise add a SIGINT while it shuts down)
    stats, _ = server.stop()
    assert stats["signal"] == signal.SIGTERM and stats["sensor_periods"] == 1 and stats["resends"] >= 2


def test_second_command_writer_is_rejected_logged_once_and_a_persistent_conflict_damps(bus_server) -> None:
    bus, start = bus_server
    server = start("--duration", "30")
    bus.run(0.4, command=lambda: bus.send(_hold()))  # the daemon's stream: the server locks onto it
    intruder = {"seq": 10_000_000}

    def both() -> None:  # a second publisher interleaving its own seq stream with the writer's
        bus.send(_hold())
        m = joint_command_t()
        m.utime, m.seq, m.source_utime, m.mode = time.time_ns() // 1000, intruder["seq"], 0, int(ch.Mode.POLICY)
        intruder["seq"] += 1
        m.n, m.q_des, m.qd_des = 12, (_hold() + 0.3).tolist(), [0.0] * 12
        m.kp, m.kd, m.tau_ff = [C.KP] * 12, [C.KD] * 12, [0.0] * 12
        bus.lc.publish(ch.JOINT_COMMAND, m.encode())

    t = time.perf_counter()
    damped = bus.run_until_samples(ch.JOINT_STATE, t + 0.15, 51, command=both, min_s=0.5)
    assert len(damped) > 50 and _residual_from_damping(damped) < 0.3  # the conflict damps the robot
    t = time.perf_counter()  # the intruder is gone: after 1 s clear, the writer drives
    held = bus.run_until_samples(ch.JOINT_STATE, t + 1.3, 21, command=lambda: bus.send(_hold()), min_s=1.6)
    assert _residual_from_damping(held) > 1.0
    stats, err = server.stop()
    assert stats["foreign"] > 100 and stats["conflicts"] >= 1
    assert err.count("second writer or a seq regression") == 1  # the intruder is logged once
    assert "persistent command conflict" in err


def test_targets_outside_the_joint_range_and_excess_feedforward_are_rejected(bus_server) -> None:
    bus, start = bus_server
    server = start("--duration", "30")
    bus.run(0.3, command=lambda: bus.send(_hold()))
    far = _hold().copy()
    far[2] = 0.5  # calf range is [-2.72, -0.84] rad

    def big_tau() -> None:
        m = joint_command_t()
        m.utime, m.seq, m.source_utime, m.mode = time.time_ns() // 1000, bus.cmd_seq, 0, int(ch.Mode.POLICY)
        bus.cmd_seq += 1
        m.n, m.q_des, m.qd_des = 12, _hold().tolist(), [0.0] * 12
        m.kp, m.kd, m.tau_ff = [C.KP] * 12, [C.KD] * 12, [0.0] * 11 + [80.0]
        bus.lc.publish(ch.JOINT_COMMAND, m.encode())

    for bad in (lambda: bus.send(far), big_tau):
        t = time.perf_counter()  # by receive time: a loaded box delivers late, so judge late
        damped = bus.run_until_samples(ch.JOINT_STATE, t + 0.15, 31, command=bad, min_s=0.3)
        assert len(damped) > 30 and _residual_from_damping(damped) < 0.3, (len(damped), _residual_from_damping(damped))
        bus.run(0.2, command=lambda: bus.send(_hold()))
    stats, err = server.stop()
    assert stats["rejected"] > 50 and stats["foreign"] == 0
    assert "q_des[2] = 0.500 rad outside the joint range" in err and "tau_ff[11] = 80.000 N m beyond" in err


# --- a port LCM cannot bind -----------------------------------------------------------------------------
def test_a_held_port_stops_each_node_with_a_message_before_the_robot_starts() -> None:
    """A socket bound without SO_REUSEADDR (any process's ephemeral UDP socket) makes lcm's subscribe return
    None; each node must say so and exit, not run deaf or crash at shutdown (CI once met this)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("", 0))
        url = f"udpm://239.255.76.67:{held.getsockname()[1]}?ttl=0"
        nodes = {"hardware.server": (2, "cannot start"), "controllers.estimator_node": (2, "estimator_node:")}
        for module, (code, prefix) in nodes.items():
            res = subprocess.run([sys.executable, "-m", module, "--url", url, "--duration", "5"], cwd=REPO,
                                 capture_output=True, text=True, timeout=60)
            assert res.returncode == code, (module, res.stderr)
            assert prefix in res.stderr and "cannot subscribe" in res.stderr, (module, res.stderr)
            assert "Traceback" not in res.stderr and "READY" not in res.stdout, (module, res.stderr)


def test_private_url_skips_ports_in_use_and_stays_below_the_ephemeral_range(monkeypatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("", 0))
        taken = held.getsockname()[1]
        picks = iter([taken, taken, 21001])
        monkeypatch.setattr(ch.random, "randint", lambda lo, hi: next(picks))
        assert ch.private_udpm_url() == "udpm://239.255.76.67:21001?ttl=0"
    monkeypatch.undo()
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    for _ in range(20):
        port = int(ch.private_udpm_url().split(":")[2].split("?")[0])
        assert 20000 <= port < ephemeral_low
