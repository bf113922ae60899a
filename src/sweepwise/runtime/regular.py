"""Opening a file a job may have written: only a regular file is read.

A job owns its run directory, so whatever sweepwise reads there (its result, status,
reports, log) may have been replaced by the job: a FIFO would block the reader for ever, a
terminal or a device would never end. `open_regular` opens without blocking, refuses what
is not a regular file with an `OSError` ("not a regular file"), and hands back an ordinary
binary file object (docs/design.md, "What a job leaves behind").
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

StrPath = str | os.PathLike[str]


def open_regular(path: StrPath) -> BinaryIO:
    """`path` opened for binary reading, if it is a regular file.

    Raises:
        OSError: it cannot be opened, or it is not a regular file (`errno.EINVAL`).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


__all__ = ["open_regular"]
