"""The machine services some tests need, brought up on first use: SLURM, PostgreSQL, Chromium.

Each has an installer in `.ci/` (idempotent, run as root). When a test needs a service that is not
there, the session runs its installer once, so the README's test command works on a fresh machine;
not as root, the tests that need it fail (never skip) with the command that fixes it. A file lock
keeps parallel test workers (`pytest -n`) from running one installer twice at once.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from postgres_server import bin_dir

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's; the browser tests never download one
INSTALL_TIMEOUT_S = 1800  # apt-get on a slow mirror; a deadline, not a measure


def slurm_answers() -> bool:
    """True when `sinfo` reaches a slurmctld with a node up."""
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def postgres_installed() -> bool:
    """True when PostgreSQL's server binaries (`initdb`) are on this machine (tests/postgres_server.py)."""
    try:
        bin_dir()
    except RuntimeError:
        return False
    return True


def chromium_installed() -> bool:
    """True when Debian's Chromium is at `CHROMIUM`."""
    return Path(CHROMIUM).exists()


# name -> (is it there?, the .ci script that brings it up, what is wrong when it is not)
SERVICES: dict[str, tuple[Callable[[], bool], str, str]] = {
    "slurm": (slurm_answers, ".ci/start-slurm", "SLURM does not answer"),
    "postgres": (postgres_installed, ".ci/install-postgres", "PostgreSQL's server binaries are missing"),
    "chromium": (chromium_installed, ".ci/install-chromium", "Debian's Chromium is missing"),
}


def ensure(name: str, config: pytest.Config) -> None:
    """Bring service `name` up with its `.ci/` script when it is not there; fail the test if that fails."""
    present, script, wrong = SERVICES[name]
    if present():
        return
    if os.geteuid() != 0:
        pytest.fail(f"{wrong}; run `sudo {script}` first (the tests run it themselves as root)")
    lock_path = Path(tempfile.gettempdir()) / f"sweepwise-tests-{name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be running the same script
        if present():
            return
        _say(config, f"{wrong}: running {script}")
        try:
            done = subprocess.run(
                [str(REPO / script)], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, cwd=REPO
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{script} did not finish in {INSTALL_TIMEOUT_S} s; run it by hand to see why")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            pytest.fail(f"{script} failed (rc {done.returncode}): " + " | ".join(tail))
        if not present():
            pytest.fail(f"{script} ran, but still: {wrong}")


def _say(config: pytest.Config, line: str) -> None:
    """Print `line` to the terminal past pytest's output capture (installs can take minutes)."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(line, flush=True)
        return
    with capture.global_and_fixture_disabled():
        print(f"\n{line}", flush=True)
