"""Best-effort real-time settings for the 500 Hz/1 kHz loops: CPU affinity, SCHED_FIFO, locked memory.

Shared by the controller daemon and the robot server (`--rt`). Each step that is not permitted (no
CAP_SYS_NICE / LimitRTPRIO / LimitMEMLOCK) is reported and skipped, never fatal.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Sequence

__all__ = ["apply_realtime", "running_realtime"]


def apply_realtime(priority: int, cpus: Sequence[int]) -> list[str]:
    """Best effort: CPU affinity, SCHED_FIFO and locked memory. Returns one line per action (done or why not)."""
    lines = []
    if cpus:
        try:
            usable = [c for c in cpus if c < (os.cpu_count() or 1)]
            os.sched_setaffinity(0, usable or list(cpus))
            lines.append(f"CPU affinity {sorted(os.sched_getaffinity(0))}")
        except (OSError, ValueError) as e:
            lines.append(f"CPU affinity {list(cpus)} not set: {e}")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        lines.append(f"SCHED_FIFO priority {priority}")
    except (OSError, AttributeError) as e:
        lines.append(f"SCHED_FIFO {priority} not permitted ({e}); running SCHED_OTHER (set LimitRTPRIO / "
                     "CAP_SYS_NICE)")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.mlockall(3) != 0:  # MCL_CURRENT | MCL_FUTURE: no page faults in the loop
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        lines.append("memory locked (mlockall)")
    except (OSError, AttributeError) as e:
        lines.append(f"mlockall not permitted ({e}; set LimitMEMLOCK)")
    return lines


def running_realtime() -> bool:
    """This thread runs under a real-time policy (SCHED_FIFO / SCHED_RR, from `apply_realtime`). Its busy-wait
    loops must then yield: LCM's receive thread shares their priority and CPU and would never run otherwise."""
    return os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR)
