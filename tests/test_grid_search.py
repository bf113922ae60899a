"""Grid search: each grid point trained and evaluated exactly once, across controller crashes too.

Sweeps run through the real controller and a real SQLite store, in virtual time with
the simulated dispatcher, and end to end through the `sweepwise` command with real
local processes.
"""

from __future__ import annotations

import math
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import cli, markers, status_json
from helpers import make_run
from sweepwise.core.clock import VirtualClock
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import JobDefinition, JobStatus, JobTypes, RunInfo
from sweepwise.dispatchers.simulated import SimOutcome, SimulatedDispatcher
from sweepwise.engine.controller import AdaptiveController, ControllerSettings
from sweepwise.schedulers import scheduler_classes
from sweepwise.schedulers.base import JobSpec
from sweepwise.schedulers.grid_search import Grid, GridSearchConfig, GridSearchScheduler
from sweepwise.stores.sql import SQLStore

S = JobStatus
TRAIN, EVAL = JobTypes.LAUNCH_TRAINING, JobTypes.LAUNCH_EVAL
GRID_2X3: dict[str, Any] = {
    "optimizer.name": {"choices": ["adam", "sgd"]},
    "model.depth": {"distribution": "int_uniform", "min": 1, "max": 3},
}
POINTS_2X3 = [
    {"model.depth": depth, "optimizer.name": name} for depth in (1, 2, 3) for name in ("adam", "sgd")
]


class Crash(BaseException):
    """Stands for a kill -9 of the controller (never caught by it)."""


class Sim(SimulatedDispatcher):
    """Trainings of uneven length; evals score the run. Crashes around the Nth dispatch when asked."""

    def __init__(self, crash_at: int | None = None, after: bool = False) -> None:
        super().__init__(VirtualClock(), self.outcome)
        self.crash_at, self.after, self.calls = crash_at, after, 0

    @staticmethod
    def outcome(job: JobDefinition) -> SimOutcome:
        if job.type is TRAIN:  # uneven lengths: deeper models train longer
            return SimOutcome(duration=5.0 + 7.0 * float(job.overrides.get("model.depth", 1)))
        return SimOutcome(duration=3.0, result={"score": 1.0})

    def dispatch(self, job: JobDefinition) -> str:
        self.calls += 1
        if self.calls == self.crash_at and not self.after:
            raise Crash
        dispatch_id = super().dispatch(job)
        if self.calls == self.crash_at and self.after:
            raise Crash
        return dispatch_id


@pytest.fixture
def store(tmp_path: Path) -> SQLStore:
    sql = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    sql.ensure_experiment("exp", {})
    return sql


def make_config(parameters: dict[str, Any] | None = None, **values: Any) -> GridSearchConfig:
    return GridSearchConfig(
        experiment_id="exp",
        parameters=GRID_2X3 if parameters is None else parameters,
        train=JobSpec(cmd=["train"]),
        eval=JobSpec(cmd=["eval"]),
        **values,
    )


def run_sweep(
    store: SQLStore, dispatcher: Sim, config: GridSearchConfig, max_parallel: int = 4
) -> list[RunInfo]:
    return AdaptiveController(
        "exp",
        GridSearchScheduler(config),
        dispatcher,
        store,
        settings=ControllerSettings(max_parallel=max_parallel, monitoring_interval=30.0),
        clock=dispatcher.clock,
    ).run()


def trained_points(dispatcher: Sim, names: list[str]) -> list[dict[str, Any]]:
    return [{name: rec.params[name] for name in names} for rec in dispatcher.started if rec.job_type is TRAIN]


def assert_each_job_once(dispatcher: Sim, runs: list[RunInfo]) -> None:
    counts = Counter((rec.run_id, rec.job_type) for rec in dispatcher.started)
    assert set(counts.values()) == {1}, counts
    assert set(counts) == {(run.run_id, job_type) for run in runs for job_type in (TRAIN, EVAL)}


def by_key(points: list[dict[str, Any]]) -> list[tuple[tuple[str, Any], ...]]:
    return sorted(tuple(sorted(point.items())) for point in points)


# -- sweeps in virtual time ------------------------------------------------------------------


def test_a_2x3_grid_dispatches_each_point_exactly_once(store: SQLStore) -> None:
    dispatcher = Sim()
    runs = run_sweep(store, dispatcher, make_config())
    assert len(runs) == 6 and {run.status for run in runs} == {S.COMPLETED}
    assert_each_job_once(dispatcher, runs)
    points = trained_points(dispatcher, list(GRID_2X3))
    assert points == POINTS_2X3  # in grid order: the last parameter by name varies fastest
    assert by_key([run.suggestion for run in runs]) == by_key(POINTS_2X3)
    starts = [rec.at for rec in dispatcher.started if rec.job_type is TRAIN]
    assert starts[:4] == [starts[0]] * 4 and starts[4] > starts[0]  # bounded by the 4 slots


