"""Entrypoint jobs: the launcher's argv for `module.function` commands, and the in-job runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sweepwise.core.models import JobDefinition, JobTypes
from sweepwise.dispatchers.launch import (
    ENTRYPOINT_RUNNER,
    LaunchPlan,
    build_launch,
    entrypoint_target,
    write_job_files,
)
from sweepwise.schedulers.base import TrainAndEvalConfig, create_eval_job, create_training_job

NASTY = "a; rm -rf / $(x) 'q\" `echo hi` | > out && \\ * ~"

JOBS = textwrap.dedent(
    """
    from pydantic import BaseModel


    class Optim(BaseModel):
        name: str = "adam"
        lr: float = 0.1


    class Metrics(BaseModel):
        score: float
        note: str


    def train(run: str, group: str, steps: int, fast: bool = False, optim: Optim | None = None,
              layers: list[int] | None = None):
        optim = optim or Optim()
        return {"run": run, "group": group, "steps": steps, "fast": fast, "lr": optim.lr,
                "optim": optim.name, "layers": layers,
                "types": [type(v).__name__ for v in (run, steps, fast, optim.lr)]}


    def evaluate(policy_uri: str):
        return Metrics(score=0.5, note=policy_uri)


    def loose(run: str, **kwargs):
        return {"kwargs": kwargs}


    def collect(run: str, overrides: dict | None = None):
        return {"overrides": overrides}


    def boom(run: str):
        raise RuntimeError("kaput")


    def quiet(run: str):
        return 42
    """
)


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    (tmp_path / "myjobs.py").write_text(JOBS)
    return tmp_path


def _launch(jobs_dir: Path, **fields: Any) -> tuple[LaunchPlan, subprocess.CompletedProcess[str]]:
    fields.setdefault("run_id", "r1")
    job = JobDefinition(cwd=str(jobs_dir), **fields)
    plan = build_launch(job, experiment="exp", runs_root=jobs_dir / "runs")
    write_job_files(plan, job)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEPWISE_")}
    proc = subprocess.run(plan.argv, cwd=plan.cwd, env={**env, **plan.env}, capture_output=True, text=True)
    return plan, proc


def _result(plan: LaunchPlan) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(plan.result_path.read_text())
    return data


def test_entrypoint_job_receives_typed_values_and_its_return_value_is_the_result(jobs_dir: Path) -> None:
    plan, proc = _launch(
        jobs_dir,
        cmd="myjobs.train",
        args={"run": NASTY, "group": "g"},
        overrides={"steps": 7, "fast": True, "optim.lr": 0.01, "optim.name": "sgd", "layers": [4, 2]},
    )
    assert plan.argv[:4] == [sys.executable, "-m", ENTRYPOINT_RUNNER, "myjobs.train"]
    assert f"run={NASTY}" in plan.argv and "optim.lr=0.01" in plan.argv
    assert proc.returncode == 0, proc.stderr
    assert _result(plan) == {
        "run": NASTY,  # byte for byte: values never pass through a shell
        "group": "g",
        "steps": 7,
        "fast": True,
        "lr": 0.01,
        "optim": "sgd",
        "layers": [4, 2],
        "types": ["str", "int", "bool", "float"],
    }


def test_eval_entrypoint_gets_the_run_dir_when_training_reported_no_policy_uri(jobs_dir: Path) -> None:
    plan, proc = _launch(jobs_dir, cmd="myjobs.evaluate", type=JobTypes.LAUNCH_EVAL)
    assert proc.returncode == 0, proc.stderr
    assert _result(plan) == {"score": 0.5, "note": str(plan.run_dir)}  # a pydantic model result
    assert json.loads(plan.params_path.read_text()) == {"policy_uri": str(plan.run_dir)}
    assert json.loads(plan.env["SWEEPWISE_PARAMS"]) == {"policy_uri": str(plan.run_dir)}
    reported, proc = _launch(
        jobs_dir, run_id="r2", cmd="myjobs.evaluate", type=JobTypes.LAUNCH_EVAL, args={"policy_uri": "s3://m"}
    )
    assert proc.returncode == 0, proc.stderr
    assert _result(reported)["note"] == "s3://m"


def test_create_eval_job_leaves_policy_uri_to_the_launcher_unless_reported() -> None:
    from helpers import make_run
    from sweepwise.core import keys
    from sweepwise.core.models import JobStatus

    config = TrainAndEvalConfig(recipe_module="myjobs", experiment_id="g")
    run = make_run("g_trial_0001", JobStatus.TRAINING_DONE_NO_EVAL)
    assert create_eval_job(config, run).args == {}
    run.summary[keys.TRAIN_RESULT] = {"policy_uri": "file:///ckpt"}
    assert create_eval_job(config, run).args == {"policy_uri": "file:///ckpt"}
    assert create_training_job(config, "g_trial_0001").cmd == "myjobs.train"


def test_words_naming_no_parameter_go_to_kwargs_or_overrides(jobs_dir: Path) -> None:
    plan, proc = _launch(
        jobs_dir, cmd="myjobs.loose", args={"run": "r"}, overrides={"trainer.lr": 0.5, "n": 3}
    )
    assert proc.returncode == 0, proc.stderr
    assert _result(plan) == {"kwargs": {"trainer.lr": 0.5, "n": 3}}
    plan, proc = _launch(
        jobs_dir, run_id="r2", cmd="myjobs.collect", args={"run": "r"}, overrides={"a.b": "x"}
    )
    assert proc.returncode == 0, proc.stderr
    assert _result(plan) == {"overrides": {"a.b": "x"}}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"cmd": "myjobs.train", "args": {"run": "r", "group": "g"}, "overrides": {"steps": "many"}},
            "steps: ",
        ),
        (
            {"cmd": "myjobs.train", "args": {"run": "r", "group": "g"}, "overrides": {"stpes": 3}},
            "did you mean",
        ),
        ({"cmd": "myjobs.train", "args": {"run": "r", "group": "g"}}, "steps: is required by train"),
        ({"cmd": "myjobs.trian", "args": {"run": "r"}}, "did you mean train?"),
        ({"cmd": "nosuch.train"}, "cannot import module 'nosuch'"),
    ],
)
def test_bad_words_exit_2_with_one_line(jobs_dir: Path, fields: dict[str, Any], message: str) -> None:
    plan, proc = _launch(jobs_dir, **fields)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not plan.result_path.exists()


def test_an_exception_prints_its_traceback_and_exits_1(jobs_dir: Path) -> None:
    plan, proc = _launch(jobs_dir, cmd="myjobs.boom", args={"run": "r"})
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "RuntimeError: kaput" in proc.stderr
    assert not plan.result_path.exists()


def test_a_return_value_that_is_not_metrics_writes_no_result(jobs_dir: Path) -> None:
    plan, proc = _launch(jobs_dir, cmd="myjobs.quiet", args={"run": "r"})
    assert proc.returncode == 0
    assert "returned a int, not a dict of metrics" in proc.stderr
    assert not plan.result_path.exists()


def test_which_commands_are_entrypoints(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    assert entrypoint_target("pkg.recipes.train", tmp_path) == "pkg.recipes.train"
    assert entrypoint_target("train.py", tmp_path) is None  # a file: a command
    assert entrypoint_target("train", tmp_path) is None  # no dot
    assert entrypoint_target("pkg/recipes.train", tmp_path) is None
    assert entrypoint_target("python train.py", tmp_path) is None
    assert entrypoint_target(["pkg.recipes.train"], tmp_path) is None  # an argv list is always a command


def test_runner_usage() -> None:
    proc = subprocess.run([sys.executable, "-m", ENTRYPOINT_RUNNER], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("usage:")
