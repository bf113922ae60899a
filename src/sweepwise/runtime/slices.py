"""Short CPU time slices for the processes that orchestrate jobs (the controller, the job host).

The controller and the job host sleep almost all the time and then have a millisecond
of work that decides when the next job starts. When the jobs keep every core busy,
the kernel may leave that work waiting for a job's time slice to run out, and each
such wait leaves a slot idle. Linux 6.12+ (the EEVDF scheduler) lets a task ask for
shorter slices, which gives it earlier deadlines, so it runs soon after it wakes; its
share of the CPU does not change. Unprivileged tasks may ask, and the request is not
inherited by the jobs they start (`SCHED_FLAG_RESET_ON_FORK`).

Elsewhere, and on older kernels that ignore the hint, `short_slices` does nothing.
Only the standard library is imported: the job host uses this module.
"""

from __future__ import annotations

import platform
import struct
import sys

SLICE_NS = 100_000
"""The slice asked for: 0.1 ms, the shortest Linux grants."""

_SCHED_NORMAL = 0
_SCHED_FLAG_RESET_ON_FORK = 0x01
_ATTR = struct.Struct("IIQiIQQQII")  # struct sched_attr (SCHED_ATTR_SIZE_VER1, 56 bytes)
_SYSCALLS = {  # (sched_setattr, sched_getattr) by machine
    "x86_64": (314, 315),
    "amd64": (314, 315),
    "aarch64": (274, 275),
    "arm64": (274, 275),
    "riscv64": (274, 275),
}


def _libc_syscall() -> tuple[object, int, int] | None:
    numbers = _SYSCALLS.get(platform.machine().lower())
    if not sys.platform.startswith("linux") or numbers is None:
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).syscall, *numbers
    except (ImportError, OSError, AttributeError):
        return None


def _call(syscall: object, number: int, *args: object) -> int:
    """`syscall(number, *args)` with every integer passed as a C long, as the variadic call wants."""
    import ctypes

    longs = [ctypes.c_long(arg) if isinstance(arg, int) else arg for arg in args]
    result: int = syscall(ctypes.c_long(number), *longs)  # type: ignore[operator]
    return result


def _get(syscall: object, number: int) -> bytes | None:
    import ctypes

    buffer = ctypes.create_string_buffer(_ATTR.size)
    if _call(syscall, number, 0, buffer, _ATTR.size, 0) != 0:  # this thread, no flags
        return None
    return buffer.raw


def _set(syscall: object, number: int, attr: bytes) -> bool:
    import ctypes

    return _call(syscall, number, 0, ctypes.create_string_buffer(attr, _ATTR.size), 0) == 0


def request_short_slices(slice_ns: int = SLICE_NS) -> bytes | None:
    """Ask for `slice_ns` time slices for the calling thread; return its previous attributes.

    Returns None (and changes nothing) where the request cannot be made: not Linux, an
    unknown machine, a real-time policy, or a kernel that refuses it.
    """
    found = _libc_syscall()
    if found is None:
        return None
    syscall, set_number, get_number = found
    old = _get(syscall, get_number)
    if old is None:
        return None
    _, policy, _, nice, *_ = _ATTR.unpack(old)
    if policy != _SCHED_NORMAL:  # batch, idle and real-time tasks keep what they were given
        return None
    attr = _ATTR.pack(_ATTR.size, _SCHED_NORMAL, _SCHED_FLAG_RESET_ON_FORK, nice, 0, slice_ns, 0, 0, 0, 0)
    return old if _set(syscall, set_number, attr) else None


def restore_slices(previous: bytes | None) -> None:
    """Give the calling thread back the attributes `request_short_slices` returned."""
    if previous is None:
        return
    found = _libc_syscall()
    if found is not None:
        _set(found[0], found[1], previous)


class short_slices:  # noqa: N801 - used as a context manager, like contextlib's
    """`with short_slices():` runs its body with short slices, then restores the thread's own."""

    def __enter__(self) -> None:
        self._previous = request_short_slices()

    def __exit__(self, *exc: object) -> None:
        restore_slices(self._previous)


def current_slice_ns(pid: int | None = None) -> int | None:
    """The slice process `pid` (default: the calling thread) runs with; None where not shown."""
    try:
        with open("/proc/thread-self/sched" if pid is None else f"/proc/{pid}/sched") as sched:
            for line in sched:
                if line.startswith("se.slice"):
                    return int(line.rsplit(":", 1)[1])
    except (OSError, ValueError):
        return None
    return None


__all__ = ["SLICE_NS", "current_slice_ns", "request_short_slices", "restore_slices", "short_slices"]
