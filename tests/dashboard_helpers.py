"""Helpers of the dashboard tests: a real `sweepwise dashboard` process, and a sweep in virtual time."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conftest import cli

# Jobs in virtual time (the `simulated` dispatcher, docs/backends.md): training lasts 10-60 s of
# virtual time, and the eval scores the run from its parameters.
SIM_JOBS = textwrap.dedent(
    """
    from sweepwise.dispatchers.simulated import SimOutcome

    def behaviour(job):
        x = float(job.overrides.get("x", 0))
        if job.type.value == "launch_training":
            return SimOutcome(duration=10 + 50 * x, result={"loss": 1 - x})
        bonus = 2.0 if job.overrides.get("kind") == "plain" else 1.0
        return SimOutcome(duration=5, result={"score": x * bonus})
    """
)
MARKUP = "<script>alert(1)</script>"


def simulated_sweep(directory: Path, name: str = "sim", trials: int = 12, **overrides: Any) -> None:
    """Run a sweep of `trials` trials in virtual time in `directory` (its store: ./sweepwise.db)."""
    (directory / "simjobs.py").write_text(SIM_JOBS)
    for script in ("train.py", "eval.py"):
        (directory / script).touch()
    spec: dict[str, Any] = {
        "name": name,
        "max_parallel": 3,
        "dispatcher": {"type": "simulated", "behaviour": "simjobs.behaviour"},
        "scheduler": {"type": "batched_synced", "max_trials": trials, "batch_size": 3},
        "optimizer": {"type": "random", "seed": 1},
        "metric": "score",
        "train": {"cmd": ["python", "train.py"]},
        "eval": {"cmd": ["python", "eval.py"]},
        "parameters": {
            "x": {"distribution": "uniform", "min": 0.0, "max": 1.0},
            "kind": {"choices": [MARKUP, "plain"]},
        },
        **overrides,
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = cli("run", str(path), "--quiet", cwd=directory)
    assert result.returncode == 0, result.stderr


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Dashboard:
    """A running `sweepwise dashboard`: where to reach it, and the address it printed (with its token)."""

    base: str
    printed: str
    process: subprocess.Popen[str]

    @property
    def token(self) -> str | None:
        found = re.search(r"\?token=([\w-]+)", self.printed)
        return found.group(1) if found else None


@contextmanager
def dashboard(cwd: Path, *args: str, host: str = "127.0.0.1") -> Iterator[Dashboard]:
    """Start `sweepwise dashboard --host HOST --port FREE ARGS...` in `cwd`; stop it afterwards.

    Ready once it answers HTTP (any status, 401 included) and has printed its address.
    """
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "dashboard", "--host", host, "--port", str(port), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert process.stderr is not None
        printed = process.stderr.readline()
        assert "sweepwise dashboard on" in printed, printed + process.stderr.read()
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/static/dashboard.css", timeout=5).close()
                break
            except urllib.error.HTTPError:
                break  # it answers (401 without a token)
            except OSError:
                assert process.poll() is None, f"the dashboard exited: {process.stderr.read()}"
                assert time.monotonic() < deadline, "the dashboard did not answer within 60 s"
                time.sleep(0.1)
        yield Dashboard(base, printed, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


__all__ = ["MARKUP", "SIM_JOBS", "Dashboard", "dashboard", "free_port", "simulated_sweep"]
