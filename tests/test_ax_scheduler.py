"""The AxScheduler facade (seed 001) on real Ax: objectives, runners, capacity, failures, persistence."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, cli
from sweepwise.ax import AxScheduler, ContainerObjective, DispatcherRunner, LocalRunner, TrialStatus
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import JobStatus
from sweepwise.stores.sql import SQLStore


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def quadratic(params: dict[str, Any]) -> dict[str, Any]:
    """A small bowl with its minimum at (0.3, 0.5); the loss is reported with a standard error."""
    return {"loss": ((params["x"] - 0.3) ** 2 + (params["y"] - 0.5) ** 2, 0.0)}


def sleepy(params: dict[str, Any]) -> dict[str, Any]:
    time.sleep(0.6)
    return {"loss": (params["x"] - 0.3) ** 2 + (params["y"] - 0.5) ** 2}


def two_objectives(params: dict[str, Any]) -> dict[str, Any]:
    return {"a": params["x"], "b": (1.0 - params["x"]) ** 2 + params["y"]}


def make_client(objective: str = "-loss", method: str = "random_search", budget: int | None = None) -> Any:
    from ax import Client, RangeParameterConfig

    client = Client(random_seed=0)
    client.configure_experiment(
        name="bowl",
        parameters=[
            RangeParameterConfig(name="x", bounds=(0.0, 1.0), parameter_type="float"),
            RangeParameterConfig(name="y", bounds=(0.0, 1.0), parameter_type="float"),
        ],
    )
    client.configure_optimization(objective=objective)
    client.configure_generation_strategy(method=method, initialization_budget=budget)  # type: ignore[arg-type]
    return client


def config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "monitoring_interval": 0.05,
        "job_output_dir": str(tmp_path / "jobs"),
        "store": f"sqlite:///{tmp_path / 'sweepwise.db'}",
        **extra,
    }


def runs(tmp_path: Path, experiment: str) -> list[Any]:
    with SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}") as store:
        return [run for run in store.fetch_runs({}) if run.run_id.startswith(experiment)]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    best = current = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best


@pytest.mark.slow
def test_function_objective_with_an_ax_experiment(tmp_path: Path) -> None:
    from ax.core.experiment import Experiment
    from ax.core.objective import Objective
    from ax.core.optimization_config import OptimizationConfig
    from ax.core.parameter import ParameterType, RangeParameter
    from ax.core.search_space import SearchSpace

    experiment = Experiment(
        name="exp-fn",
        search_space=SearchSpace(
            parameters=[
                RangeParameter(name="x", parameter_type=ParameterType.FLOAT, lower=0.0, upper=1.0),
                RangeParameter(name="y", parameter_type=ParameterType.FLOAT, lower=0.0, upper=1.0),
            ]
        ),
        optimization_config=OptimizationConfig(
            objective=Objective(expression="-loss", metric_name_to_signature={"loss": "loss"})
        ),
    )
    scheduler = AxScheduler(experiment, LocalRunner(n_jobs=2), config(tmp_path))
    scheduler.set_objective_function(quadratic)
    best = scheduler.run_optimization(max_trials=6)
    assert isinstance(best, dict) and set(best) == {"x", "y"}
    recorded = runs(tmp_path, "exp-fn")
    assert len(recorded) == 6 and all(run.status is JobStatus.COMPLETED for run in recorded)
    status = cli(
        "status", "exp-fn", "--json", cwd=tmp_path, env={"SWEEPWISE_STORE": config(tmp_path)["store"]}
    )
    assert status.returncode == 0, status.stderr
    assert len(json.loads(status.stdout)["runs"]) == 6


@pytest.mark.slow  # fits a model per trial; the other tests here run Ax's random search
def test_botorch_client_finds_a_good_point(tmp_path: Path) -> None:
    client = make_client(method="fast", budget=4)
    scheduler = AxScheduler(client, LocalRunner(n_jobs=2), config(tmp_path))
    scheduler.set_objective_function(quadratic)
    best = scheduler.run_optimization(max_trials=7)
    assert isinstance(best, dict)
    assert len(scheduler.trials) == 7
    assert all(trial.status is TrialStatus.COMPLETED for trial in scheduler.trials.values())
    losses = [trial.result["loss"][0] for trial in scheduler.trials.values() if trial.result]
    assert quadratic(best)["loss"][0] == pytest.approx(min(losses))


def test_get_next_trial_run_trial_complete_trial_by_hand(tmp_path: Path) -> None:
    scheduler = AxScheduler(make_client(), LocalRunner(n_jobs=1), config(tmp_path, synchronous=True))
    scheduler.set_objective_function(quadratic)
    index = scheduler.get_next_trial()
    assert index is not None
    trial = scheduler.run_trial(index)  # synchronous: returns finished
    assert trial.status is TrialStatus.COMPLETED and trial.result is not None
    manual = scheduler.get_next_trial()
    assert manual is not None
    scheduler.complete_trial(manual, raw_data={"loss": 0.25})
    assert scheduler.trials[manual].status is TrialStatus.COMPLETED
    with pytest.raises(ConfigError):
        scheduler.run_trial(index)
    assert [run.status for run in runs(tmp_path, "bowl")] == [JobStatus.COMPLETED] * 2


SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    with open(os.environ.get("JOB_PARAMS_FILE", "params.json")) as f:
        params = json.load(f)
    x, y = params["x"], params["y"]
    if x > 0.6:
        print("simulation diverged")
        sys.exit(3)
    with open("result.json", "w") as f:
        if x > 0.4:
            f.write("{not json")
        else:
            json.dump({"loss": (x - 0.3) ** 2 + (y - 0.5) ** 2}, f)
    """
)


