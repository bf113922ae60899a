"""The command line as a new user reads it: help screens, messages, exit codes (issue 15)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from conftest import cli, status_json


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
    assert as_experiment.returncode == 0 and as_experiment.stdout.startswith("cancelled experiment")
