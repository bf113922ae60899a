"""Acceptance: `sweepwise run package.module.function key=value ...` runs the example recipes end to end.

Each test works in a scratch directory holding a copy of `examples/`, so nothing is
written into the repository.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, cli, status_json


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _status(cwd: Path, experiment: str, store: str) -> dict[str, Any]:
    result = cli("status", experiment, "--json", "--store", store, cwd=cwd)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.slow
def test_train_and_eval_recipe_runs_entrypoint_jobs_to_completion(workdir: Path) -> None:
    result = cli(
        "run",
        "examples.recipes.sweeps.train_and_eval",
        "max_trials=3",
        "dispatcher_type=local",
        "train_overrides.trainer.steps=30",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    assert "best trial: recipes_train_and_eval_trial_" in result.stdout
    status = status_json(workdir, "recipes_train_and_eval")
    assert status["status"] == "complete"
    assert [row["status"] for row in status["runs"]] == ["completed"] * 3
    for row in status["runs"]:
        run_dir = workdir / "runs" / "recipes_train_and_eval" / row["run_id"]
        assert (run_dir / "model.npz").exists()
        assert json.loads((run_dir / "train.params.json").read_text()) == {
            "run": row["run_id"],
            "group": "recipes_train_and_eval",
            "trainer.steps": 30,
        }
        # training reported no policy_uri, so the eval entrypoint got the run dir
        assert json.loads((run_dir / "eval.params.json").read_text()) == {"policy_uri": str(run_dir)}
        assert 0.0 <= json.loads((run_dir / "eval.result.json").read_text())["score"] <= 1.0
        assert "train_loss" in json.loads((run_dir / "train.result.json").read_text())
    config = json.loads((workdir / "runs" / "recipes_train_and_eval" / "adaptive_config.json").read_text())
    assert config["scheduler_config"]["recipe_module"] == "examples.recipes.jobs"
    assert config["spec"]["scheduler"] == {"type": "train_and_eval"}


@pytest.mark.slow
def test_batched_synced_recipe_sweeps_with_overrides_a_store_and_a_runs_dir(workdir: Path) -> None:
    store = f"sqlite:///{workdir / 'elsewhere.db'}"
    words = ["batch_size=2", "scheduler.max_trials=4", "runs_dir=out", "--store", store]
    result = cli("run", "examples.recipes.sweeps.batched_synced", *words, cwd=workdir)
    assert result.returncode == 0, result.stderr
    status = _status(workdir, "recipes_batched_synced", store)
    assert [row["status"] for row in status["runs"]] == ["completed"] * 4
    for row in status["runs"]:
        assert set(row["suggestion"]) == {"trainer.lr", "trainer.hidden", "trainer.steps"}
        params = json.loads(
            (workdir / "out" / "recipes_batched_synced" / row["run_id"] / "train.params.json").read_text()
        )
        assert params == {"run": row["run_id"], "group": "recipes_batched_synced", **row["suggestion"]}
    assert not (workdir / "sweepwise.db").exists() and not (workdir / "runs").exists()

    again = cli("run", "examples.recipes.sweeps.batched_synced", *words, cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    assert len(_status(workdir, "recipes_batched_synced", store)["runs"]) == 4


def test_help_recipe_lists_parameters_and_overridable_fields(workdir: Path) -> None:
    result = cli("run", "examples.recipes.sweeps.batched_synced", "--help-recipe", cwd=workdir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "usage: sweepwise run examples.recipes.sweeps.batched_synced [key=value ...]" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    assert lines["batch_size"] == ["int", "4"]
    assert lines["dispatcher_type"][:2] == ["str", "'local'"]
    assert lines["max_parallel"] == ["int", "4"]
    assert lines["recipe_module"] == ["str", "|", "None", "'examples.recipes.jobs'"]
    assert lines["train_overrides"] == ["dict[str,", "Any]", "{}"]
    assert "scheduler fields (BatchedSyncedSchedulerConfig" in out
    assert not list(workdir.glob("*.db"))


@pytest.mark.parametrize(  # a subprocess each: the fast subset runs four of them
    ("words", "message"),
    [
        (["batch_sise=2"], "batch_sise: unknown key; did you mean batch_size or scheduler.batch_size?"),
        pytest.param(
            ["batch_size=two"], "batch_size: input should be a valid integer", marks=pytest.mark.slow
        ),
        pytest.param(
            ["batch_size=0"], "batch_size: input should be greater than or equal to 1", marks=pytest.mark.slow
        ),
        pytest.param(
            ["scheduler.batch_siz=2"],
            "scheduler.batch_siz: unknown field of BatchedSyncedSchedulerConfig",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["max_parallel=many"], "max_parallel: input should be a valid integer", marks=pytest.mark.slow
        ),
        (["dispatcher_type=cloud"], "dispatcher_type: unknown dispatcher 'cloud'"),
        pytest.param(
            ["recipe_module=examples.nope"],
            "scheduler.recipe_module: cannot import module 'examples.nope'",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["eval_entrypoint=evaluat"],
            "scheduler.eval_entrypoint: module 'examples.recipes.jobs' has no",
            marks=pytest.mark.slow,
        ),
        (["parameters.trainer.lr.min=-1"], "scheduler.parameters.trainer.lr"),
        pytest.param(["experiment_id=bad/name"], "scheduler.experiment_id: ", marks=pytest.mark.slow),
        (["batch_size"], "batch_size: expected key=value"),
    ],
)
def test_bad_words_fail_in_one_line_before_anything_is_written(
    workdir: Path, words: list[str], message: str
) -> None:
    result = cli("run", "examples.recipes.sweeps.batched_synced", *words, cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {result.stderr.removeprefix('error: ').strip()}\n"
    assert message in result.stderr
    assert not list(workdir.glob("*.db")) and not (workdir / "runs").exists()


def test_bad_targets(workdir: Path) -> None:
    (workdir / "odd_recipes.py").write_text("def not_a_tool(n: int = 1):\n    return n\n")
    cases = [
        ("examples.recipes.sweeps.nope", "module 'examples.recipes.sweeps' has no function 'nope'"),
        ("examples.recipez.sweeps.train", "cannot import module 'examples.recipez.sweeps'"),
        ("odd_recipes.not_a_tool", "odd_recipes.not_a_tool: returned int, not an AdaptiveTool"),
        ("missing.yaml", "missing.yaml: no such spec file"),
    ]
    for target, message in cases:
        result = cli("run", target, cwd=workdir)
        assert result.returncode == 2, (target, result.stderr)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    yaml_help = cli("run", str(REPO / "examples" / "quickstart" / "sweep.yaml"), "--help-recipe", cwd=workdir)
    assert yaml_help.returncode == 2 and "is not a recipe" in yaml_help.stderr
    assert not list(workdir.glob("*.db"))