def test_script_objective_and_batch_trial_context_with_failures(tmp_path: Path) -> None:
    script = tmp_path / "objective.py"
    script.write_text(SCRIPT)
    scheduler = AxScheduler(make_client(), LocalRunner(n_jobs=3), config(tmp_path))
    scheduler.set_script_objective(str(script))
    points = [(0.1, 0.2), (0.7, 0.5), (0.5, 0.5), (0.3, 0.4), (0.2, 0.9)]
    with scheduler.batch_trial_context() as batch:
        for x, y in points:
            batch.add_trial({"x": x, "y": y})
        trials = batch.run()
    statuses = [trial.status for trial in trials]
    assert statuses == [
        TrialStatus.COMPLETED,
        TrialStatus.FAILED,
        TrialStatus.FAILED,
        TrialStatus.COMPLETED,
        TrialStatus.COMPLETED,
    ]
    assert trials[1].error is not None and "exit code 3" in trials[1].error
    assert trials[2].error is not None and "result" in trials[2].error
    ax_trials = scheduler.ax_client._experiment.trials
    assert ax_trials[1].status.is_failed and ax_trials[0].status.is_completed

    env = {"SWEEPWISE_STORE": config(tmp_path)["store"]}
    status = cli("status", "bowl", "--json", cwd=tmp_path, env=env)
    rows = {row["run_id"]: row for row in json.loads(status.stdout)["runs"]}
    assert rows["bowl-trial-0001"]["status"] == "failed"
    assert "simulation diverged" in rows["bowl-trial-0001"]["error"]
    assert rows["bowl-trial-0002"]["status"] == "failed" and "result" in rows["bowl-trial-0002"]["error"]
    assert sum(row["status"] == "completed" for row in rows.values()) == 3
    human = cli("status", "bowl", cwd=tmp_path, env=env)
    assert "simulation diverged" in human.stdout

    # The loop goes on after failures: run_optimization finishes its budget.
    scheduler.run_optimization(max_trials=3)
    assert len(scheduler.trials) == 8


