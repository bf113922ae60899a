"""Acceptance: a failing train script gives a FAILED run with its exit code and output; the sweep goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli, markers, status_json

pytestmark = pytest.mark.slow


def test_failed_training_is_reported_and_the_sweep_goes_on(tmp_path: Path, make_sweep) -> None:  # type: ignore[no-untyped-def]
    spec = make_sweep("fails")
    (tmp_path / "train.py").write_text(
        (tmp_path / "train.py").read_text().replace('os.environ.get("FAIL_ABOVE", "2")', '"0.5"')
    )
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = status_json(tmp_path, "fails")["runs"]
    failed = [row for row in rows if row["status"] == "failed"]
    completed = [row for row in rows if row["status"] == "completed"]
    assert failed and completed and len(rows) == 6
    for row in failed:
        assert row["suggestion"]["x"] > 0.5
        assert row["train_exit_code"] == 3
        assert "exit code 3" in row["error"] and "training diverged" in row["error"]
        assert row["run_id"] not in markers(tmp_path, "eval")

    human = cli("status", "fails", cwd=tmp_path)
    assert "training diverged" in human.stdout

    logs = cli("logs", failed[0]["run_id"], "--job", "train", cwd=tmp_path)
    assert logs.returncode == 0
    assert "training diverged: loss is nan" in logs.stdout
    assert "exit code 3" in logs.stderr
