"""`FileStateStore`: scheduler state as one JSON file per experiment, written atomically.

Seed 002's state store, for users whose runs live elsewhere (docs/stores.md, "FileStateStore").
A write goes to a temporary file in the same directory, is flushed and fsynced, renamed
over the old file with `os.replace`, and the directory is fsynced: a crash at any moment
leaves the old state or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sweepwise.core.errors import StoreError


class FileStateStore:
    """Implements `sweepwise.core.protocols.StateStore` in a directory of JSON files.

    Each experiment's state is `<directory>/<quoted name>.json`; the name is percent-quoted
    (`/`, `..`, NUL and the like cannot leave the directory or collide with another name).

    Args:
        directory: where the files go; created (with parents) on the first save.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileStateStore({str(self.directory)!r})"

    def path(self, experiment: str) -> Path:
        """The file holding `experiment`'s state.

        Raises:
            ValueError: `experiment` is empty.
        """
        if not experiment:
            raise ValueError("experiment: the name is empty; give the experiment's name")
        return self.directory / f"{_quote(experiment)}.json"

    def save_state(self, experiment: str, state: dict[str, Any]) -> None:
        """Write `experiment`'s state atomically (JSON; datetimes and other objects become strings).

        Raises:
            TypeError: `state` holds a value JSON cannot represent even as a string.
            StoreError: the file could not be written (the previous state is kept).
        """
        text = json.dumps(state, sort_keys=True, default=str, allow_nan=False)
        target = self.path(experiment)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.directory)
        except OSError as exc:
            raise StoreError(
                f"could not save the state of {experiment!r} in {self.directory}: {exc}"
            ) from exc
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise StoreError(f"could not save the state of {experiment!r} to {target}: {exc}") from exc
            raise
        _fsync_directory(self.directory)

    def load_state(self, experiment: str) -> dict[str, Any] | None:
        """`experiment`'s last saved state, or None when none was saved.

        Raises:
            StoreError: the file exists but is not a JSON object (corrupt, truncated, or not
                ours); the message names the file.
        """
        target = self.path(experiment)
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"could not read the state file {target}: {exc}") from exc
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StoreError(
                f"the state file {target} is corrupt ({exc}); restore it from a backup or delete it "
                "to start the scheduler's state afresh"
            ) from None
        if not isinstance(value, dict):
            raise StoreError(
                f"the state file {target} holds a {type(value).__name__}, not a JSON object; "
                "restore it or delete it"
            )
        return value


_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _quote(name: str) -> str:
    """Percent-quote every byte but letters, digits, `_` and `-`: no `/`, no `..`, no hidden file.

    (`urllib.parse.quote` always leaves `.` and `~` as they are.) Injective, so two names
    never share a file (`exp.v2` is kept as `exp%2Ev2.json`).
    """
    return "".join(chr(b) if b in _PLAIN else f"%{b:02X}" for b in name.encode("utf-8", "surrogatepass"))


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["FileStateStore"]
