"""Start, watch and stop the three deploy processes (robot, state estimator, controller daemon).

Each process is a plain `python -m` module that prints `READY <module>` once it is subscribed
and publishing; the chain waits for that line before starting the next process, so the daemon
never starts against a silent robot. Every run is recorded by `lcm-logger` (shipped in the lcm
wheel) so it can be replayed with `lcm-logplayer`. Onboard-safe: no torch or mujoco imports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from controllers.cmd_arg import cmd_flag

__all__ = ["ChainSpec", "ChildProcess", "DeployChain", "ChainError", "lcm_bin"]

REPO_ROOT = Path(__file__).resolve().parents[2]


class ChainError(RuntimeError):
    """A process of the chain failed to start or died; the message names it and quotes its log."""


def lcm_bin(tool: str) -> str:
    """Path of an LCM command-line tool shipped in the lcm wheel (lcm-logger, lcm-logplayer, ...)."""
    import lcm

    return str(Path(lcm.LCM_BIN_DIR).resolve() / tool)


@dataclass(frozen=True)
class ChainSpec:
    """What `som_robot.deploy` starts."""

    policy: Path
    out: Path  # run folder: process logs, LCM log, daemon stats, report
    url: str
    hardware: str = "sim"  # sim | go2 (hardware.server --robot)
    cmd: tuple[float, float, float] = (0.5, 0.0, 0.0)  # joystick default when no joystick is publishing
    duration: float = 0.0  # passed to the daemon; 0 = until stopped
    lockstep: bool = False
    sim_watchdog: bool = True  # with hardware "sim": the daemon uses the config's watchdog_sim limits
    seed: int = 0
    robot_config: Path | None = None
    rt: bool = False
    extra_args: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per-process extra argv


class ChildProcess:
    """One chain process: its argv, log file, READY handshake and signal-based shutdown."""

    def __init__(self, name: str, module: str, args: Sequence[str], log_path: Path, env: dict[str, str]) -> None:
        self.name, self.module = name, module
        self.argv = [sys.executable, "-u", "-m", module, *args]
        self.log_path = log_path
        self._log: IO[str] = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
                                     cwd=REPO_ROOT, start_new_session=True)
        self._ready = threading.Event()
        self._pump = threading.Thread(target=self._drain, daemon=True, name=f"{name}-stdout")
        self._pump.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == f"READY {self.module}":
                self._ready.set()
            self._log.write(line)
            self._log.flush()

    def wait_ready(self, timeout: float) -> None:
        t_end = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                raise ChainError(f"{self.name} exited with code {self.proc.returncode} before READY; "
                                 f"log {self.log_path}:\n{self.tail()}")
            if time.monotonic() > t_end:
                raise ChainError(f"{self.name} not READY after {timeout:.0f} s; log {self.log_path}:\n{self.tail()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGINT (the processes damp and exit cleanly), then SIGKILL if it hangs; returns the exit code."""
        self.signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._pump.join(timeout=1.0)
        self._log.close()
        return code

    def tail(self, n: int = 20) -> str:
        self._log.flush()
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class DeployChain:
    """Robot → estimator → daemon, started in that order, stopped in reverse (daemon damps first)."""

    def __init__(self, spec: ChainSpec, ready_timeout: float = 60.0) -> None:
        self.spec, self.ready_timeout = spec, ready_timeout
        self.procs: dict[str, ChildProcess] = {}
        self.logger: subprocess.Popen[bytes] | None = None
        self.exit_codes: dict[str, int] = {}
        self.lcm_log = spec.out / "run.lcmlog"
        self.stats_json = spec.out / "daemon_stats.json"

    def _args(self) -> dict[str, tuple[str, str, list[str]]]:
        s = self.spec
        robot = ["--robot", s.hardware, "--url", s.url, "--seed", str(s.seed), *(["--lockstep"] if s.lockstep else [])]
        est = ["--url", s.url]
        daemon = ["--policy", str(s.policy), "--url", s.url, "--auto", cmd_flag(s.cmd),
                  "--stats-json", str(self.stats_json)]
        if s.hardware == "sim" and s.sim_watchdog:
            daemon.append("--sim-hardware")
        if s.duration:
            daemon += ["--duration", f"{s.duration:g}"]
        if s.robot_config is not None:
            daemon += ["--robot-config", str(s.robot_config)]
        if s.rt:
            daemon.append("--rt")
            robot.append("--rt")
            est.append("--rt")
        out = {"robot": ("hardware.server", robot), "estimator": ("controllers.estimator_node", est),
               "daemon": ("controllers.daemon", daemon)}
        return {k: (m, k, [*a, *s.extra_args.get(k, ())]) for k, (m, a) in out.items()}

    @property
    def env(self) -> dict[str, str]:
        """The environment every chain process runs with (this repo importable, the chain's LCM URL)."""
        return dict(os.environ, SOM_LCM_URL=self.spec.url, PYTHONPATH=os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p))

    def start(self) -> None:
        self.spec.out.mkdir(parents=True, exist_ok=True)
        env = self.env
        self.logger = subprocess.Popen([lcm_bin("lcm-logger"), "-q", "-f", f"--lcm-url={self.spec.url}",
                                        str(self.lcm_log)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for name, (module, _, args) in self._args().items():
                self.procs[name] = ChildProcess(name, module, args, self.spec.out / f"{name}.log", env)
                self.procs[name].wait_ready(self.ready_timeout)
        except BaseException:
            self.stop()
            raise

    def done_stats(self, name: str) -> dict:
        """The JSON a process printed on its `DONE <module> {...}` line at exit ({} if none)."""
        if name not in self.procs:
            return {}
        prefix = f"DONE {self.procs[name].module} "
        for line in reversed(self.procs[name].log_path.read_text(errors="replace").splitlines()):
            if line.startswith(prefix):
                try:
                    return json.loads(line[len(prefix):])
                except json.JSONDecodeError:
                    return {}
        return {}

    def alive(self, name: str) -> bool:
        return name in self.procs and self.procs[name].alive()

    def kill(self, name: str) -> None:
        """SIGKILL one process (fault injection: it dies without a goodbye)."""
        self.procs[name].proc.kill()
        self.procs[name].proc.wait()

    def stop(self) -> dict[str, int]:
        for name in reversed(list(self.procs)):
            if name not in self.exit_codes:
                self.exit_codes[name] = self.procs[name].stop()
        if self.logger is not None and self.logger.poll() is None:
            self.logger.send_signal(signal.SIGINT)
            try:
                self.logger.wait(5.0)
            except subprocess.TimeoutExpired:
                self.logger.kill()
        return self.exit_codes

    def __enter__(self) -> DeployChain:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
