"""The command line as a new user reads it: help screens, messages, exit codes (issue 15)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import cli, markers, status_json
from faults_helpers import wait_for


def _line(text: str, start: str) -> str:
    """The first help line whose text (inside the panel's border) starts with `start`."""
    for line in text.splitlines():
        if line.strip("│ ").startswith(start):
            return line
    raise AssertionError(f"no line starting with {start!r} in:\n{text}")


def test_help_shows_placeholders_only_where_a_value_is_taken(tmp_path: Path) -> None:
    top = cli("--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert top.returncode == 0, top.stderr
    for command in ("exec", "run", "status", "best", "logs", "cancel"):
        _line(top.stdout, command + " ")
    assert "<" not in _line(top.stdout, "--help") and "<" not in _line(top.stdout, "--version")

    run = cli("run", "--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    assert "sweepwise run [OPTIONS] TARGET [WORDS]..." in run.stdout
    for flag in ("--quiet", "--help-recipe", "--help"):
        assert "<" not in _line(run.stdout, flag), flag
    assert "{" not in run.stdout and "<list[str]>" not in run.stdout and "<str>" not in run.stdout
    store = _line(run.stdout, "--store")
    assert "URL" in store and "[default: $SWEEPWISE_STORE or ./sweepwise.db]" in store

    logs = cli("logs", "--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert "[default: train]" in _line(logs.stdout, "--job")


def test_version(tmp_path: Path) -> None:
    result = cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "sweepwise 0.1.0\n"


def _one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_unknown_keys_and_bad_names_read_as_sentences(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep("exp")
    far = _one_line_error(cli("run", str(spec), "bogus=1", cwd=tmp_path), 2)
    assert "did you mean" not in far and "valid keys:" in far
    keys = far.split("valid keys: ", 1)[1].split(", ")
    assert len(keys) == len(set(keys)) and "eval" in keys
    near = _one_line_error(cli("run", str(spec), "max_trail=3", cwd=tmp_path), 2)
    assert "did you mean max_trials?" in near

    bad = make_sweep("Bad name!")
    named = _one_line_error(cli("run", str(bad), cwd=tmp_path), 2)
    assert "letters, digits, `_ . -`, starting with a letter or digit" in named and "a-z" not in named


NULL_EVAL = (
    "import json, os\n"
    'json.dump({"score": None}, open(os.path.join(os.environ["SWEEPWISE_RUN_DIR"], "result.json"), "w"))\n'
)


@pytest.mark.slow
def test_a_failed_eval_is_reported_as_the_eval_jobs(tmp_path: Path, make_sweep: Callable[..., Path]) -> None:
    (tmp_path / "eval_null.py").write_text(NULL_EVAL)
    spec = make_sweep(
        "nulls",
        scheduler={"type": "batched_synced", "max_trials": 1, "batch_size": 1},
        eval={"cmd": ["python", "eval_null.py"]},
    )
    cli("run", str(spec), "--quiet", cwd=tmp_path)
    run_id = status_json(tmp_path, "nulls")["runs"][0]["run_id"]

    evaluated = cli("logs", run_id, "--job", "eval", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "'score' is null" in evaluated.stderr and "it reported" not in evaluated.stderr
    assert "exit code 0, the result's 'score' is null" in evaluated.stderr
    trained = cli("logs", run_id, cwd=tmp_path)
    assert trained.returncode == 0 and "---" not in trained.stderr  # the train job did not fail

    _one_line_error(cli("logs", run_id, "-n", "-5", cwd=tmp_path), 2)


@pytest.mark.slow
def test_cancel_asks_which_when_a_run_and_an_experiment_share_a_name(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    one = {"type": "batched_synced", "max_trials": 1, "batch_size": 1}
    assert cli("run", str(make_sweep("a", scheduler=one)), "--quiet", cwd=tmp_path).returncode == 0
    run_id = status_json(tmp_path, "a")["runs"][0]["run_id"]
    assert cli("run", str(make_sweep(run_id, scheduler=one)), "--quiet", cwd=tmp_path).returncode == 0

    ambiguous = _one_line_error(cli("cancel", run_id, cwd=tmp_path), 1)
    assert "--experiment" in ambiguous and "--run" in ambiguous
    as_run = cli("cancel", run_id, "--run", cwd=tmp_path)
    assert as_run.returncode == 0 and "run" in as_run.stdout and "experiment" not in as_run.stdout
    as_experiment = cli("cancel", run_id, "--experiment", cwd=tmp_path)
    assert as_experiment.returncode == 0  # the experiment, finished, is left as it is
    assert (
        as_experiment.stdout == f"experiment {run_id!r} has already finished (complete); nothing to cancel\n"
    )


def test_a_sweep_with_no_completed_trial_exits_1_and_quiet_hides_alembic(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    markers_dir = str(tmp_path / "markers")
    spec = make_sweep(
        "hopeless",
        scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2},
        train={"cmd": ["python", "train.py"], "env": {"MARKERS": markers_dir, "FAIL_ABOVE": "-1"}},
    )
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: experiment 'hopeless' ended with no completed trial"), result.stderr
    assert "alembic" not in result.stderr.lower() and "Traceback" not in result.stderr


def _env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.slow)])
def test_sigterm_and_sighup_stop_the_controller_as_ctrl_c_does(
    tmp_path: Path, make_sweep: Callable[..., Path], signum: signal.Signals
) -> None:
    markers_dir = tmp_path / "markers"
    gate = tmp_path / "gate"  # the train job ends once it exists: after the controller has stopped
    spec = make_sweep(
        "stopped",
        scheduler={"type": "batched_synced", "max_trials": 1, "batch_size": 1},
        train={"cmd": ["python", "train.py"], "env": {"MARKERS": str(markers_dir), "TRAIN_GATE": str(gate)}},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: markers(tmp_path, "train"), "the train job to start")
        proc.send_signal(signum)
        proc.wait(timeout=60)  # the job holds the controller's stderr open until the gate opens
    finally:
        if proc.poll() is None:
            proc.kill()
        gate.touch()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines()[-1] == (
        "interrupted: jobs keep running; run the same command again to resume"
    ), stderr
    run_id = markers(tmp_path, "train")[0]
    wait_for(lambda: (tmp_path / "runs" / "stopped" / run_id / "model.json").exists(), "the job to finish")


@pytest.mark.slow
def test_twenty_simultaneous_starts_leave_one_controller_and_its_config(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    markers_dir = str(tmp_path / "markers")
    spec = make_sweep(
        "crowd",
        scheduler={"type": "batched_synced", "max_trials": 1, "batch_size": 1},
        train={"cmd": ["python", "train.py"], "env": {"MARKERS": markers_dir, "TRAIN_SLEEP": "2"}},
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet", f"max_parallel={i + 1}"],
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(20)
    ]
    outcomes = []
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        outcomes.append((proc.returncode, stderr))
    for code, stderr in outcomes:
        assert code in (0, 3) and "Traceback" not in stderr, stderr
    assert [code for code, _ in outcomes].count(0) >= 1
    written = json.loads((tmp_path / "runs" / "crowd" / "adaptive_config.json").read_text())
    writer = written["spec"]["max_parallel"] - 1
    assert outcomes[writer][0] == 0, "a refused run rewrote adaptive_config.json"
    assert not list((tmp_path / "runs" / "crowd").glob("*.tmp"))
