"""A sweep whose first trials all fail for one reason in the spec stops early (issue: a first
real sweep); trials failing for their own reasons never stop it. Judged from the jobs' own
marker files and the command's exit code and output."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from conftest import cli, status_json
from sweepwise.core.records import RunInfo
from sweepwise.engine.first_failures import misconfiguration

JOB = """
import json, os, sys
x = float(dict(word.split("=", 1) for word in sys.argv[1:])["x"])
with open(os.path.join(os.environ["MARKERS"], "train.txt"), "a") as f:
    f.write(os.environ["SWEEPWISE_RUN_ID"] + "\\n")
if os.environ.get("MIXED") and x < 0.5:
    sys.exit(3)
print("SWEEPWISE_RESULT " + json.dumps({"accuracy": x, "loss": 1 - x}))
"""


def _sweep(tmp_path: Path, name: str, mixed: bool) -> Path:
    (tmp_path / "job.py").write_text(JOB)
    (tmp_path / "markers").mkdir(exist_ok=True)
    env = {"MARKERS": str(tmp_path / "markers"), **({"MIXED": "1"} if mixed else {})}
    spec = {
        "name": name,
        "metric": "acc",  # the jobs report `accuracy`
        "max_parallel": 2,
        "scheduler": {"type": "batched_synced", "max_trials": 10, "batch_size": 2},
        "optimizer": {"type": "random", "seed": 0},
        "train": {"cmd": [sys.executable, "job.py"], "env": env},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps(spec))
    return path


def _started(tmp_path: Path) -> list[str]:
    path = tmp_path / "markers" / "train.txt"
    return path.read_text().split() if path.exists() else []


def _stopped_after(line: str, name: str, reason: str) -> int:
    """How many failed trials the halting line counts: the third, or the fourth when the two
    trials in flight failed in the same tick (max_parallel is 2)."""
    found = re.match(rf"error: experiment '{name}' stopped after (\d) trials: {re.escape(reason)}", line)
    assert found, line
    failed = int(found.group(1))
    assert failed in (3, 4), line
    return failed


@pytest.mark.slow
def test_a_wrong_metric_stops_the_sweep_after_three_trials(tmp_path: Path) -> None:
    result = cli("run", str(_sweep(tmp_path, "wrong", mixed=False)), "--quiet", cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    failed = _stopped_after(last, "wrong", "no job reported the metric 'acc'")
    assert "(they reported: accuracy, loss)" in last and "set metric:" in last
    started = _started(tmp_path)
    assert failed <= len(started) <= 4, started  # those that failed, and at most one in flight
    counts = status_json(tmp_path, "wrong")["counts"]
    assert counts["failed"] == failed and counts["completed"] == 0 and counts["pending"] == 0, counts


@pytest.mark.slow  # 10 trials; the wrong-metric test above stays in the fast subset
def test_trials_failing_for_different_reasons_do_not_stop_the_sweep(tmp_path: Path) -> None:
    # some jobs exit 3, the others miss the metric: not one reason, so every trial runs
    result = cli("run", str(_sweep(tmp_path, "mixed", mixed=True)), "--quiet", cwd=tmp_path)
    assert result.returncode == 1 and "ended with no completed trial" in result.stderr
    assert len(_started(tmp_path)) == 10
    assert status_json(tmp_path, "mixed")["counts"]["failed"] == 10


@pytest.mark.slow
def test_a_halted_sweep_whose_jobs_were_fixed_runs_on_when_run_again(tmp_path: Path) -> None:
    spec = _sweep(tmp_path, "fixed", mixed=False)
    assert cli("run", str(spec), "--quiet", cwd=tmp_path).returncode == 1
    job = tmp_path / "job.py"
    job.write_text(job.read_text().replace('{"accuracy": x,', '{"acc": x, "accuracy": x,'))
    again = cli("run", str(spec), "--quiet", cwd=tmp_path)  # the old failures do not stop it again
    assert again.returncode == 0, again.stderr
    counts = status_json(tmp_path, "fixed")["counts"]
    assert counts["completed"] >= 6 and counts["failed"] == 3, counts


@pytest.mark.slow
def test_a_job_that_cannot_set_itself_up_stops_the_sweep_after_three_trials(tmp_path: Path) -> None:
    path = _sweep(tmp_path, "broken", mixed=False)
    spec = json.loads(path.read_text()) | {"metric": "accuracy"}
    path.write_text(json.dumps(spec))
    (tmp_path / "job.py").write_text(JOB + "\nimport a_module_nobody_installed\n")
    result = cli("run", str(path), "--quiet", cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    failed = _stopped_after(last, "broken", "every job failed the same way")
    assert "No module named 'a_module_nobody_installed'" in last and "sweepwise logs" in last
    assert failed <= len(_started(tmp_path)) <= 4
    assert status_json(tmp_path, "broken")["counts"]["failed"] == failed


def _failed(*errors: str) -> list[RunInfo]:
    return [RunInfo(f"t{i}", has_failed=True, error=error) for i, error in enumerate(errors)]


@pytest.mark.parametrize(
    "error",
    [
        "exit code 1; last output: ModuleNotFoundError: No module named 'torchvision'",
        "exit code 1; last output: SyntaxError: invalid syntax",
        "exit code 1; last output: FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'",
        "exit code 127; last output: train.sh: line 2: pythn: command not found",
    ],
)
def test_the_same_set_up_error_three_times_is_a_misconfiguration(error: str) -> None:
    reason = misconfiguration(_failed(error, error, error))
    assert reason is not None and error in reason
    assert misconfiguration(_failed(error, error)) is None  # not yet three


@pytest.mark.parametrize(
    "errors",
    [
        # an error the parameters may cause, however often it repeats
        ["exit code 1; last output: ValueError: loss is nan"] * 3,
        ["exit code 3"] * 3,
        ["timed out after 60 s"] * 3,
        # set-up errors, but not the same one
        [
            "exit code 1; last output: ModuleNotFoundError: No module named 'a'",
            "exit code 1; last output: ModuleNotFoundError: No module named 'b'",
            "exit code 1; last output: ModuleNotFoundError: No module named 'a'",
        ],
    ],
)
def test_failures_a_job_may_have_for_its_own_reasons_never_stop_the_sweep(errors: list[str]) -> None:
    assert misconfiguration(_failed(*errors)) is None
