"""A small tmpfs for the full-disk tests (root is required: `.ci/run` runs as root)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(disk: Path, size: str = "3m") -> Iterator[Path]:
    """Mount a tmpfs of `size` at `disk` (made here), unmount it afterwards.

    Fails, rather than skips, where it cannot be mounted: the full-disk faults are part
    of what CI must show.
    """
    if os.geteuid() != 0:
        pytest.fail("the full-disk tests mount a tmpfs and need root (run them as root, as .ci/run does)")
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill_disk(path: Path) -> Path:
    """Write the file `path` until its file system is full (64 KiB, 4 KiB, then single bytes)."""
    with open(path, "wb", buffering=0) as f:
        for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0"):
            with contextlib.suppress(OSError):
                while True:
                    f.write(chunk)
    return path
