"""Soak: 300 real process trials, the controller SIGKILLed at 30 random moments, nothing lost or doubled.

Bounded to a few minutes: train jobs that sleep 0.2 s and trivial evals, `max_parallel` 4,
and kills at seeded random moments between 0.1 and 1 s after each start (the sleep
keeps the sweep from finishing before the 30th kill, however fast the controller is).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import cli, markers, status_json
from sweepwise.runtime.supervise import process_alive

pytestmark = pytest.mark.slow

TRIALS = 300
KILLS = 30


def test_soak_300_trials_30_kills(tmp_path: Path, make_sweep: Callable[..., Path]) -> None:
    spec = make_sweep(
        "soak",
        max_parallel=4,
        monitoring_interval=1,
        scheduler={"type": "async_capped", "max_trials": TRIALS, "max_concurrent_evals": 4},
        optimizer={"type": "random", "seed": 7},
        train={
            "cmd": ["python", "train.py"],
            "env": {"MARKERS": str(tmp_path / "markers"), "TRAIN_SLEEP": "0.2"},
        },
    )
    rng = random.Random(2026)
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    killed = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.1, 1.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    assert killed >= KILLS - 2  # nearly every start was killed mid-sweep

    final = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    rows = status_json(tmp_path, "soak")["runs"]
    assert len(rows) == TRIALS and {row["status"] for row in rows} == {"completed"}
    ids = {row["run_id"] for row in rows}
    trained, evaluated = Counter(markers(tmp_path, "train")), Counter(markers(tmp_path, "eval"))
    assert set(trained) == set(evaluated) == ids
    assert set(trained.values()) == {1} and set(evaluated.values()) == {1}  # 0 lost, 0 duplicated

    db = sqlite3.connect(tmp_path / "sweepwise.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    summaries = [json.loads(s) for (s,) in db.execute("SELECT summary FROM runs WHERE experiment = 'soak'")]
    assert all(s["adaptive/post_eval_processed"] is True for s in summaries)
    assert all(s["observation/score"] == s["eval/result"]["score"] for s in summaries)  # hook effect once
    leases = db.execute("SELECT COUNT(*) FROM leases WHERE experiment = 'soak'").fetchone()
    assert leases == (0,)

    for status_file in (tmp_path / "runs" / "soak").glob("*/*.status.json"):
        status = json.loads(status_file.read_text())
        assert status["state"] == "exited", status_file  # nothing left RUNNING
        assert not process_alive(status.get("supervisor_pid"), None)  # and no orphaned supervisor
        assert not process_alive(status.get("pid"), None)
