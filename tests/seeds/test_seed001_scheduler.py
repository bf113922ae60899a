"""Seed 001 (aid2e/scheduler_epic's `AxScheduler`) run unchanged on `sweepwise.ax`.

The examples are written as the seed's docs write them (its class names, call order and
config spellings), with only the import changed, and run for real: a real Ax client,
function objectives in `JobLibRunner`'s process pool, a SQLite store in `tmp_path`, and
the `sweepwise` command line as a subprocess. Two departures, both Ax's: Ax 1.3 no longer
takes the seed's `objectives={"objective": "minimize"}` (we pass `ObjectiveProperties`),
and `JobLibRunner(n_jobs=-1)` is written `n_jobs=2`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import tomllib
import warnings
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, cli
from sweepwise.ax import AxScheduler, JobLibRunner, LocalRunner, TrialState
from sweepwise.core.errors import ConfigError, SweepwiseWarning
from sweepwise.stores.sql import SQLStore

FINISHED = [TrialState.COMPLETED, TrialState.FAILED, TrialState.CANCELLED]  # as the seed lists them


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def objective_function(parameterization: dict[str, Any]) -> dict[str, Any]:
    """The seed's quickstart objective."""
    x = parameterization["x"]
    y = parameterization["y"]
    return {"objective": (x - 0.5) ** 2 + (y - 0.5) ** 2}


def rosenbrock(parameterization: dict[str, Any]) -> dict[str, Any]:
    """The seed's batch tutorial objective; each call leaves a line in $SEED001_CALLS."""
    x = parameterization["x"]
    y = parameterization["y"]
    with open(os.environ["SEED001_CALLS"], "a") as calls:
        calls.write(f"{x},{y}\n")
    a = 1
    b = 100
    return {"objective": (a - x) ** 2 + b * (y - x**2) ** 2}


def gated_objective(parameterization: dict[str, Any]) -> dict[str, Any]:
    """The quickstart objective, once the file $SEED001_GATE exists (a trial we hold running)."""
    gate = Path(os.environ["SEED001_GATE"])
    while not gate.exists():
        time.sleep(0.01)
    return objective_function(parameterization)


def no_objective(parameterization: dict[str, Any]) -> dict[str, Any]:
    return {"something_else": 1.0}


def seed_ax_client(name: str) -> Any:
    """The seed's `AxClient` set-up (its objective spelled as Ax 1.3 requires)."""
    from ax.service.ax_client import AxClient, ObjectiveProperties

    ax_client = AxClient()
    ax_client.create_experiment(
        name=name,
        parameters=[
            {"name": "x", "type": "range", "bounds": [0.0, 1.0], "value_type": "float"},
            {"name": "y", "type": "range", "bounds": [0.0, 1.0], "value_type": "float"},
        ],
        objectives={"objective": ObjectiveProperties(minimize=True)},
    )
    return ax_client


def client(name: str) -> Any:
    """The same experiment on the current `ax.Client`."""
    from ax import Client, RangeParameterConfig

    ax_client = Client(random_seed=0)
    ax_client.configure_experiment(
        name=name,
        parameters=[
            RangeParameterConfig(name="x", bounds=(0.0, 1.0), parameter_type="float"),
            RangeParameterConfig(name="y", bounds=(0.0, 1.0), parameter_type="float"),
        ],
    )
    ax_client.configure_optimization(objective="-objective")
    return ax_client


def seed_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "monitoring_interval": 0.05,
        "job_output_dir": str(tmp_path / "ax_scheduler_output"),
        "store": f"sqlite:///{tmp_path / 's.db'}",
    }


def stored(tmp_path: Path, experiment: str) -> tuple[str, dict[str, Any]]:
    """The experiment's status and its runs by run id, as the store has them."""
    with SQLStore(seed_config(tmp_path)["store"]) as store:
        record = store.get_experiment(experiment)
        assert record is not None
        return record.status, {run.run_id: run for run in store.fetch_runs({"group": experiment})}


