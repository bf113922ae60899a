"""Acceptance: bad input gets one line naming the field, exit code 2, and nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import cli, markers

CASES: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("unknown scheduler", {"scheduler": {"type": "bogus"}}, [], "scheduler.type"),
    ("unknown dispatcher", {"dispatcher": "k8s"}, [], "dispatcher"),
    (
        "min >= max",
        {"parameters": {"x": {"distribution": "uniform", "min": 1, "max": 0}}},
        [],
        "parameters.x",
    ),
    (
        "log min <= 0",
        {"parameters": {"lr": {"distribution": "log_normal", "min": 0, "max": 1}}},
        [],
        "parameters.lr",
    ),
    ("empty choices", {"parameters": {"act": {"choices": []}}}, [], "parameters.act"),
    ("missing command", {"train": {"cmd": ["no-such-program-xyz"]}}, [], "train.cmd"),
    ("missing script", {"eval": {"cmd": ["python", "nope.py"]}}, [], "eval.cmd"),
    ("unknown word", {}, ["bacth_size=3"], "bacth_size"),
    ("unknown field", {"max_paralel": 3}, [], "max_paralel"),
    ("bad value", {}, ["max_parallel=lots"], "max_parallel"),
    ("unknown optimizer", {"optimizer": {"type": "magic"}}, [], "optimizer.type"),
]

FAST_CASES = {"unknown scheduler", "min >= max", "missing command"}
"""The cases the fast subset runs (a subprocess each); the full suite runs them all."""


@pytest.mark.parametrize(
    ("case", "overrides", "words", "field"),
    [case if case[0] in FAST_CASES else pytest.param(*case, marks=pytest.mark.slow) for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_spec_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path,
    make_sweep: Callable[..., Path],
    case: str,
    overrides: dict[str, Any],
    words: list[str],
    field: str,
) -> None:
    spec = make_sweep(**overrides)
    result = cli("run", str(spec), *words, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and field in lines[0]
    assert not (tmp_path / "sweepwise.db").exists()
    assert not (tmp_path / "runs").exists()


def test_malformed_yaml(tmp_path: Path) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text("name: x\nparameters: {x: [1, 2\n")
    result = cli("run", str(spec), cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "malformed YAML" in result.stderr
    assert not (tmp_path / "sweepwise.db").exists()


@pytest.mark.slow  # tests/test_cli_reading.py checks the same suggestion in the fast subset
def test_unknown_cli_word_suggests_the_closest_key(tmp_path: Path, make_sweep: Callable[..., Path]) -> None:
    result = cli("run", str(make_sweep()), "max_trails=3", cwd=tmp_path)
    assert result.returncode == 2 and "did you mean max_trials" in result.stderr


def test_shell_metacharacters_reach_the_job_literally(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    nasty = "a; touch pwned $(touch pwned2) `touch pwned3` 'q\" | cat > pwned4 & x=1"
    spec = make_sweep(
        "meta",
        scheduler={"type": "batched_synced", "max_trials": 1, "batch_size": 1},
        parameters={"x": {"distribution": "uniform", "min": 0, "max": 1}, "tag": {"choices": [nasty]}},
    )
    (tmp_path / "train.py").write_text(
        (tmp_path / "train.py").read_text()
        + "\nopen(os.path.join(os.environ['MARKERS'], 'argv.txt'), 'w').write(params['tag'])\n"
    )
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "markers" / "argv.txt").read_text() == nasty
    assert not list(tmp_path.glob("pwned*")) and not list((tmp_path / "markers").glob("pwned*"))
    assert len(markers(tmp_path, "train")) == 1


def test_a_scheduler_setting_of_another_scheduler_lists_the_keys_a_user_can_write(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep(scheduler={"type": "async_capped", "max_trials": 4, "batch_size": 2})
    result = cli("run", str(spec), cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: scheduler.batch_size: unknown field; valid keys: ")
    keys = line.split("valid keys: ")[1].split(", ")
    assert {"max_trials", "max_concurrent_evals", "type"} <= set(keys), line
    assert not {"eval_entrypoint", "train_entrypoint", "recipe_module", "experiment_id", "train"} & set(
        keys
    ), line
    assert not (tmp_path / "sweepwise.db").exists()
