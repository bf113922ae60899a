"""The asynchronous capped scheduler: slots always full, evals capped, parallel suggestions spread out.

Whole sweeps run through the real controller, a real SQLite store and the simulated
dispatcher in virtual time; every claim is checked from the dispatcher's start records
and the jobs' known durations.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import make_run
from sweepwise.core.clock import VirtualClock
from sweepwise.core.models import JobDefinition, JobStatus, JobTypes, Observation, RunInfo
from sweepwise.dispatchers.simulated import DispatchRecord, SimOutcome, SimulatedDispatcher
from sweepwise.engine.controller import AdaptiveController, ControllerSettings
from sweepwise.schedulers import scheduler_classes
from sweepwise.schedulers.async_capped import AsyncCappedOptimizingScheduler, AsyncCappedSchedulerConfig
from sweepwise.schedulers.base import JobSpec
from sweepwise.schedulers.batched_synced import SchedulerState
from sweepwise.space import SearchSpace
from sweepwise.stores.sql import SQLStore

S = JobStatus
TRAIN, EVAL = JobTypes.LAUNCH_TRAINING, JobTypes.LAUNCH_EVAL
MAX_PARALLEL = 4
MAX_TRIALS = 14
EVAL_SECONDS = 25.0
PARAMETERS: dict[str, Any] = {
    "x": {"distribution": "uniform", "min": 0.0, "max": 1.0},
    "lr": {"distribution": "log_normal", "min": 1e-4, "max": 1e-1},
}
# Protein, the default optimizer, made cheaper per call (the sweeps ask it once per training).
PROTEIN = {
    "type": "protein",
    "seed": 7,
    "gp_restarts": 0,
    "random_suggestions": 128,
    "suggestions_per_pareto": 32,
}


class Crash(BaseException):
    """Stands for a kill -9 of the controller (never caught by it)."""


def train_seconds(params: dict[str, Any]) -> float:
    """Uneven trainings: 10 s to 100 s, longer for larger x."""
    return 10.0 + 90.0 * float(params["x"])


class Sim(SimulatedDispatcher):
    """Trainings last `train_seconds`, evals `EVAL_SECONDS`; optionally crashes on the Nth dispatch."""

    def __init__(self, crash_at: int | None = None) -> None:
        super().__init__(VirtualClock(), self.outcome)
        self.params: dict[str, dict[str, Any]] = {}
        self.crash_at, self.calls = crash_at, 0

    def outcome(self, job: JobDefinition) -> SimOutcome:
        if job.type is TRAIN:
            self.params[job.run_id] = dict(job.overrides)
            return SimOutcome(duration=train_seconds(job.overrides), result={"loss": 1.0})
        p = self.params[job.run_id]
        score = -((float(p["x"]) - 0.3) ** 2) - (math.log10(float(p["lr"])) + 2.5) ** 2
        return SimOutcome(duration=EVAL_SECONDS, result={"score": score})

    def dispatch(self, job: JobDefinition) -> str:
        self.calls += 1
        if self.calls == self.crash_at:
            raise Crash
        return super().dispatch(job)


def make_config(max_concurrent_evals: int = 1, max_trials: int = MAX_TRIALS) -> AsyncCappedSchedulerConfig:
    return AsyncCappedSchedulerConfig(
        experiment_id="exp",
        max_trials=max_trials,
        max_concurrent_evals=max_concurrent_evals,
        train=JobSpec(cmd=["train"]),
        eval=JobSpec(cmd=["eval"]),
        parameters=PARAMETERS,
        optimizer=PROTEIN,
    )


@pytest.fixture
def store(tmp_path: Path) -> SQLStore:
    sql = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    sql.ensure_experiment("exp", {})
    return sql


def controller(
    store: SQLStore, dispatcher: Sim, scheduler: AsyncCappedOptimizingScheduler | None = None, evals: int = 1
) -> AdaptiveController:
    return AdaptiveController(
        "exp",
        scheduler or AsyncCappedOptimizingScheduler(make_config(evals)),
        dispatcher,
        store,
        settings=ControllerSettings(max_parallel=MAX_PARALLEL, monitoring_interval=30.0),
        clock=dispatcher.clock,
    )


def spans(dispatcher: Sim, job_type: JobTypes) -> list[tuple[DispatchRecord, float, float]]:
    """(record, start, end) of every started job of `job_type`."""
    out = []
    for rec in dispatcher.started:
        if rec.job_type is job_type:
            seconds = train_seconds(rec.params) if job_type is TRAIN else EVAL_SECONDS
            out.append((rec, rec.at, rec.at + seconds))
    return out


def running_at(t: float, intervals: list[tuple[DispatchRecord, float, float]]) -> int:
    return sum(1 for _, start, end in intervals if start <= t < end)


def started_once(dispatcher: Sim, runs: list[RunInfo]) -> None:
    counts = Counter((rec.run_id, rec.job_type) for rec in dispatcher.started)
    assert set(counts.values()) == {1}, counts
    assert set(counts) == {(run.run_id, job_type) for run in runs for job_type in (TRAIN, EVAL)}


# -- whole sweeps in virtual time --------------------------------------------------------------


@pytest.mark.parametrize("max_evals", [1, 2])
def test_slots_stay_full_and_evals_stay_capped(store: SQLStore, max_evals: int) -> None:
    dispatcher = Sim()
    runs = controller(store, dispatcher, evals=max_evals).run()
    assert len(runs) == MAX_TRIALS and {run.status for run in runs} == {S.COMPLETED}
    started_once(dispatcher, runs)

    trainings, evals = spans(dispatcher, TRAIN), spans(dispatcher, EVAL)
    assert len({round(end - start, 6) for _, start, end in trainings}) > 1  # uneven lengths
    moments = sorted({t for _, start, end in trainings + evals for t in (start, end)})
    checked = 0
    for t in moments:
        if sum(1 for _, start, _ in trainings if start <= t) < MAX_TRIALS:  # trials remain to start
            assert running_at(t, trainings) == MAX_PARALLEL, f"at t={t - moments[0]:.1f}"
            checked += 1
        assert running_at(t, evals) <= max_evals, f"at t={t - moments[0]:.1f}"
    assert checked > MAX_TRIALS - MAX_PARALLEL  # every training end before the last start
    assert max(running_at(start, evals) for _, start, _ in evals) == max_evals  # the cap was reached
    ended = {rec.run_id: end for rec, _, end in trainings}
    assert any(start > ended[rec.run_id] for rec, start, _ in evals)  # some evals had to wait


def test_parallel_suggestions_never_pile_onto_one_point(store: SQLStore) -> None:
    dispatcher = Sim()
    runs = controller(store, dispatcher, evals=2).run()
    space = SearchSpace.from_dict(PARAMETERS)
    trainings = {rec.run_id: (start, rec.params) for rec, start, _ in spans(dispatcher, TRAIN)}
    finished = {rec.run_id: end for rec, _, end in spans(dispatcher, EVAL)}
    assert set(finished) == {run.run_id for run in runs}
    for t, _ in trainings.values():
        live = [
            space.normalize(params)
            for run_id, (start, params) in trainings.items()
            if start <= t < finished[run_id]
        ]
        assert len(live) >= MAX_PARALLEL
        for a, b in itertools.combinations(live, 2):
            assert float(np.linalg.norm(a - b)) > 1e-6


def test_state_round_trips_and_is_saved_every_tick(store: SQLStore) -> None:
    dispatcher = Sim()
    scheduler = AsyncCappedOptimizingScheduler(make_config(2))
    runs = controller(store, dispatcher, scheduler).run()
    assert scheduler.state is not None
    dumped = scheduler.state.model_dump()
    assert json.loads(json.dumps(dumped)) == dumped
    assert SchedulerState.model_validate(dumped).model_dump() == dumped
    assert store.load_state("exp") == dumped
    assert set(dumped["runs_completed"]) == {run.run_id for run in runs}
    assert dumped["runs_in_training"] == dumped["runs_in_eval"] == []


class ForgetfulScheduler(AsyncCappedOptimizingScheduler):
    """Ignores the saved state, so a restart rebuilds it from the run statuses."""

    def load_state(self, data: dict[str, Any]) -> None:
        self.state = None


@pytest.mark.parametrize("crash_at", [3, 8, 15, 21])
@pytest.mark.parametrize("state", ["loaded", "rebuilt"])
def test_restart_resumes_with_every_job_started_exactly_once(
    store: SQLStore, crash_at: int, state: str
) -> None:
    dispatcher = Sim(crash_at=crash_at)
    with pytest.raises(Crash):
        controller(store, dispatcher, evals=2).run()
    dispatcher.forget_watchers()

    at_crash = store.fetch_runs({"group": "exp"})
    fresh = AsyncCappedOptimizingScheduler(make_config(2))
    assert fresh.state is None
    fresh.schedule(at_crash, 0)
    assert fresh.state is not None
    assert fresh.state.runs_in_eval >= {run.run_id for run in at_crash if run.status is S.IN_EVAL}
    assert fresh.state.runs_completed == {run.run_id for run in at_crash if run.status.is_finished()}

    cls = AsyncCappedOptimizingScheduler if state == "loaded" else ForgetfulScheduler
    scheduler = cls(make_config(2))
    runs = controller(store, dispatcher, scheduler).run()
    assert len(runs) == MAX_TRIALS and {run.status for run in runs} == {S.COMPLETED}
    started_once(dispatcher, runs)
    assert scheduler.state is not None
    assert scheduler.state.model_dump() == SchedulerState.from_runs(runs).model_dump()


def test_registered_as_async_capped() -> None:
    config_cls, scheduler_cls = scheduler_classes("async_capped")
    assert config_cls is AsyncCappedSchedulerConfig and scheduler_cls is AsyncCappedOptimizingScheduler


# -- one call at a time ----------------------------------------------------------------------


class PendingRecorder:
    """An optimizer returning x=100, 101, ... that records the pending suggestions it was given."""

    def __init__(self) -> None:
        self.pending: list[list[dict[str, Any]]] = []
        self.observations: list[list[Observation]] = []

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        self.pending.append(list(pending or []))
        self.observations.append(list(observations))
        start = 100 + sum(len(p) for p in self.pending)
        return [{"x": start + i} for i in range(n_suggestions)]


def scheduler_with(recorder: PendingRecorder, **overrides: Any) -> AsyncCappedOptimizingScheduler:
    values: dict[str, Any] = {
        "experiment_id": "exp",
        "max_trials": 10,
        "train": JobSpec(cmd=["train"]),
        "eval": JobSpec(cmd=["eval"]),
        **overrides,
    }
    return AsyncCappedOptimizingScheduler(AsyncCappedSchedulerConfig(**values), optimizer=recorder)


def test_pending_holds_every_unfinished_run_and_earlier_suggestions_of_the_call() -> None:
    recorder = PendingRecorder()
    scheduler = scheduler_with(recorder, max_concurrent_evals=5)
    runs = [
        make_run("exp_trial_0001", S.PENDING, x=1),
        make_run("exp_trial_0002", S.IN_TRAINING, x=2),
        make_run("exp_trial_0003", S.TRAINING_DONE_NO_EVAL, x=3),
        make_run("exp_trial_0004", S.IN_EVAL, x=4),
        make_run("exp_trial_0005", S.COMPLETED, score=1.0, x=5),
        make_run("exp_trial_0006", S.FAILED, x=6),
    ]
    jobs = scheduler.schedule(runs, available_training_slots=2)
    trainings = [job for job in jobs if job.type is TRAIN]
    assert [job.run_id for job in trainings] == ["exp_trial_0007", "exp_trial_0008"]
    first, second = recorder.pending
    assert sorted(p["x"] for p in first) == [1, 2, 3, 4]
    assert second == [*first, trainings[0].metadata["adaptive/suggestion"]]
    assert sorted(o.suggestion["x"] for o in recorder.observations[0]) == [5, 6]


def test_trainings_fill_the_slots_without_a_barrier_up_to_max_trials() -> None:
    scheduler = scheduler_with(PendingRecorder(), max_trials=5)
    runs = [make_run("a", S.IN_EVAL, x=1), make_run("b", S.IN_TRAINING, x=2)]
    assert len(scheduler.schedule(runs, available_training_slots=2)) == 2
    runs = [make_run(f"r{i}", S.IN_TRAINING, x=i) for i in range(4)]
    assert len([j for j in scheduler.schedule(runs, 3) if j.type is TRAIN]) == 1
    assert scheduler.schedule([make_run(f"r{i}", S.COMPLETED, score=1.0) for i in range(5)], 4) == []


def test_evals_wait_for_the_cap_oldest_training_first() -> None:
    scheduler = scheduler_with(PendingRecorder(), max_concurrent_evals=2)
    runs = [make_run(name, S.TRAINING_DONE_NO_EVAL, x=i) for i, name in enumerate("abcd")]
    for run in runs:  # trainings ended in the order d, b, a, c
        run.started_at = datetime.fromtimestamp(1000.0, tz=UTC)
        run.runtime = {"a": 30.0, "b": 20.0, "c": 40.0, "d": 10.0}[run.run_id]
    runs.append(make_run("e", S.IN_EVAL))
    jobs = scheduler.schedule(runs, 0)
    assert [(job.run_id, job.type) for job in jobs] == [("d", EVAL)]  # e holds one of the two slots
    assert scheduler.schedule(runs, 0) == []  # d's eval is not visible yet, but it counts
    runs[3] = make_run("d", S.IN_EVAL)
    runs[4] = make_run("e", S.COMPLETED, score=1.0)
    assert [job.run_id for job in scheduler.schedule(runs, 0)] == ["b"]


def test_a_loaded_eval_the_store_never_saw_is_scheduled_again() -> None:
    scheduler = scheduler_with(PendingRecorder())
    scheduler.load_state({"runs_in_training": ["a"], "runs_in_eval": ["a"], "runs_completed": []})
    jobs = scheduler.schedule([make_run("a", S.TRAINING_DONE_NO_EVAL)], 0)
    assert [(job.run_id, job.type) for job in jobs] == [("a", EVAL)]
    assert scheduler.schedule([make_run("a", S.TRAINING_DONE_NO_EVAL)], 0) == []


def test_complete_once_max_trials_runs_have_finished() -> None:
    scheduler = scheduler_with(PendingRecorder(), max_trials=3)
    runs = [make_run("a", S.COMPLETED, score=1), make_run("b", S.FAILED), make_run("c", S.IN_EVAL)]
    assert not scheduler.is_experiment_complete(runs)
    runs[2] = make_run("c", S.CANCELLED)
    assert scheduler.is_experiment_complete(runs)


def test_max_concurrent_evals_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="max_concurrent_evals"):
        AsyncCappedSchedulerConfig(max_concurrent_evals=0)