def ax_means(ax_client: Any) -> dict[int, list[float]]:
    """Every mean Ax holds for the objective, by trial index."""
    experiment = getattr(ax_client, "_experiment", None) or ax_client.experiment
    frame = experiment.lookup_data().df
    means: dict[int, list[float]] = {}
    for row in frame[frame["metric_name"] == "objective"].itertuples():
        means.setdefault(int(row.trial_index), []).append(float(row.mean))
    return means


def assert_cli_shows(tmp_path: Path, experiment: str, completed: int) -> None:
    """`status` shows the experiment complete with every score; `best` prints the lowest."""
    env = {"SWEEPWISE_STORE": seed_config(tmp_path)["store"]}
    as_json = cli("status", experiment, "--json", cwd=tmp_path, env=env)
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["status"] == "complete"
    scored = [row for row in payload["runs"] if row["status"] == "completed"]
    assert len(scored) == completed
    assert all(isinstance(row["score"], float) and row["cost"] >= 0 for row in scored)
    lowest = min(scored, key=lambda row: row["score"])

    human = cli("status", experiment, cwd=tmp_path, env={**env, "COLUMNS": "200"})  # no folded cells
    assert human.returncode == 0, human.stderr
    assert f"{experiment} (complete)" in human.stdout
    for row in scored:
        assert f"{row['score']:.4g}" in human.stdout

    best = cli("best", experiment, cwd=tmp_path, env=env)
    assert best.returncode == 0, best.stderr
    assert f"best trial: {lowest['run_id']}" in best.stdout
    assert "objective=" in best.stdout and "(minimize)" in best.stdout
    best_json = cli("best", experiment, "--json", cwd=tmp_path, env=env)
    row = json.loads(best_json.stdout)
    assert (row["run_id"], row["metric"], row["goal"]) == (lowest["run_id"], "objective", "minimize")
    assert row["parameters"] == lowest["suggestion"]


@pytest.mark.slow
def test_quickstart_run_optimization_is_scored_in_the_store(tmp_path: Path) -> None:
    # 1. Initialize Ax client and define parameter space
    ax_client = seed_ax_client("my_experiment")
    # 3. Create a runner for local execution
    runner = JobLibRunner(n_jobs=2)
    # 4. Create the scheduler
    scheduler = AxScheduler(ax_client, runner, config=seed_config(tmp_path))
    # 5. Set the objective function
    scheduler.set_objective_function(objective_function)
    # 6. Run the optimization
    best_params = scheduler.run_optimization(max_trials=10)
    print("Best parameters:", best_params)

    assert isinstance(best_params, dict) and set(best_params) == {"x", "y"}
    status, runs = stored(tmp_path, "my_experiment")
    assert status == "complete" and len(runs) == 10
    means = ax_means(ax_client)
    for index, trial in scheduler.trials.items():
        summary = runs[trial.run_id].summary
        assert summary["observation/score"] == pytest.approx(means[index][0])
        assert summary["observation/cost"] == pytest.approx(trial.ended_at - trial.started_at)
    assert objective_function(best_params)["objective"] == pytest.approx(min(m[0] for m in means.values()))
    assert_cli_shows(tmp_path, "my_experiment", completed=10)
    scheduler.close()


