"""One benchmark at a time per `--out` file.

A benchmark reads back the runs its out file holds and rewrites the whole file after each
run, so a second copy writing the same file would overwrite the first one's runs. The
first takes an exclusive lock (`flock`, on a hidden file beside the out file) for as long
as it runs; a second is refused with one line. The kernel drops the lock when its holder
ends, however it ends, so a killed benchmark never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def sole_writer(out: Path | None) -> Iterator[None]:
    """Hold `out`'s lock for the block; exit with one line if another process holds it."""
    if out is None:
        yield
        return
    lock = out.with_name(f".{out.name}.lock")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise SystemExit(f"--out {out}: cannot create its lock {lock.name} ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise SystemExit(
                f"--out {out}: another benchmark (pid {holder}) is writing it, and this one would "
                "overwrite its runs; let it finish (this one then resumes from its runs), or give "
                "this one another --out"
            ) from None
        with contextlib.suppress(OSError):  # the pid only names the holder (a full disk may refuse it)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
