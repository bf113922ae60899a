"""Forking a detached child: a new session that holds nothing of its parent but memory.

Used by `sweepwise.runtime.supervise.fork_supervisor`. Only the standard library is
imported: this module is on every job's path.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import signal

TYPE_CHECKING = False  # not `from typing import ...`: typing costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


def _detach_forked_child(log_path: str) -> None:
    """In a forked supervisor: drop everything inherited from the parent but memory.

    The parent's descriptors (store connections, lock files, pipes to a terminal) are
    closed in this process only; the parent's stay open. Garbage collection is off so
    no inherited object's finaliser runs here on a reused descriptor number.
    """
    gc.disable()
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    if faulthandler.is_enabled():
        faulthandler.disable()
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, max(os.sysconf("SC_OPEN_MAX"), 3))


def fork_detached(main: Callable[[], int], *, log_path: str, blocked: Iterable[int]) -> int:
    """Fork a child that runs `main()` in a new session and exits with its code; return its pid.

    The child never returns into the caller: it calls `os.setsid()`, points its stdin
    at /dev/null and stdout/stderr at `log_path`, closes its copies of every other
    descriptor, runs `main` and leaves with `os._exit` (code 70 and a traceback in the
    log if `main` raised). The caller must reap the child (`os.waitpid`).

    Args:
        main: what the child runs; returns the child's exit status.
        log_path: the file the child's stdout and stderr are appended to.
        blocked: signals blocked across the fork; the parent's mask is restored, the
            child starts with them still blocked (for `main` to unblock).
    """
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        raise
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        return pid
    code = 70  # EX_SOFTWARE: the supervisor itself failed
    try:
        os.setsid()
        _detach_forked_child(log_path)
        code = main()
    except BaseException:
        try:
            import traceback

            os.write(2, f"sweepwise supervisor failed:\n{traceback.format_exc()}".encode())
        except BaseException:
            pass
    finally:
        os._exit(code)


__all__ = ["fork_detached"]