@pytest.mark.slow  # the manual loop: tests/test_ax_scheduler.py, in the fast subset
def test_manual_loop_monitor_returns_and_complete_trial_collects_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    monkeypatch.setenv("SEED001_GATE", str(gate))
    ax_client = client("manual_loop")
    scheduler = AxScheduler(ax_client, JobLibRunner(n_jobs=2), config=seed_config(tmp_path))
    scheduler.set_objective_function(gated_objective)

    trial_index = scheduler.get_next_trial()
    assert trial_index is not None
    assert scheduler.trials[trial_index].status is TrialState.CREATED
    trial = scheduler.run_trial(trial_index)
    scheduler.monitor_trials()  # one pass: returns although the trial waits on the gate
    assert trial.check_status() is TrialState.RUNNING
    assert trial.get_results() == {}
    assert trial_index not in ax_means(ax_client)
    status, runs = stored(tmp_path, "manual_loop")
    assert status == "running" and runs[trial.run_id].status.key == "in_training"

    gate.touch()
    scheduler.complete_trial(trial_index)  # no raw_data: waits for the job and takes its result
    expected = objective_function(trial.parameters)["objective"]
    assert trial.check_status() is TrialState.COMPLETED
    assert trial.get_results() == {"objective": pytest.approx(expected)}
    assert ax_means(ax_client)[trial_index] == [pytest.approx(expected)]

    # The seed's loop: run, monitor until the trial has finished, then complete it.
    for _ in range(2):
        trial_index = scheduler.get_next_trial()
        assert trial_index is not None
        scheduler.run_trial(trial_index)
        while scheduler.trials[trial_index].check_status() not in FINISHED:
            scheduler.monitor_trials()
        scheduler.complete_trial(trial_index)  # monitor_trials completed it already: no second datum
    assert [len(means) for means in ax_means(ax_client).values()] == [1, 1, 1]
    assert all(trial.status is TrialState.COMPLETED for trial in scheduler.trials.values())

    assert trial.trial_id == f"trial_{trial.index}" and trial.state is trial.status
    assert "scheduler" not in repr(trial)
    assert dataclasses.replace(trial, scheduler=None) == trial
    with pytest.raises(ValueError, match="has not been run"):  # the seed raises ValueError too
        scheduler.complete_trial(scheduler.get_next_trial())  # type: ignore[arg-type]
    assert stored(tmp_path, "manual_loop")[0] == "complete"
    assert_cli_shows(tmp_path, "manual_loop", completed=3)
    scheduler.close()


WAITING_SCRIPT = """
import os, time
while not os.path.exists({gate!r}):
    time.sleep(0.01)
"""


def test_a_manual_experiment_completes_when_idle_reopens_and_close_stops_what_runs(tmp_path: Path) -> None:
    ax_client = client("idle_rule")
    scheduler = AxScheduler(ax_client, LocalRunner(n_jobs=2), config=seed_config(tmp_path))
    scheduler.set_objective_function(no_objective)
    index = scheduler.get_next_trial()
    assert index is not None
    failed = scheduler.run_trial(index)
    scheduler.complete_trial(index)  # the job's result lacks the objective: the trial fails
    assert failed.status is TrialState.FAILED and "objective" in (failed.error or "")
    assert ax_client._experiment.trials[index].status.is_failed
    status, runs = stored(tmp_path, "idle_rule")
    assert status == "complete" and runs[failed.run_id].status.key == "failed"

    script = tmp_path / "wait.py"
    script.write_text(WAITING_SCRIPT.format(gate=str(tmp_path / "never")))  # a job that runs until stopped
    scheduler.set_script_objective(str(script))
    index = scheduler.get_next_trial()
    assert index is not None
    held = scheduler.run_trial(index)
    assert stored(tmp_path, "idle_rule")[0] == "running"  # reopened by the new trial
    scheduler.close()
    assert held.status is TrialState.FAILED and "closed" in (held.error or "")
    status, runs = stored(tmp_path, "idle_rule")
    assert status == "complete" and runs[held.run_id].status.key == "failed"


@pytest.mark.slow  # batch_trial_context: tests/test_ax_scheduler.py, in the fast subset
def test_batch_trial_context_runs_on_leaving_once_and_never_after_an_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls.txt"
    calls.touch()
    monkeypatch.setenv("SEED001_CALLS", str(calls))
    ax_client = seed_ax_client("batch_trial_demo")
    runner = JobLibRunner(n_jobs=4)  # Use 4 cores
    scheduler = AxScheduler(ax_client, runner, config=seed_config(tmp_path))
    scheduler.set_objective_function(rosenbrock)

    # Create a batch of trials
    with scheduler.batch_trial_context() as batch:
        # Add trials with specific parameter values
        batch.add_trial({"x": 0.5, "y": 0.5})
        batch.add_trial({"x": 0.25, "y": 0.5})
        batch.add_trial({"x": 0.5, "y": 0.25})
        batch.add_trial({"x": 0.25, "y": 0.25})
        # The trials will be run when exiting the context
    for trial_idx in range(ax_client.experiment.num_trials):
        trial = ax_client.experiment.trials[trial_idx]
        params = trial.arm.parameters
        assert trial.objective_mean == pytest.approx(rosenbrock(params)["objective"])
    calls.write_text("")

    with scheduler.batch_trial_context() as batch:
        batch.add_trial({"x": 0.75, "y": 0.5})
        batch.run()  # the documented form: run inside, then leave
    assert calls.read_text().splitlines() == ["0.75,0.5"]
    assert ax_client.experiment.num_trials == 5

    with pytest.raises(RuntimeError, match="half-built"):
        with scheduler.batch_trial_context() as batch:
            abandoned = batch.add_trial({"x": 0.1, "y": 0.1})
            raise RuntimeError("half-built batch")
    assert calls.read_text().splitlines() == ["0.75,0.5"]
    assert ax_client.experiment.trials[abandoned].status.is_abandoned
    assert scheduler.trials[abandoned].status is TrialState.CANCELLED

    # Run more trials using standard optimization
    best_params = scheduler.run_optimization(max_trials=2)
    assert isinstance(best_params, dict)
    status, runs = stored(tmp_path, "batch_trial_demo")
    assert status == "complete" and len(runs) == 7
    assert all(run.status.key == "completed" for run in runs.values())
    scheduler.close()


