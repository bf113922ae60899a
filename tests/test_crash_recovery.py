"""Acceptance: kill -9 the controller anywhere, restart it, and nothing is lost or done twice.

The controller process is SIGKILLed at named points (through SWEEPWISE_CRASH_AT, which
makes the process kill itself exactly there) and from outside while jobs run; each
time `sweepwise run` is started again with the same spec.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import cli, markers, status_json
from sweepwise.stores.sql import SQLStore

pytestmark = pytest.mark.slow

CRASHES = [
    "after_intent:1",  # run rows written, nothing dispatched yet
    "mid_dispatch:2",  # half of a batch started
    "after_poll:4",  # events seen but not written
    "in_hook:2",  # a post-eval hook ran but its flag is not written
    "outside",  # SIGKILL from outside while training jobs run
    "after_intent:1",
    "in_hook:1",
]


def kill_while_training(spec: Path, cwd: Path) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=cwd,
        env={**os.environ, "TRAIN_SLEEP": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    before = len(markers(cwd, "train"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(markers(cwd, "train")) == before and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    return proc.wait()


def test_sigkill_at_many_points_loses_and_duplicates_nothing(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep("crashy", scheduler={"type": "batched_synced", "max_trials": 9, "batch_size": 3})
    env = {"TRAIN_SLEEP": "0.3"}
    killed = 0
    for crash in CRASHES:
        if crash == "outside":
            code = kill_while_training(spec, tmp_path)
        else:
            code = cli(
                "run", str(spec), "--quiet", cwd=tmp_path, env={**env, "SWEEPWISE_CRASH_AT": crash}
            ).returncode
        killed += code == -signal.SIGKILL
    assert killed >= 5  # most crash points were reached before the sweep ended

    final = cli("run", str(spec), "--quiet", cwd=tmp_path, env=env)
    assert final.returncode == 0, final.stderr
    rows = status_json(tmp_path, "crashy")["runs"]
    assert len(rows) == 9 and {row["status"] for row in rows} == {"completed"}
    trained, evaluated = Counter(markers(tmp_path, "train")), Counter(markers(tmp_path, "eval"))
    assert set(trained) == set(evaluated) == {row["run_id"] for row in rows}
    assert set(trained.values()) == {1}, trained
    assert set(evaluated.values()) == {1}, evaluated

    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    for run in store.fetch_runs({"group": "crashy"}):
        assert run.summary["adaptive/post_eval_processed"] is True
        assert run.summary["observation/score"] == run.summary["eval/result"]["score"]
        assert run.summary["observation/score"] == run.suggestion["x"] * 10


def test_a_second_controller_is_refused_while_one_runs(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep("single", scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2})
    first = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=tmp_path,
        env={**os.environ, "TRAIN_SLEEP": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not markers(tmp_path, "train"):
            time.sleep(0.05)
        second = cli("run", str(spec), "--quiet", cwd=tmp_path)
        assert second.returncode == 3, second.stderr
        assert "already being run" in second.stderr
    finally:
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert sorted(Counter(markers(tmp_path, "train")).values()) == [1, 1]