@pytest.mark.parametrize("nth", [1, 3, 4, 6, 9])
@pytest.mark.parametrize("after", [False, True], ids=["before-dispatch", "after-dispatch"])
def test_a_killed_controller_resumes_with_each_point_exactly_once(
    store: SQLStore, nth: int, after: bool
) -> None:
    dispatcher = Sim(crash_at=nth, after=after)
    with pytest.raises(Crash):
        run_sweep(store, dispatcher, make_config(), max_parallel=3)
    dispatcher.forget_watchers()
    runs = run_sweep(store, dispatcher, make_config(), max_parallel=3)  # a new controller and scheduler
    assert len(runs) == 6 and {run.status for run in runs} == {S.COMPLETED}
    assert_each_job_once(dispatcher, runs)
    assert by_key(trained_points(dispatcher, list(GRID_2X3))) == by_key(POINTS_2X3)


def test_numeric_ranges_get_points_values_each(store: SQLStore) -> None:
    parameters = {
        "lr": {"distribution": "log_normal", "min": 1e-4, "max": 1e-1, "points": 4},
        "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
    }
    dispatcher = Sim()
    runs = run_sweep(store, dispatcher, make_config(parameters, points=3))
    assert len(runs) == 12 and {run.status for run in runs} == {S.COMPLETED}
    assert_each_job_once(dispatcher, runs)
    points = trained_points(dispatcher, ["dropout", "lr"])
    assert sorted({p["dropout"] for p in points}) == [0.0, 0.25, 0.5]
    assert sorted({p["lr"] for p in points}) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert len({tuple(sorted(point.items())) for point in points}) == 12


def test_max_trials_runs_the_first_points_of_a_larger_grid(store: SQLStore) -> None:
    dispatcher = Sim()
    runs = run_sweep(store, dispatcher, make_config(max_trials=4), max_parallel=2)
    assert len(runs) == 4 and {run.status for run in runs} == {S.COMPLETED}
    assert_each_job_once(dispatcher, runs)
    assert trained_points(dispatcher, list(GRID_2X3)) == POINTS_2X3[:4]


# -- the grid itself -----------------------------------------------------------------------------


def axes(grid: Grid) -> dict[str, list[Any]]:
    return dict(grid.axes)


def test_axes_are_spaced_in_each_distributions_own_scale() -> None:
    grid = Grid(
        {
            "lr": {"distribution": "log_normal", "min": 1e-5, "max": 1e-1},
            "batch": {"distribution": "uniform_pow2", "min": 16, "max": 1024},
            "layers": {"distribution": "int_uniform", "min": 1, "max": 10, "points": 4},
            "depth": {"distribution": "int_uniform", "min": 1, "max": 3, "points": 9},
            "p": {"distribution": "logit_normal", "min": 0.1, "max": 0.9, "points": 3},
            "act": {"choices": ["relu", "gelu", "silu"]},
        },
        points=5,
    )
    got = axes(grid)
    assert got["lr"] == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    assert got["batch"] == [16, 64, 128, 512, 1024]  # exponents 4, 5.5, 7, 8.5, 10, rounded half up
    assert got["layers"] == [1, 4, 7, 10]
    assert got["depth"] == [1, 2, 3]  # values that round alike count once
    assert got["p"] == pytest.approx([0.1, 0.5, 0.9])
    assert got["act"] == ["relu", "gelu", "silu"]
    assert len(grid) == 5 * 5 * 4 * 3 * 3 * 3
    assert all(isinstance(v, int) for v in got["batch"] + got["layers"])


def test_an_ordinal_axis_has_every_value() -> None:
    grid = Grid({"lr": {"distribution": "ordinal", "values": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]}}, points=2)
    assert grid.axes == [("lr", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2])]


def test_nested_groups_may_give_points_too() -> None:
    grid = Grid({"trainer": {"lr": {"distribution": "uniform", "min": 0, "max": 1, "points": 3}}}, points=2)
    assert axes(grid) == {"trainer.lr": [0.0, 0.5, 1.0]}
    assert list(grid) == [{"trainer.lr": 0.0}, {"trainer.lr": 0.5}, {"trainer.lr": 1.0}]


