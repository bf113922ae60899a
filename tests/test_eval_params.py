"""An eval job receives its run's hyperparameters, as the training job does, three ways at once."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import cli, status_json

# Records what the eval job received, then scores the run from what training left.
RECORDING_EVAL = textwrap.dedent(
    """
    import json, os, sys
    run_dir = os.environ["SWEEPWISE_RUN_DIR"]
    seen = {
        "argv": dict(word.split("=", 1) for word in sys.argv[1:]),
        "env": json.loads(os.environ["SWEEPWISE_PARAMS"]),
        "file": json.load(open(os.environ["JOB_PARAMS_FILE"])),
    }
    json.dump(seen, open(os.path.join(run_dir, "eval_seen.json"), "w"))
    model = json.load(open(os.path.join(run_dir, "model.json")))
    json.dump({"score": model["x"] * 10}, open(os.path.join(run_dir, "result.json"), "w"))
    """
)

# Entrypoint jobs: `evaluate` takes no hyperparameter, `evaluate_x` takes the suggested `x`.
ENTRYPOINTS = textwrap.dedent(
    """
    import json, os

    def train(run: str, group: str, x: float) -> dict:
        json.dump({"x": x}, open(os.path.join(os.environ["SWEEPWISE_RUN_DIR"], "model.json"), "w"))
        return {"train_loss": 1 - x}

    def evaluate(policy_uri: str) -> dict:
        return {"score": json.load(open(os.path.join(policy_uri, "model.json")))["x"] * 10}

    def evaluate_x(policy_uri: str, x: float) -> dict:
        return {"score": x * 100}
    """
)


def test_an_eval_command_gets_the_suggestion_as_words_env_and_params_file(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    scheduler = {
        "type": "batched_synced",
        "max_trials": 2,
        "batch_size": 2,
        "train_overrides": {"epochs": 2},
        "eval_overrides": {"episodes": 5},
    }
    spec = make_sweep("evalparams", scheduler=scheduler)
    (tmp_path / "eval.py").write_text(RECORDING_EVAL)
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    rows = status_json(tmp_path, "evalparams")["runs"]
    assert [row["status"] for row in rows] == ["completed", "completed"]
    for row in rows:
        run_dir = tmp_path / "runs" / "evalparams" / row["run_id"]
        x = row["suggestion"]["x"]
        seen = json.loads((run_dir / "eval_seen.json").read_text())
        assert seen["argv"] == {"x": repr(x), "episodes": "5"}
        assert seen["env"] == seen["file"] == {"x": x, "episodes": 5}
        assert json.loads((run_dir / "train.params.json").read_text()) == {"epochs": 2, "x": x}
        assert json.loads((run_dir / "eval.params.json").read_text()) == {"x": x, "episodes": 5}


@pytest.mark.slow  # calling the function with the keys it takes: tests/test_runtime_call.py, fast
@pytest.mark.parametrize(("entrypoint", "factor"), [("evaluate", 10), ("evaluate_x", 100)])
def test_an_eval_function_gets_the_suggested_keys_it_takes(
    tmp_path: Path, make_sweep: Callable[..., Path], entrypoint: str, factor: int
) -> None:
    (tmp_path / "eval_jobs.py").write_text(ENTRYPOINTS)
    scheduler = {
        "type": "batched_synced",
        "max_trials": 2,
        "batch_size": 2,
        "recipe_module": "eval_jobs",
        "eval_entrypoint": entrypoint,
    }
    spec = make_sweep("evalfn", scheduler=scheduler, train=None, eval=None)
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    rows = status_json(tmp_path, "evalfn")["runs"]
    assert [row["status"] for row in rows] == ["completed", "completed"], rows
    for row in rows:
        assert row["score"] == pytest.approx(row["suggestion"]["x"] * factor)
        run_dir = tmp_path / "runs" / "evalfn" / row["run_id"]
        assert json.loads((run_dir / "params.json").read_text()) == {
            "policy_uri": str(run_dir),
            "x": row["suggestion"]["x"],
        }
