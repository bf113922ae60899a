"""Files and directories only their owner can read, whatever the umask (README, `train`).

Sweepwise's store and run directories hold what jobs report and how they were run, so
what sweepwise creates there is made private to the user: directories 0700, files 0600.
Only what these functions create is changed; existing files and directories keep their modes.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dirs(path: Path) -> None:
    """Create `path` and its missing parents, each readable by the user only (an existing one is kept).

    Raises:
        OSError: a directory cannot be created.
    """
    missing: list[Path] = []
    current = path
    while not current.is_dir() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile (by another start): not ours to change
            if not directory.is_dir():
                raise
            continue
        os.chmod(directory, DIR_MODE)  # the umask may have taken bits from `mode`


def create_private_file(path: Path) -> bool:
    """Create `path` empty, readable by the user only, unless it exists; True if it was created here.

    Raises:
        OSError: the file cannot be created.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def write_private_text(path: Path, text: str) -> None:
    """Write `text` to a new file `path` (replacing none: the caller renames it), mode 0600.

    Raises:
        OSError: the file cannot be written.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)
        handle.write(text)


__all__ = ["DIR_MODE", "FILE_MODE", "create_private_file", "make_private_dirs", "write_private_text"]
