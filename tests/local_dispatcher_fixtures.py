"""Fixtures of the tests that drive a `LocalDispatcher` directly: its runs root and a factory.

Each test module that uses them defines its own `method` fixture (which start methods it runs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sweepwise.dispatchers.local import LocalDispatcher
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import process_alive


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `condition` until it is true (returning its value), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def kill_leftovers(root: Path) -> None:
    """Never leave a job or supervisor behind, whatever the test did."""
    for status_path in root.glob("**/*.status.json"):
        status = read_status(status_path) or {}
        for key, start in (("pid", "pid_start"), ("supervisor_pid", "supervisor_start")):
            pid = status.get(key)
            if isinstance(pid, int) and process_alive(pid, status.get(start)):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:  # not a group leader (a supervisor inside a Ray job), or gone
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def runs_root(tmp_path: Path) -> Iterator[Path]:
    """`tmp_path/runs`; every job left running under it is killed afterwards."""
    root = tmp_path / "runs"
    yield root
    kill_leftovers(root)


@pytest.fixture
def make(runs_root: Path, method: str) -> Iterator[Callable[..., LocalDispatcher]]:
    """A factory of dispatchers of experiment `exp` with the test's start method, closed afterwards."""
    made: list[LocalDispatcher] = []

    def factory(**kwargs: Any) -> LocalDispatcher:
        kwargs.setdefault("start_method", method)
        kwargs.setdefault("heartbeat_interval", 0.2)
        dispatcher = LocalDispatcher(runs_root, "exp", **kwargs)
        made.append(dispatcher)
        return dispatcher

    yield factory
    for dispatcher in made:
        dispatcher.close()
