"""`RunList`: the status index, and finished runs dropped from memory and read back from the store."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sweepwise.core.clock import VirtualClock
from sweepwise.core.models import JobStatus, RunInfo
from sweepwise.core.runs import FINISHED, RunList, changed_since, count_status, with_status
from sweepwise.dispatchers.simulated import SimOutcome, SimulatedDispatcher
from sweepwise.engine.controller import AdaptiveController, ControllerSettings
from sweepwise.schedulers.base import JobSpec
from sweepwise.schedulers.batched_synced import BatchedSyncedOptimizingScheduler, BatchedSyncedSchedulerConfig
from sweepwise.stores.sql import SQLStore


def _run(run_id: str, *, done: bool) -> RunInfo:
    flags = dict.fromkeys(
        ("has_started_training", "has_completed_training", "has_started_eval", "has_been_evaluated"), done
    )
    return RunInfo(run_id=run_id, summary={"n": int(run_id[1:])}, **flags)


class Store:
    """What a `RunList` reads dropped runs from: a dict, counting the reads."""

    def __init__(self) -> None:
        self.runs: dict[str, RunInfo] = {}
        self.reads = 0

    def load(self, run_ids: list[str]) -> list[RunInfo]:
        self.reads += 1
        return [self.runs[run_id] for run_id in run_ids]


@pytest.fixture
def store() -> Store:
    return Store()


def _fill(store: Store, n: int, keep: int) -> RunList:
    runs = RunList(load=store.load, keep_finished=keep)
    for i in range(n):
        run = _run(f"r{i}", done=i < n - 2)  # the last two are still running
        store.runs[run.run_id] = run
        runs.upsert(run)
    return runs


def test_only_the_newest_finished_runs_stay_in_memory(store: Store) -> None:
    runs = _fill(store, 10, keep=3)
    assert len(runs) == 10 and runs.in_memory == 3 + 2
    assert runs.how_many(JobStatus.COMPLETED) == 8 and count_status(runs, *FINISHED) == 8
    assert [run.run_id for run in with_status(runs, JobStatus.PENDING)] == ["r8", "r9"]
    assert [run.run_id for run in runs.recently_finished(2)] == ["r6", "r7"]
    assert store.reads == 0


def test_one_dropped_run_is_read_without_bringing_the_others_back(store: Store) -> None:
    runs = _fill(store, 10, keep=3)
    assert runs[0].summary == {"n": 0} and runs.get("r1") is not None
    changed, version = changed_since(runs, 0)
    assert [run.run_id for run in changed] == [f"r{i}" for i in range(10)] and version == 10
    assert store.reads == 3 and runs.in_memory == 5


def test_reading_them_all_brings_them_back_for_good(store: Store) -> None:
    runs = _fill(store, 10, keep=3)
    assert [run.summary["n"] for run in runs] == list(range(10))
    assert runs.in_memory == 10 and store.reads == 1
    runs.upsert(_run("r10", done=True))
    assert runs.in_memory == 11  # a scheduler that reads old runs keeps them all
    assert len(runs.in_status(JobStatus.COMPLETED)) == 9 and store.reads == 1


def test_a_dropped_run_updated_again_is_back_in_memory(store: Store) -> None:
    runs = _fill(store, 10, keep=3)
    again = _run("r0", done=True)
    again.summary["hook"] = True
    runs.upsert(again)
    assert runs.get("r0") is again and runs.how_many(JobStatus.COMPLETED) == 8
    assert runs.in_memory == 5  # r0 is among the newest now; an older one was dropped instead


def test_slices_comparisons_and_membership_see_every_run(store: Store) -> None:
    runs = _fill(store, 6, keep=1)
    assert [run.run_id for run in runs[:2]] == ["r0", "r1"]
    assert store.runs["r2"] in runs and runs == [store.runs[f"r{i}"] for i in range(6)]


def _sweep(tmp_path: Path, max_trials: int, batch_size: int) -> tuple[SQLStore, BatchedSyncedSchedulerConfig]:
    """A store with experiment `exp`, and a random sweep of it with train and eval jobs."""
    sql = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    sql.ensure_experiment("exp", {})
    space = {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}}
    return sql, BatchedSyncedSchedulerConfig(
        experiment_id="exp",
        max_trials=max_trials,
        batch_size=batch_size,
        train=JobSpec(cmd="t"),
        eval=JobSpec(cmd="e"),
        parameters=space,
        optimizer={"type": "random", "seed": 0},
    )


@pytest.mark.slow  # 1,300 trials; the bound itself: the RunList tests above, in the fast subset
def test_a_long_sweep_keeps_a_bounded_number_of_runs_and_returns_them_all(tmp_path: Path) -> None:
    sql, config = _sweep(tmp_path, 1300, 16)
    clock = VirtualClock()
    scheduler = BatchedSyncedOptimizingScheduler(config)
    controller = AdaptiveController(
        "exp",
        scheduler,
        SimulatedDispatcher(clock, lambda job: SimOutcome(result={"score": 1.0})),
        sql,
        settings=ControllerSettings(max_parallel=16),
        clock=clock,
    )
    runs = controller.run()
    assert isinstance(runs, RunList) and runs.in_memory <= 1000
    assert len(scheduler._observations.collect(runs)) == 1300  # the optimizer saw every trial
    assert [run.status for run in runs] == [JobStatus.COMPLETED] * 1300
    assert runs[0].summary["observation/score"] == 1.0 and runs[0].train_job is None


class Crash(BaseException):
    """Stands for a kill -9 of the controller."""


class CrashingDispatcher(SimulatedDispatcher):
    def __init__(self, crash_at: int) -> None:
        super().__init__(VirtualClock(), lambda job: SimOutcome(duration=1.0, result={"score": 1.0}))
        self.crash_at, self.calls = crash_at, 0

    def dispatch(self, job: Any) -> str:
        self.calls += 1
        if self.calls == self.crash_at:
            raise Crash
        return super().dispatch(job)


def test_a_restarted_controller_with_few_runs_in_memory_loses_and_repeats_nothing(tmp_path: Path) -> None:
    sql, config = _sweep(tmp_path, 40, 4)
    dispatcher = CrashingDispatcher(crash_at=50)

    def controller() -> AdaptiveController:
        made = AdaptiveController(
            "exp",
            BatchedSyncedOptimizingScheduler(config),
            dispatcher,
            sql,
            settings=ControllerSettings(max_parallel=4),
            clock=dispatcher.clock,
        )
        made.runs = RunList(load=made._load_runs, keep_finished=5)
        return made

    with pytest.raises(Crash):
        controller().run()
    dispatcher.forget_watchers()
    second = controller()
    runs = second.run()
    assert runs.in_memory < 40
    assert len(second.scheduler._observations.collect(runs)) == 40
    started = Counter((record.run_id, record.job_type) for record in dispatcher.started)
    assert len(started) == 80 and set(started.values()) == {1}
    assert [run.status for run in runs] == [JobStatus.COMPLETED] * 40
