"""What several backends' checks share: programs on PATH, commands run with a deadline, writable dirs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sweepwise.core.models import Check


def one_line(text: str) -> str:
    """The first non-empty line of `text`, stripped ("" when there is none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def run(argv: Sequence[str], timeout: float = 30.0) -> tuple[int | None, str]:
    """Run a command without a shell: (exit code, its stdout, else its stderr).

    The exit code is None when the command could not be started or did not end within
    `timeout` seconds; the text then says why.
    """
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return None, f"no answer within {timeout:g} s"
    except OSError as exc:
        return None, exc.strerror or str(exc)
    return proc.returncode, proc.stdout if proc.returncode == 0 else one_line(proc.stderr or proc.stdout)


def on_path(programs: Sequence[str], fix: str) -> Check:
    """One check: every program of `programs` is on PATH."""
    found = {program: shutil.which(program) for program in programs}
    missing = [program for program, path in found.items() if path is None]
    names = ", ".join(programs)
    if missing:
        return Check(f"{names} on PATH", False, f"not found: {', '.join(missing)}", fix)
    where = sorted({os.path.dirname(path) for path in found.values() if path is not None})
    return Check(f"{names} on PATH", True, f"in {', '.join(where)}")


def nearest_existing(path: Path) -> Path:
    """`path`, or its nearest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def writable(runs_root: Path) -> Check:
    """One check: a directory can be made in the runs dir (or where it would be created)."""
    existing = nearest_existing(runs_root)
    fix = f"make {existing} writable for this user, or set runs_dir to a directory you can write"
    if not existing.is_dir():
        return Check("runs dir writable", False, f"{existing} is not a directory", fix)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sweepwise-doctor-", dir=existing))
    except OSError as exc:
        return Check("runs dir writable", False, f"cannot create in {existing}: {exc.strerror or exc}", fix)
    where = (
        f"{runs_root} is writable" if existing == runs_root else f"{runs_root} can be created in {existing}"
    )
    return Check("runs dir writable", True, where)


__all__ = ["nearest_existing", "on_path", "one_line", "run", "writable"]
