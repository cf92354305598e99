"""Start the whole deploy chain and report on it.

    python -m som_robot.deploy --sim --policy runs/.../policy.onnx --duration 20 --cmd 0.5,0,0
    python -m som_robot.deploy --hardware go2 --policy /opt/som/policy.onnx     # physical robot bridge
    python -m som_robot.deploy --sim --policy policies/go2_som.onnx --viewer --record walk.mp4  # watch, record

Sets up the LCM provider (udpm; on a loopback-only host it adds `239.0.0.0/8 dev lo` when it can
and says so), starts the robot (MuJoCo Go2 speaking the robot's LCM channels, or the Go2 bridge),
the state estimator and the controller daemon (auto: stand up, then walk at --cmd), records the
run with lcm-logger, prints a live status line, and at the end (duration or Ctrl-C) shuts the
chain down daemon-first and writes report.json, velocity.png and timing.png into --out.
`--viewer` opens MuJoCo's viewer on the simulated robot in its own process (som_robot.deploy.viewer);
`--record` renders the run's LCM log to an MP4 after the chain has stopped. Neither touches the loops' timing.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from controllers.cmd_arg import cmd_flag, parse_cmd
from hardware import channels as ch
from som_robot.deploy.chain import ChainError, ChainSpec, ChildProcess, DeployChain
from som_robot.deploy.monitor import ChainMonitor
from som_robot.deploy.report import summarize, write_report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m som_robot.deploy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--sim", action="store_true", help="MuJoCo Go2 over LCM (hardware-in-the-loop test)")
    where.add_argument("--hardware", choices=["go2"], help="physical robot through its bridge")
    p.add_argument("--policy", type=Path, required=True, help="exported policy.onnx (contract is checked)")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to run after the chain is up (0: Ctrl-C)")
    p.add_argument("--cmd", type=parse_cmd, default=(0.5, 0.0, 0.0), help="vx,vy,yaw when no joystick publishes")
    p.add_argument("--out", type=Path, help="run folder (default runs/deploy/<time>)")
    p.add_argument("--url", default=None, help=f"LCM URL (default $SOM_LCM_URL or {ch.DEFAULT_URL})")
    p.add_argument("--lockstep", action="store_true", help="sim steps once per command (deterministic)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--robot-config", type=Path, help="robot YAML for the daemon (default configs/robots/go2.yaml)")
    p.add_argument("--viewer", action="store_true", help="sim: MuJoCo's viewer on the robot (its own process)")
    p.add_argument("--record", type=Path, metavar="PATH.mp4",
                   help="sim: MP4 of the run with command/velocity/mode overlay, rendered from the LCM log after it")
    rt = p.add_mutually_exclusive_group()
    rt.add_argument("--rt", dest="rt", action="store_true", default=None,
                    help="robot loop, estimator and daemon ask for SCHED_FIFO and CPU affinity (default: when root)")
    rt.add_argument("--no-rt", dest="rt", action="store_false", help="plain scheduling even as root")
    return p


def setup_provider(url: str) -> str:
    """Make the LCM URL usable on this host; returns what was done (printed for the operator)."""
    if url.startswith("udpm://"):
        return f"LCM provider {url}: " + ch.ensure_multicast_route()
    return f"LCM provider {url}"


def _status_line(t: float, mon: ChainMonitor, cmd: tuple[float, float, float]) -> str:
    s = mon.series
    with mon.lock:
        mode = ch.Mode(s.status[-1][1]).name if s.status else "?"
        over = s.status[-1][3] if s.status else 0
        recent = [x for x in s.cmd_arrival[-600:] if x > time.perf_counter() - 1.0]
        vx = sum(v[1] for v in s.truth[-250:]) / max(len(s.truth[-250:]), 1)
        est = sum(v[1] for v in s.estimate[-250:]) / max(len(s.estimate[-250:]), 1)
        err = s.status[-1][2] if s.status else ""
    return (f"t={t:6.1f}s mode={mode:<8} cmd {len(recent):3d} Hz  vx true {vx:+.2f} est {est:+.2f} "
            f"(cmd {cmd[0]:+.2f})  overruns {over}  {err[:60]}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import os

    url = args.url or os.environ.get("SOM_LCM_URL", ch.DEFAULT_URL)
    if args.rt is None:  # a loaded dev box starves plain-priority 500 Hz loops; root may ask for better
        args.rt = os.geteuid() == 0
    print(f"real-time scheduling {'requested (SCHED_FIFO)' if args.rt else 'off'}"
          f"{'' if args.rt else ' (not root; --rt to try anyway)' if os.geteuid() else ' (--no-rt)'}", flush=True)
    out = args.out or Path("runs/deploy") / time.strftime("%Y%m%d-%H%M%S")
    try:
        print(setup_provider(url), flush=True)
    except ch.LcmUnavailableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    spec = ChainSpec(policy=args.policy.resolve(), out=out, url=url, hardware="sim" if args.sim else args.hardware,
                     cmd=args.cmd, lockstep=args.lockstep, seed=args.seed, rt=args.rt,
                     robot_config=args.robot_config.resolve() if args.robot_config else None)
    try:
        mon = ChainMonitor(url).start()
    except ch.LcmUnavailableError as e:  # nothing started yet
        print(f"error: {e}", file=sys.stderr)
        return 2
    chain = DeployChain(spec)
    code = 0
    viewer = None
    # Ctrl-C sets a flag that the watch loop reads, rather than raising KeyboardInterrupt wherever the main thread
    # happens to be (inside a print to the stderr the child-output pumps also write to, say).
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda _sig, _frame: interrupted.set())
    try:
        chain.start()
        print(f"chain up: robot={spec.hardware}, estimator, daemon; logging LCM to {chain.lcm_log}", flush=True)
        if args.viewer:
            viewer = start_viewer(chain, spec)
        t0 = time.monotonic()
        while not interrupted.is_set() and (not args.duration or time.monotonic() - t0 < args.duration):
            dead = [n for n in chain.procs if not chain.alive(n)]
            if dead:
                print(f"\n{', '.join(dead)} exited; stopping the chain", file=sys.stderr)
                code = 1
                break
            print("\r" + _status_line(time.monotonic() - t0, mon, spec.cmd), end="", file=sys.stderr, flush=True)
            interrupted.wait(0.25)
        if interrupted.is_set():
            print("\nCtrl-C: stopping (daemon damps first)", file=sys.stderr)
    except ChainError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        code = 2
    finally:
        signal.signal(signal.SIGINT, previous)
        codes = chain.stop()
        if viewer is not None:
            viewer.stop()
        time.sleep(0.2)
        mon.stop()
    print(file=sys.stderr)
    stats = json.loads(chain.stats_json.read_text()) if chain.stats_json.exists() else None
    summary = summarize(mon.series, spec.cmd, stats) | {"exit_codes": codes, "lcm_log": str(chain.lcm_log),
                                                        "robot": chain.done_stats("robot")}
    paths = write_report(out, mon.series, summary)
    keys = ("command_rate_hz", "command_period_error_us", "sensor_to_command_latency_us", "robot", "velocity",
            "estimator")
    print(json.dumps({k: summary.get(k) for k in keys}, indent=2))
    print("wrote " + ", ".join(str(p) for p in paths))
    if args.record is not None:
        from som_robot.deploy.video import record_video

        n = record_video(chain.lcm_log, args.record, cmd=spec.cmd)
        print(f"wrote {args.record} ({n} frames at 30 fps, rendered from {chain.lcm_log})")
    return code


def start_viewer(chain: DeployChain, spec: ChainSpec) -> ChildProcess | None:
    """The live viewer beside the chain (not part of it: its death stops nothing); None when it cannot open."""
    from som_robot.deploy.viewer import NO_DISPLAY_LINE, display_available

    if not display_available():
        print(NO_DISPLAY_LINE, flush=True)
        return None
    args = ["--url", spec.url, cmd_flag(spec.cmd)]
    viewer = ChildProcess("viewer", "som_robot.deploy.viewer", args, spec.out / "viewer.log", chain.env)
    try:
        viewer.wait_ready(30.0)
    except ChainError:
        viewer.stop()
        said = viewer.log_path.read_text(errors="replace").strip().splitlines()
        print(said[-1] if said else "viewer: failed to start", flush=True)
        return None
    print(f"viewer open (log {viewer.log_path})", flush=True)
    return viewer


if __name__ == "__main__":
    sys.exit(main())
