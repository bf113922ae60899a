"""Fault injection for the crash-safety tests: kill this process at a named point.

`SWEEPWISE_CRASH_AT=point:N` makes the Nth pass through `crash_point("point")`
SIGKILL the process, exactly where a real crash could land. Unset, it costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("SWEEPWISE_CRASH_AT", "")
_POINT, _, _COUNT = _SPEC.partition(":")
_remaining = int(_COUNT or 1) if _POINT else 0


def crash_point(name: str) -> None:
    """SIGKILL this process if `name` is the armed point and its count is reached."""
    global _remaining
    if not _remaining or name != _POINT:
        return
    _remaining -= 1
    if _remaining == 0:
        os.kill(os.getpid(), signal.SIGKILL)
