"""The daemon's mode state machine: PASSIVE → STAND_UP → POLICY, DAMPING as the sink of every fault.

The operator (joystick, edge-triggered: a change of the requested mode) or `--auto` sets a *target*; each tick
the machine takes at most one allowed step towards it. Faults force DAMPING and reset the target to DAMPING so
nothing re-arms on its own; an e-stop additionally latches DAMPING until the daemon restarts. A PASSIVE request
while STAND_UP/POLICY means "stop": DAMPING (never straight to zero torque); from a (non-e-stop) DAMPING a new
PASSIVE request lets the robot go limp, and STAND_UP starts again from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hardware.channels import Mode

__all__ = ["Transition", "ModeMachine"]


@dataclass(frozen=True)
class Transition:
    """One mode change, for the status message and the stats file."""

    t: float  # monotonic [s]
    utime: int  # wall clock [us]
    mode: Mode
    reason: str


class ModeMachine:
    """Mode + operator target + e-stop latch, with a history of transitions."""

    def __init__(self, on_change: Callable[[Transition], None] | None = None) -> None:
        self.mode = Mode.PASSIVE
        self.target = Mode.PASSIVE
        self.estopped = False
        self.history: list[Transition] = [Transition(time.monotonic(), time.time_ns() // 1000, Mode.PASSIVE, "start")]
        self._on_change = on_change

    def _enter(self, mode: Mode, reason: str) -> None:
        self.mode = mode
        tr = Transition(time.monotonic(), time.time_ns() // 1000, mode, reason)
        self.history.append(tr)
        if self._on_change is not None:
            self._on_change(tr)

    def request(self, target: Mode) -> None:
        """Operator / --auto target. Ignored while e-stopped."""
        if not self.estopped:
            self.target = Mode(target)

    def fault(self, reason: str) -> bool:
        """Go to DAMPING now (no-op if already there); returns True when this caused a transition."""
        self.target = Mode.DAMPING
        if self.mode == Mode.DAMPING:
            return False
        self._enter(Mode.DAMPING, reason)
        return True

    def estop(self, reason: str = "e-stop") -> bool:
        self.estopped = True
        return self.fault(reason)

    def _stop(self, requested: Mode) -> None:
        self.target = Mode.DAMPING  # going limp needs a new PASSIVE request once damped
        self._enter(Mode.DAMPING, f"operator requested {requested.name} (stop)")

    def step(self, healthy: bool, stand_up_done: bool) -> None:
        """One step towards the target. `healthy`: all needed inputs fresh and valid."""
        m, t = self.mode, self.target
        if m == Mode.PASSIVE:
            if t == Mode.DAMPING:
                self._enter(Mode.DAMPING, "operator requested DAMPING")
            elif t in (Mode.STAND_UP, Mode.POLICY) and healthy:
                self._enter(Mode.STAND_UP, f"operator/auto requested {t.name}")
        elif m == Mode.STAND_UP:
            if t in (Mode.PASSIVE, Mode.DAMPING):
                self._stop(t)
            elif t == Mode.POLICY and stand_up_done and healthy:
                self._enter(Mode.POLICY, "stand-up complete")
        elif m == Mode.POLICY:
            if t in (Mode.PASSIVE, Mode.DAMPING):
                self._stop(t)
            elif t == Mode.STAND_UP:
                self._enter(Mode.STAND_UP, "operator requested STAND_UP")
        elif m == Mode.DAMPING and t == Mode.PASSIVE and not self.estopped and healthy:
            self._enter(Mode.PASSIVE, "operator requested PASSIVE")
