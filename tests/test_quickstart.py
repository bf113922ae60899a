"""Acceptance: the README's quickstart runs a real sweep, resumes as a no-op, and reports in JSON;
the early-stopping example stops some of the same jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, cli, markers, status_json

pytestmark = pytest.mark.slow


def test_quickstart_completes_and_a_second_run_does_nothing(tmp_path: Path) -> None:
    spec = REPO / "examples" / "quickstart" / "sweep.yaml"
    first = cli("run", str(spec), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "best trial: quickstart_trial_" in first.stdout
    assert (tmp_path / "sweepwise.db").exists()
    assert (tmp_path / "runs" / "quickstart" / "adaptive_config.json").exists()

    status = status_json(tmp_path, "quickstart")
    assert status["status"] == "complete"
    assert [row["status"] for row in status["runs"]] == ["completed"] * 8
    for row in status["runs"]:
        run_dir = tmp_path / "runs" / "quickstart" / row["run_id"]
        assert (run_dir / "model.npz").exists() and (run_dir / "eval.log").exists()
        assert 0.0 <= row["score"] <= 1.0 and row["cost"] > 0
        assert set(row["suggestion"]) == {"lr", "steps", "width", "l2"}

    best = json.loads(cli("best", "quickstart", "--json", cwd=tmp_path).stdout)
    assert best["score"] == max(row["score"] for row in status["runs"])
    assert best["parameters"] == next(
        r["suggestion"] for r in status["runs"] if r["run_id"] == best["run_id"]
    )

    logs_before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("*.log"))
    again = cli("run", str(spec), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("*.log")) == logs_before
    assert len(status_json(tmp_path, "quickstart")["runs"]) == 8


def test_the_early_stopping_example_stops_lagging_trainings_before_their_end(tmp_path: Path) -> None:
    # The quickstart's jobs, with ASHA judging the training loss: a stopped run is never
    # evaluated, and stopped trainings end before their last step, when train.py saves its
    # model (one stopped at its last report may get there before the stop does: still STOPPED).
    result = cli("run", str(REPO / "examples" / "early_stopping" / "sweep.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "but not 'loss'" not in result.stderr  # its jobs report what its stopper judges
    runs = status_json(tmp_path, "early-stopping")["runs"]
    statuses = [row["status"] for row in runs]
    assert len(runs) == 16 and set(statuses) == {"completed", "stopped"}, statuses
    saved = {}
    for row in runs:
        run_dir = tmp_path / "runs" / "early-stopping" / row["run_id"]
        finished = row["status"] == "completed"
        saved[row["run_id"]] = (run_dir / "model.npz").exists()
        assert (run_dir / "eval.log").exists() is finished and (saved[row["run_id"]] or not finished)
        assert row["score"] is None if not finished else 0.0 <= row["score"] <= 1.0
    assert any(not saved[row["run_id"]] for row in runs if row["status"] == "stopped"), saved
    best = json.loads(cli("best", "early-stopping", "--json", cwd=tmp_path).stdout)
    assert best["score"] == max(row["score"] for row in runs if row["status"] == "completed")


def test_status_and_best_read_a_sweep_running_in_another_process(tmp_path: Path, make_sweep) -> None:  # type: ignore[no-untyped-def]
    spec = make_sweep("live", scheduler={"type": "batched_synced", "max_trials": 3, "batch_size": 3})
    env = {"TRAIN_SLEEP": "3"}
    import os

    proc = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=tmp_path,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        seen_running = False
        while time.monotonic() < deadline and not seen_running:
            if (tmp_path / "sweepwise.db").exists():
                result = cli("status", "live", "--json", cwd=tmp_path)
                if result.returncode == 0:
                    rows = json.loads(result.stdout)["runs"]
                    seen_running = any(row["status"] == "in_training" for row in rows)
                    if seen_running:
                        assert all(set(row["suggestion"]) == {"x"} for row in rows)
                        best = cli("best", "live", "--json", cwd=tmp_path)
                        # nothing scored yet: the normal shape with nulls, and exit 1
                        row = json.loads(best.stdout)
                        assert best.returncode == 1 and row["run_id"] is None and row["metric"] == "score"
                        assert "no completed run with a score yet" in best.stderr
            time.sleep(0.2)
        assert seen_running
    finally:
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert sorted(markers(tmp_path, "train")) == sorted(markers(tmp_path, "eval"))
