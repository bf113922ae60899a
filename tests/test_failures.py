"""Acceptance: a failing train script gives a FAILED run with its exit code and output; the sweep goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
    assert "exit code 3" in logs.stderr and logs.stderr.count("exit code 3") == 1, logs.stderr


def test_text_from_jobs_and_specs_is_shown_as_written(tmp_path: Path, make_sweep) -> None:  # type: ignore[no-untyped-def]
    """A job's output and a parameter's values are the user's text, never rich markup: a
    `[/data]` in a traceback once made `sweepwise status` crash on a closing tag."""
    spec = make_sweep(
        "brackets",
        scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2},
        parameters={"tag": {"distribution": "categorical", "choices": ["[/]", "[bold red]b"]}},
    )
    (tmp_path / "train.py").write_text(
        "import json, os, sys\n"
        "tag = dict(word.split('=', 1) for word in sys.argv[1:])['tag']\n"
        "if tag == '[/]':\n"
        "    print(\"KeyError: '[/data]' not in [red]cache[/red]\")\n"
        "    sys.exit(3)\n"
        "json.dump({'x': 0.5}, open(os.path.join(os.environ['SWEEPWISE_RUN_DIR'], 'model.json'), 'w'))\n"
    )
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["suggestion"]["tag"]: row for row in status_json(tmp_path, "brackets")["runs"]}
    assert rows["[/]"]["status"] == "failed" and rows["[bold red]b"]["status"] == "completed"

    human = cli("status", "brackets", cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    assert "KeyError: '[/data]' not in [red]cache[/red]" in human.stdout
    assert "tag=[/]" in human.stdout and "tag=[bold red]b" in human.stdout
    best = cli("best", "brackets", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    assert "tag = [bold red]b" in best.stdout
    every = cli("status", cwd=tmp_path)
    assert every.returncode == 0 and "brackets" in every.stdout, every.stderr


@pytest.mark.parametrize("where", ["spec", "word"])
def test_retries_on_is_a_key_as_written_in_yaml(tmp_path: Path, make_sweep, where: str) -> None:  # type: ignore[no-untyped-def]
    """YAML 1.1 reads a bare `on` as True: `retries: {on: [failed]}` once failed to load."""
    spec = make_sweep("again", scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2})
    (tmp_path / "train.py").write_text(
        (tmp_path / "train.py").read_text().replace('os.environ.get("FAIL_ABOVE", "2")', '"-1"')
    )
    words = []
    if where == "spec":
        spec.write_text(spec.read_text() + "retries: {max_attempts: 2, on: [failed]}\n")
    else:
        words = ["retries={max_attempts: 2, on: [failed]}"]
    result = cli("run", str(spec), *words, "--quiet", cwd=tmp_path)
    assert result.returncode == 1 and "ended with no completed trial" in result.stderr, result.stderr
    rows = status_json(tmp_path, "again")["runs"]
    assert [row["status"] for row in rows] == ["failed", "failed"]
    started = markers(tmp_path, "train")
    assert sorted(started) == sorted(row["run_id"] for row in rows for _ in range(2))  # each ran twice


FIFO_JOB = """
import json, os, sys
kind = dict(word.split("=", 1) for word in sys.argv[1:])["kind"]
run_dir = os.environ["SWEEPWISE_RUN_DIR"]
names = {"result": "result.json", "metrics": "train.metrics.jsonl", "log": "train.log"}
path = os.path.join(run_dir, names[kind])
if os.path.lexists(path):
    os.unlink(path)
os.mkfifo(path)  # whoever opens it to read waits for a writer that never comes
if kind != "result":
    json.dump({"score": 1.0}, open(os.path.join(run_dir, "result.json"), "w"))
"""


def test_a_job_that_leaves_a_fifo_where_its_files_go_does_not_hang_the_sweep(tmp_path: Path) -> None:
    """A job owns its run directory: a FIFO in place of its result, reports or log once
    blocked the controller for ever in open()."""
    (tmp_path / "train.py").write_text(FIFO_JOB)
    spec = {
        "name": "fifo",
        "max_parallel": 3,
        "monitoring_interval": 0.5,
        "scheduler": {"type": "grid_search"},
        "optimizer": {"type": "grid"},
        "train": {"cmd": ["python", "train.py"]},
        "parameters": {"kind": {"choices": ["result", "metrics", "log"]}},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    result = cli("run", "sweep.yaml", "--quiet", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {row["suggestion"]["kind"]: row for row in status_json(tmp_path, "fifo")["runs"]}
    assert rows["result"]["status"] == "failed"
    assert "train.result.json cannot be read (not a regular file)" in rows["result"]["error"]
    assert (rows["metrics"]["status"], rows["metrics"]["score"]) == ("completed", 1.0)
    assert (rows["log"]["status"], rows["log"]["score"]) == ("completed", 1.0)
    for command in (("status", "fifo"), ("logs", rows["log"]["run_id"]), ("export", "fifo")):
        shown = cli(*command, cwd=tmp_path, timeout=60)
        assert shown.returncode in (0, 1) and "Traceback" not in shown.stderr, shown.stderr
