"""Clocks the controller takes its time from: the real one, and a virtual one for simulations."""

from __future__ import annotations

import time


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


__all__ = ["RealClock", "VirtualClock"]