def test_key_tells_grid_points_from_other_suggestions() -> None:
    grid = Grid(GRID_2X3)
    assert [grid.key(point) for point in grid] == [(i, j) for i in range(3) for j in range(2)]
    assert grid.key({"model.depth": 2, "optimizer.name": "sgd"}) == (1, 1)
    assert grid.key({"model.depth": 2.5, "optimizer.name": "sgd"}) is None
    assert grid.key({"model.depth": True, "optimizer.name": "sgd"}) is None  # true is not 1
    assert grid.key({"optimizer.name": "sgd"}) is None
    big = Grid({"a": {"choices": [1, 2, 3]}, "b": {"distribution": "uniform", "min": 0, "max": 1}}, points=4)
    assert [big.point(big.key_at(i)) for i in range(len(big))] == list(big)


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"a": {"choices": [1, 2], "points": 3}}, "parameters.a.points"),
        ({"a": {"distribution": "uniform", "min": 0, "max": 1, "points": 1}}, "parameters.a.points"),
        ({"a": {"distribution": "uniform", "min": 0, "max": 1, "points": 2.5}}, "parameters.a.points"),
        ({"g": {"a": {"distribution": "uniform", "min": 1, "max": 0}}}, "parameters.g.a.min"),
        ({"a": {"distribution": "ordinal", "values": [1, 2], "points": 2}}, "parameters.a.points"),
        ({"a": {"choices": [1, 2]}, "b": {"choices": [3], "when": {"a": 1}}}, "parameters.b.when"),
    ],
)
def test_bad_points_or_specs_name_the_field(parameters: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        GridSearchScheduler(make_config(parameters))
    assert info.value.field == field


def test_scheduler_reads_taken_points_from_the_runs_not_from_memory() -> None:
    config = make_config()
    runs = [
        make_run("exp_trial_0001", S.COMPLETED, score=1.0, **POINTS_2X3[0]),
        make_run("exp_trial_0002", S.TRAINING_DONE_NO_EVAL, **POINTS_2X3[2]),
    ]
    jobs = GridSearchScheduler(config).schedule(runs, available_training_slots=2)
    assert [(job.run_id, job.type) for job in jobs] == [
        ("exp_trial_0002", EVAL),
        ("exp_trial_0003", TRAIN),
        ("exp_trial_0004", TRAIN),
    ]
    assert [job.metadata["adaptive/suggestion"] for job in jobs[1:]] == [POINTS_2X3[1], POINTS_2X3[3]]
    scheduler = GridSearchScheduler(config)
    assert not scheduler.is_experiment_complete(runs)
    done = [make_run(f"r{i}", S.FAILED if i % 2 else S.COMPLETED, **p) for i, p in enumerate(POINTS_2X3)]
    assert scheduler.schedule(done, 4) == []
    assert scheduler.is_experiment_complete(done)
    assert not scheduler.is_experiment_complete(done[:5] + [make_run("x", S.COMPLETED, **POINTS_2X3[0])])


def test_max_trials_above_the_grid_runs_the_grid_and_registry_knows_it() -> None:
    assert GridSearchScheduler(make_config(max_trials=50)).target == 6
    assert GridSearchScheduler(make_config()).target == 6
    config_cls, scheduler_cls = scheduler_classes("grid_search")
    assert config_cls is GridSearchConfig and scheduler_cls is GridSearchScheduler


# -- end to end through the CLI ------------------------------------------------------------------


def grid_spec(make_sweep: Callable[..., Path], name: str) -> Path:
    return make_sweep(
        name,
        max_parallel=4,
        monitoring_interval=0.5,
        scheduler={"type": "grid_search"},
        parameters={
            "x": {"choices": [0.2, 0.4]},
            "y": {"distribution": "int_uniform", "min": 1, "max": 3},
        },
    )


EXPECTED = sorted((x, y) for x in (0.2, 0.4) for y in (1, 2, 3))


def check_cli_sweep(tmp_path: Path, name: str) -> None:
    rows = status_json(tmp_path, name)["runs"]
    assert len(rows) == 6 and {row["status"] for row in rows} == {"completed"}
    assert sorted((row["suggestion"]["x"], row["suggestion"]["y"]) for row in rows) == EXPECTED
    for row in rows:
        assert math.isclose(row["score"], row["suggestion"]["x"] * 10)
    trained, evaluated = Counter(markers(tmp_path, "train")), Counter(markers(tmp_path, "eval"))
    assert set(trained) == set(evaluated) == {row["run_id"] for row in rows}
    assert set(trained.values()) == set(evaluated.values()) == {1}, (trained, evaluated)


@pytest.mark.slow
def test_cli_grid_search_runs_every_point_once(tmp_path: Path, make_sweep: Callable[..., Path]) -> None:
    spec = grid_spec(make_sweep, "grid")
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    check_cli_sweep(tmp_path, "grid")


@pytest.mark.slow
def test_cli_grid_search_killed_mid_dispatch_resumes(tmp_path: Path, make_sweep: Callable[..., Path]) -> None:
    spec = grid_spec(make_sweep, "gridkill")
    killed = cli("run", str(spec), "--quiet", cwd=tmp_path, env={"SWEEPWISE_CRASH_AT": "mid_dispatch:3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(markers(tmp_path, "train")) <= 3  # the fourth training of the first tick was never started
    final = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    check_cli_sweep(tmp_path, "gridkill")


def test_per_parameter_points_in_a_yaml_spec(tmp_path: Path) -> None:
    from sweepwise.app.experiment import Experiment

    spec = {
        "name": "grid_points",
        "scheduler": {"type": "grid_search"},
        "train": {"cmd": ["python", "-c", "pass"]},
        "parameters": {
            "lr": {"distribution": "log_normal", "min": 1e-4, "max": 1e-1, "points": 4},
            "act": {"choices": ["relu", "tanh"]},
        },
    }
    experiment = Experiment.from_dict(spec, base_dir=tmp_path)
    assert len(experiment.scheduler_cls(experiment.scheduler_config).grid) == 8
