"""The local dispatcher's checks: a POSIX system with /proc and pidfds, a writable runs dir."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweepwise.app.doctor._probe import writable
from sweepwise.core.models import Check


def check_local(runs_root: Path, options: Mapping[str, Any]) -> list[Check]:
    """Whether this machine can run the local dispatcher's supervised jobs (`options` are not needed)."""
    system = f"{platform.system()} {platform.release()}"
    if os.name != "posix":
        return [Check("POSIX system", False, system, "run sweepwise on Linux (on Windows: inside WSL)")]
    checks = [Check("POSIX system", True, system)]
    checks.append(
        Check("/proc", True, "/proc/self is readable")
        if os.path.isdir("/proc/self")
        else Check(
            "/proc",
            False,
            "/proc is not mounted",
            "mount /proc (e.g. run the container with it): a job's start time is read there to tell it "
            "from a process that reused its pid",
        )
    )
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError) as exc:
        detail = "os.pidfd_open is missing" if isinstance(exc, AttributeError) else str(exc)
        fix = "use Linux 5.3 or later: the local dispatcher's job host watches its jobs through pidfds"
        checks.append(Check("pidfd", False, detail, fix))
    else:
        checks.append(Check("pidfd", True, "pidfd_open works"))
    checks.append(writable(runs_root))
    return checks


__all__ = ["check_local"]