def test_save_then_load_into_a_new_scheduler(tmp_path: Path) -> None:
    scheduler = AxScheduler(make_client(), LocalRunner(n_jobs=2), config(tmp_path))
    scheduler.set_objective_function(quadratic)
    scheduler.run_optimization(max_trials=3)
    scheduler.save_experiment(str(tmp_path / "snapshot"))
    assert (tmp_path / "snapshot.json").is_file()

    again = AxScheduler(make_client(), LocalRunner(n_jobs=2), config(tmp_path))
    again.load_experiment(str(tmp_path / "snapshot"))
    assert len(again.trials) == 3
    assert all(trial.status is TrialStatus.COMPLETED for trial in again.trials.values())
    again.set_objective_function(quadratic)
    again.run_optimization(max_trials=2)
    assert sorted(again.trials) == [0, 1, 2, 3, 4]
    assert len(runs(tmp_path, "bowl")) == 5


def test_multi_objective_returns_the_pareto_set(tmp_path: Path) -> None:
    scheduler = AxScheduler(make_client(objective="-a, -b"), LocalRunner(n_jobs=2), config(tmp_path))
    scheduler.set_objective_function(two_objectives)
    front = scheduler.run_optimization(max_trials=6)
    assert isinstance(front, list) and front
    observed = [(t.result["a"], t.result["b"]) for t in scheduler.trials.values() if t.result]
    for params in front:
        a, b = two_objectives(params)["a"], two_objectives(params)["b"]
        assert not any(oa < a and ob < b for oa, ob in observed)  # nothing dominates it


@pytest.mark.parametrize(
    ("synchronous", "expected"), [(False, 4), pytest.param(True, 1, marks=pytest.mark.slow)]
)
def test_local_runner_keeps_its_capacity_in_flight(tmp_path: Path, synchronous: bool, expected: int) -> None:
    options = config(tmp_path, synchronous=synchronous)
    with AxScheduler(make_client(), LocalRunner(n_jobs=4), options) as scheduler:
        scheduler.set_objective_function(sleepy)
        scheduler.run_optimization(max_trials=8)
    recorded = runs(tmp_path, "bowl")
    assert len(recorded) == 8 and all(run.status is JobStatus.COMPLETED for run in recorded)
    intervals = [(run.started_at.timestamp(), run.completed_at.timestamp()) for run in recorded]
    assert max_overlap(intervals) == expected


def test_a_raising_function_fails_its_trial_and_the_loop_goes_on(tmp_path: Path) -> None:
    def flaky(params: dict[str, Any]) -> dict[str, Any]:  # a closure: runs in the thread pool
        if params["x"] > 0.5:
            raise RuntimeError("boom")
        return {"loss": params["x"]}

    scheduler = AxScheduler(make_client(), LocalRunner(n_jobs=2), config(tmp_path))
    scheduler.set_objective_function(flaky)
    scheduler.run_optimization(max_trials=6)
    failed = [t for t in scheduler.trials.values() if t.status is TrialStatus.FAILED]
    assert len(scheduler.trials) == 6
    assert all(t.error is not None and "RuntimeError: boom" in t.error for t in failed)
    assert all(t.parameters["x"] > 0.5 for t in failed)


PARAMS_ENV = "JOB_PARAMS_FILE=/job/params.json"
INSIDE = ["img:1", "python", "obj.py", "--fast"]


@pytest.mark.parametrize(
    ("engine", "expected"),
    [
        ("podman", ["podman", "run", "--rm", "-v", "/w/t1:/job", "-w", "/job", "-e", PARAMS_ENV, *INSIDE]),
        ("docker", ["docker", "run", "--rm", "-v", "/w/t1:/job", "-w", "/job", "-e", PARAMS_ENV, *INSIDE]),
        (
            "apptainer",
            ["apptainer", "exec", "--bind", "/w/t1:/job", "--pwd", "/job", "--env", PARAMS_ENV, *INSIDE],
        ),
    ],
)
def test_container_command_line(engine: str, expected: list[str]) -> None:
    assert ContainerObjective("img:1", "python obj.py --fast", engine).argv("/w/t1") == expected


