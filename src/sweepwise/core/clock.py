"""Clocks the controller takes its time from: the real one, and a virtual one for simulations."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class RealClock:
    """Wall-clock time."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def elapsed(self) -> float:
        """Seconds on a clock that neither jumps with the wall clock nor runs while the machine sleeps.

        The controller measures a job's silence on it: a laptop that slept, or a wall
        clock set forward, never makes a healthy job look silent (docs/design.md,
        "Liveness from evidence").
        """
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Block for `seconds` (no-op when not positive)."""
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """Time that passes only when told to: a whole sweep replays in milliseconds.

    Args:
        start: the initial time in seconds since the epoch.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    def elapsed(self) -> float:
        """The virtual time (it never jumps back)."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the virtual time by `seconds`."""
        if seconds > 0:
            self._now += seconds

    def advance_to(self, when: float) -> None:
        """Jump forward to `when` (never backwards)."""
        self._now = max(self._now, when)


def elapsed_of(clock: Any) -> Callable[[], float]:
    """`clock`'s `elapsed` (a clock the wall clock cannot move), or its `now` when it has none."""
    elapsed: Callable[[], float] = getattr(clock, "elapsed", clock.now)
    return elapsed


__all__ = ["RealClock", "VirtualClock", "elapsed_of"]