def test_save_then_load_runs_the_unfinished_trials_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scheduler = AxScheduler(client("persisted"), JobLibRunner(n_jobs=2), config=seed_config(tmp_path))
    scheduler.set_objective_function(objective_function)
    scheduler.run_optimization(max_trials=2)
    unfinished = scheduler.get_next_trial()
    scheduler.save_experiment("batch_trial_results.json")
    scheduler.save_experiment()  # the seed's default: <experiment name>.json
    assert (tmp_path / "batch_trial_results.json").is_file() and (tmp_path / "persisted.json").is_file()
    scheduler.close()

    restored = AxScheduler(client("persisted"), JobLibRunner(n_jobs=2), config=seed_config(tmp_path))
    restored.load_experiment("batch_trial_results.json")
    restored.set_objective_function(objective_function)
    assert [t.status for t in restored.trials.values()] == [TrialState.COMPLETED] * 2 + [TrialState.CREATED]
    assert restored.get_next_trial() == unfinished
    restored.run_trial(unfinished)  # type: ignore[arg-type]
    restored.complete_trial(unfinished)  # type: ignore[arg-type]
    assert restored.trials[unfinished].status is TrialState.COMPLETED  # type: ignore[index]
    assert restored.get_next_trial() == 3  # then Ax's new ones
    restored.close()
    assert len(stored(tmp_path, "persisted")[1]) == 3


def test_unknown_config_keys_warn_once_per_key_and_are_ignored(tmp_path: Path) -> None:
    config = {**seed_config(tmp_path), "seed001_unknown_key": 1, "early_stopping_threshold": 0.01}
    ax_client = client("warned")
    with pytest.warns(SweepwiseWarning) as caught:
        scheduler = AxScheduler(ax_client, LocalRunner(), config=config)
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, SweepwiseWarning))
    assert len(messages) == 2
    assert "seed 001 option" in messages[0] and "'early_stopping_threshold'" in messages[0]
    assert "unknown AxScheduler config key 'seed001_unknown_key'" in messages[1]
    assert all("valid keys: monitoring_interval, max_trial_monitoring_time" in m for m in messages)
    assert "seed001_unknown_key" not in scheduler.config
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        AxScheduler(client("warned"), LocalRunner(), config=config)
    assert not [w for w in again if issubclass(w.category, SweepwiseWarning)]
    with pytest.raises(ConfigError) as info:
        AxScheduler(client("warned"), LocalRunner(), config={"monitoring_interval": -1})
    assert info.value.field == "config.monitoring_interval"


def test_an_ax_client_is_taken_without_the_axclient_deprecation() -> None:
    ax_client = client("modern")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AxScheduler(ax_client, LocalRunner())
    assert not [w for w in caught if "AxClient" in str(w.message)]


def test_ax_platform_has_a_tested_upper_bound() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for extra in ("ax", "bench", "dev"):
        pins = [r for r in project["optional-dependencies"][extra] if r.startswith("ax-platform")]
        assert pins == ["ax-platform>=1.3,<1.4"], extra
