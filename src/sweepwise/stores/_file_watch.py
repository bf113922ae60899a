"""`FileWatch`: is the SQLite file a store opened still the one at its path?

SQLite keeps writing through its open descriptors to a file that was deleted
(or renamed away and replaced): every commit succeeds and every result is lost
with the inode. The store remembers the file's (device, inode) once it has
opened it and compares them with the path's before writes, at most once a
second, so a sweep whose store vanished stops instead (docs/design.md, "Faults").
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sweepwise.core.errors import StoreError

CHECK_INTERVAL = 1.0  # seconds between two looks at the file


class FileWatch:
    """The identity of a SQLite file, checked against its path.

    Args:
        path: the database file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity: tuple[int, int] | None = None
        self._checked_at = -CHECK_INTERVAL
        self._lost = False

    def remember(self) -> None:
        """Take the file now at the path as the store's (call once the store has opened it)."""
        try:
            found = os.stat(self.path)
        except OSError:
            return  # not created (yet): nothing to compare with
        self._identity = (found.st_dev, found.st_ino)
        self._checked_at = time.monotonic()

    def vanished(self) -> bool:
        """True if the remembered file is no longer at its path (looks at it now)."""
        if self._lost:
            return True
        if self._identity is None:
            return False
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            self._lost = True
        except OSError:
            return False  # cannot tell (a flaky mount): the database's own errors will say
        else:
            self._lost = (found.st_dev, found.st_ino) != self._identity
        return self._lost

    def check(self) -> None:
        """Raise if the file vanished; looks at most once per `CHECK_INTERVAL`.

        Raises:
            StoreError: the file was deleted or replaced since the store opened it.
        """
        if not self._lost:
            now = time.monotonic()
            if now - self._checked_at < CHECK_INTERVAL:
                return
            self._checked_at = now
        if self.vanished():
            raise self.error()

    def error(self) -> StoreError:
        """The error that says the file vanished, and what to do."""
        return StoreError(
            f"the store file {self.path} was deleted or replaced while the sweep ran, so nothing more "
            "can be recorded; restore the file, or start over with a new store and runs directory"
        )


__all__ = ["CHECK_INTERVAL", "FileWatch"]
