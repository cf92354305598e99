"""The `--cmd=vx,vy,yaw` argument every deploy process takes: its one parser and its one writer.

Why one module: the deploy chain writes the flag and the daemon, the viewer and `som_robot.deploy` parse
it; when writer and parsers drifted, a backwards command ("-0.5,0.3,0" as its own token) read as an option
and the daemon exited before READY.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["parse_cmd", "cmd_flag"]


def parse_cmd(text: str) -> tuple[float, float, float]:
    """argparse type of `--cmd`: three finite numbers, vx,vy,yaw."""
    try:
        vals = tuple(float(x) for x in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"--cmd must be vx,vy,yaw (3 finite numbers), got {text!r}")
    return vals  # type: ignore[return-value]


def cmd_flag(cmd: tuple[float, float, float]) -> str:
    """`--cmd=vx,vy,yaw` in one token: as two tokens a backwards command ("-0.5,0.3,0") parses as an option."""
    return "--cmd=" + ",".join(f"{c:g}" for c in cmd)