def test_container_objective_is_set_with_the_configured_engine(tmp_path: Path) -> None:
    scheduler = AxScheduler(make_client(), LocalRunner(), config(tmp_path, container_engine="podman"))
    scheduler.set_container_objective("img:1")
    assert scheduler.objective == ContainerObjective("img:1", None, "podman")
    assert scheduler.objective.argv("/w")[-1] == "img:1"
    with pytest.raises(ConfigError) as info:
        AxScheduler(make_client(), LocalRunner(), {"monitoring_interval": "fast"})
    assert info.value.field == "config.monitoring_interval"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("monitoring_interval", 0),
        ("monitoring_interval", float("nan")),
        ("max_trial_monitoring_time", -1),
        ("max_trial_monitoring_time", True),
        ("synchronous", "yes"),
        ("cleanup_after_completion", 1),
        ("max_concurrent_trials", 0),
        ("max_concurrent_trials", 2.5),
        ("job_output_dir", 3),
        ("store", ""),
        ("experiment_name", 7),
    ],
)
def test_a_known_config_key_with_a_wrong_value_is_refused(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        AxScheduler(make_client(), LocalRunner(), {key: value})
    assert info.value.field == f"config.{key}"
    assert repr(value) in str(info.value)


DOC_BLOCK = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)


@pytest.mark.slow
def test_docs_examples_run(slurm: None, tmp_path: Path) -> None:
    """docs/ax.md: file blocks are written, python blocks run in order, console lines checked."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    env["HOME"] = str(tmp_path)  # job_output_dir defaults to ~/ax_scheduler_output
    ran = 0
    for match in DOC_BLOCK.finditer((REPO / "docs" / "ax.md").read_text()):
        body = match["body"]
        if match["file"]:
            (tmp_path / match["file"]).write_text(body)
        elif match["lang"] == "python":
            done = subprocess.run(
                [sys.executable, "-c", body],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            ran += 1
        elif match["lang"] == "console":
            lines = body.strip().splitlines()
            command = shlex.split(lines[0].removeprefix("$ "))
            assert command[0] == "sweepwise"
            result = cli(*command[1:], cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            for expected in lines[1:]:
                assert expected.strip() in result.stdout
    assert ran == 7  # every python block of docs/ax.md (one runs on the SLURM of tests/test_slurm_*.py)


def test_any_dispatcher_becomes_a_runner_in_virtual_time(tmp_path: Path) -> None:
    from sweepwise.core.clock import VirtualClock
    from sweepwise.core.models import JobDefinition
    from sweepwise.dispatchers.simulated import SimOutcome, SimulatedDispatcher

    def behaviour(job: JobDefinition) -> SimOutcome:
        x = float(job.overrides["x"])
        if x > 0.8:
            return SimOutcome(duration=50.0, exit_code=2, error="exit code 2: out of memory")
        return SimOutcome(duration=100.0 + 100 * x, result={"loss": (x - 0.3) ** 2})

    clock = VirtualClock()
    runner = DispatcherRunner(SimulatedDispatcher(clock, behaviour), capacity=3, clock=clock)
    scheduler = AxScheduler(make_client(), runner, config(tmp_path, monitoring_interval=5.0), clock=clock)
    scheduler.set_script_objective(__file__)  # never run: the simulated dispatcher decides the outcome
    scheduler.run_optimization(max_trials=9)
    trials = list(scheduler.trials.values())
    assert len(trials) == 9
    for trial in trials:
        failed = trial.parameters["x"] > 0.8
        assert trial.status is (TrialStatus.FAILED if failed else TrialStatus.COMPLETED)
        assert trial.started_at is not None and trial.ended_at is not None
    assert max_overlap([(t.started_at, t.ended_at) for t in trials]) == 3  # type: ignore[misc]


def test_a_trial_running_too_long_is_stopped_and_failed(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(60)\n")
    limits = config(tmp_path, max_trial_monitoring_time=0.5, experiment_name="slow")
    scheduler = AxScheduler(make_client(), LocalRunner(n_jobs=2), limits)
    scheduler.set_script_objective(str(script))
    started = time.monotonic()
    assert scheduler.run_optimization(max_trials=2) == {}  # nothing completed
    assert time.monotonic() - started < 30
    for trial in scheduler.trials.values():
        assert trial.status is TrialStatus.FAILED
        assert trial.error is not None and "max_trial_monitoring_time" in trial.error
    assert all(run.status is JobStatus.FAILED for run in runs(tmp_path, "slow"))


def test_the_older_service_api_ax_client_is_accepted(tmp_path: Path) -> None:
    from ax.service.ax_client import AxClient, ObjectiveProperties

    ax_client = AxClient(random_seed=0, verbose_logging=False)
    ax_client.create_experiment(
        name="legacy",
        parameters=[{"name": "x", "type": "range", "bounds": [0.0, 1.0]}],
        objectives={"loss": ObjectiveProperties(minimize=True)},
    )
    scheduler = AxScheduler(ax_client, LocalRunner(n_jobs=2), config(tmp_path))
    scheduler.set_objective_function(lambda p: {"loss": (p["x"] - 0.3) ** 2} if p["x"] < 0.9 else {})
    best = scheduler.run_optimization(max_trials=4)
    assert isinstance(best, dict) and set(best) == {"x"}
    scheduler.save_experiment(str(tmp_path / "legacy"))
    restored = AxScheduler(AxClient(verbose_logging=False), LocalRunner(), config(tmp_path))
    restored.load_experiment(str(tmp_path / "legacy.json"))
    assert sorted(restored.trials) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("objective", "metric", "goal", "data", "score"),
    [
        ("-loss", "loss", "minimize", {"loss": (0.25, 0.0)}, 0.25),
        ("loss", "loss", "maximize", {"loss": 0.5}, 0.5),
        ("a, -b", "a", "maximize", {"a": 2.0, "b": 3.0}, 2.0),  # several objectives: the first named
        ("-b, a", "b", "minimize", {"a": 2.0, "b": 3.0}, 3.0),
        ("2*a + b", "2*a + 1*b", "maximize", {"a": 2.0, "b": (3.0, 0.1)}, 7.0),  # the weighted sum
        ("-a - b", "-1*a + -1*b", "maximize", {"a": 2.0, "b": 3.0}, -5.0),
    ],
)
def test_the_score_and_goal_the_store_gets_follow_the_ax_objective(
    objective: str, metric: str, goal: str, data: dict[str, Any], score: float
) -> None:
    from sweepwise.ax._backend import make_backend
    from sweepwise.ax._record import Scoring

    scoring = Scoring.of(*make_backend(make_client(objective=objective)).objective_weights)
    assert (scoring.metric, scoring.goal) == (metric, goal)
    assert scoring.score(data) == pytest.approx(score)
    assert scoring.score({}) is None


def test_a_multi_objective_experiment_is_ranked_by_its_first_objective(tmp_path: Path) -> None:
    scheduler = AxScheduler(make_client(objective="-b, -a"), LocalRunner(n_jobs=2), config(tmp_path))
    scheduler.set_objective_function(two_objectives)
    scheduler.run_optimization(max_trials=4)
    scheduler.close()
    env = {"SWEEPWISE_STORE": config(tmp_path)["store"]}
    best = json.loads(cli("best", "bowl", "--json", cwd=tmp_path, env=env).stdout)
    lowest_b = min((t for t in scheduler.trials.values() if t.result), key=lambda t: t.result["b"])  # type: ignore[index]
    assert (best["metric"], best["goal"], best["run_id"]) == ("b", "minimize", lowest_b.run_id)
    assert best["score"] == pytest.approx(lowest_b.result["b"])  # type: ignore[index]


@pytest.mark.slow  # trials in flight: test_local_runner_keeps_its_capacity_in_flight, in the fast subset
def test_max_concurrent_trials_caps_the_trials_in_flight(tmp_path: Path) -> None:
    options = config(tmp_path, max_concurrent_trials=2)
    with AxScheduler(make_client(), LocalRunner(n_jobs=4), options) as scheduler:
        scheduler.set_objective_function(sleepy)
        scheduler.run_optimization(max_trials=4)
    recorded = runs(tmp_path, "bowl")
    assert len(recorded) == 4 and all(run.status is JobStatus.COMPLETED for run in recorded)
    assert max_overlap([(run.started_at.timestamp(), run.completed_at.timestamp()) for run in recorded]) == 2
