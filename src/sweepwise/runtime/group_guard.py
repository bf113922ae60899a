"""Stop a job's process group when its supervisor dies: `python -m sweepwise.runtime.group_guard`.

A remote job's runner (`sweepwise.runtime.remote`) can be killed with SIGKILL, with
no chance to stop its job: Ray kills a stopped job's workers and their process groups,
which hold the runners of a multi-node job's ranks. The job runs in a process group of
its own, so it would run on, unseen, and a retry would run it twice.

The guard runs inside the job's process group and reads its stdin, a pipe whose other
end only the supervisor holds. The pipe closes when the supervisor dies, however it
dies. The guard then sends SIGTERM to its group (the job and what it started),
SIGKILL `--grace` seconds later, and leaves. It ignores SIGTERM, SIGINT, SIGHUP,
SIGQUIT and SIGUSR1/2, so that a cancel or a framework's signal sent to the job's group
does not end it first. When the job ends
normally, the supervisor kills what is left of the group, the guard with it
(docs/backends.md, Ray, "Crash safety").

Only the standard library is imported: this runs beside every remote job.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE = 10.0
"""Seconds from SIGTERM to SIGKILL, as for a cancel."""

_IGNORED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
"""What a job may send its own group (a cancel, a framework's checkpoint signal): never the guard's end."""
_POLL = 0.2  # seconds between checks that the group still has a process other than the guard


def _signal_group(signum: int) -> bool:
    """`signum` to this process's group: False when it is gone."""
    try:
        os.killpg(os.getpgrp(), signum)
    except ProcessLookupError:
        return False
    return True


def _others_in_group() -> bool:
    """Whether a process other than this one is in this process's group (Linux: /proc; else assumed)."""
    group, me = os.getpgrp(), os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        # fields[0] is the state, [2] the process group; a zombie runs no code
        if len(fields) > 2 and int(fields[2]) == group and fields[0] != b"Z":
            return True
    return False


def guard(grace: float = GRACE) -> int:
    """Wait for stdin to close, then stop this process's group; see the module docstring."""
    for signum in _IGNORED:
        signal.signal(signum, signal.SIG_IGN)
    while True:
        try:
            if not os.read(0, 4096):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    if not _others_in_group():
        return 0  # the job has ended: nothing to stop
    try:
        os.write(1, b"sweepwise: the job's supervisor died: stopping the job\n")
    except OSError:
        pass  # a full disk or a deleted log must not keep the job running
    if not _signal_group(signal.SIGTERM):
        return 0
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _others_in_group():
        time.sleep(_POLL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _signal_group(signal.SIGKILL)  # this process too
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse `[--grace SECONDS]` and guard; exit 2 on a usage error."""
    args = sys.argv[1:] if argv is None else argv
    grace = GRACE
    if args:
        try:
            if args[0] != "--grace" or len(args) != 2:
                raise ValueError
            grace = float(args[1])
            if not grace >= 0:
                raise ValueError
        except ValueError:
            sys.stderr.write("usage: python -m sweepwise.runtime.group_guard [--grace SECONDS >= 0]\n")
            return 2
    return guard(grace)


__all__ = ["GRACE", "guard", "main"]

if __name__ == "__main__":
    sys.exit(main())
