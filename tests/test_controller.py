"""The controller loop in virtual time: the simulated dispatcher replays whole sweeps in milliseconds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sweepwise.core import keys
from sweepwise.core.clock import VirtualClock
from sweepwise.core.errors import LeaseHeldError
from sweepwise.core.models import JobDefinition, JobStatus, JobTypes
from sweepwise.dispatchers.simulated import SimOutcome, SimulatedDispatcher
from sweepwise.engine.controller import AdaptiveController, ControllerHooks, ControllerSettings
from sweepwise.schedulers.base import JobSpec
from sweepwise.schedulers.batched_synced import BatchedSyncedOptimizingScheduler, BatchedSyncedSchedulerConfig
from sweepwise.stores.sql import SQLStore


class Crash(BaseException):
    """Stands for a kill -9 at a given point (never caught by the controller)."""


_X_BY_RUN: dict[str, float] = {}


def behaviour(job: JobDefinition) -> SimOutcome:
    """Training takes 10 + 100x and fails above x=0.9; eval scores x."""
    if job.type is JobTypes.LAUNCH_TRAINING:
        x = _X_BY_RUN[job.run_id] = float(job.overrides["x"])
        if x > 0.9:
            return SimOutcome(duration=5.0, exit_code=1, error="exit code 1; last output: diverged")
        return SimOutcome(duration=10.0 + 100.0 * x, result={"train_loss": 1 - x})
    return SimOutcome(duration=1.0, result={"score": _X_BY_RUN[job.run_id]})


def scheduler(max_trials: int = 8, batch_size: int = 4) -> BatchedSyncedOptimizingScheduler:
    config = BatchedSyncedSchedulerConfig(
        experiment_id="exp",
        max_trials=max_trials,
        batch_size=batch_size,
        train=JobSpec(cmd=["train"]),
        eval=JobSpec(cmd=["eval"]),
        parameters={"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
        optimizer={"type": "random", "seed": 3},
    )
    return BatchedSyncedOptimizingScheduler(config)


@pytest.fixture
def store(tmp_path: Path) -> SQLStore:
    sql = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    sql.ensure_experiment("exp", {})
    return sql


def controller(
    store: SQLStore,
    dispatcher: SimulatedDispatcher,
    *,
    max_parallel: int = 4,
    hooks: ControllerHooks | None = None,
    **kwargs: Any,
) -> AdaptiveController:
    return AdaptiveController(
        "exp",
        scheduler(**kwargs),
        dispatcher,
        store,
        settings=ControllerSettings(max_parallel=max_parallel, monitoring_interval=30.0),
        clock=dispatcher.clock,
        hooks=hooks,
    )


def started(dispatcher: SimulatedDispatcher) -> Counter[tuple[str, JobTypes]]:
    return Counter((rec.run_id, rec.job_type) for rec in dispatcher.started)


def test_sweep_trains_and_evaluates_every_trial_once(store: SQLStore) -> None:
    dispatcher = SimulatedDispatcher(VirtualClock(), behaviour)
    runs = controller(store, dispatcher).run()
    assert len(runs) == 8
    counts = started(dispatcher)
    assert set(counts.values()) == {1}
    for run in runs:
        if run.status is JobStatus.COMPLETED:
            assert counts[(run.run_id, JobTypes.LAUNCH_EVAL)] == 1
            x = run.suggestion["x"]
            assert run.summary[keys.OBSERVATION_SCORE] == pytest.approx(x)
            assert run.summary[keys.OBSERVATION_COST] == pytest.approx(10 + 100 * x)  # runtime: no cost given
            assert run.summary[keys.POST_EVAL_PROCESSED] is True
        else:
            assert run.status is JobStatus.FAILED and "diverged" in (run.error or "")
    assert store.get_experiment("exp").status == "complete"  # type: ignore[union-attr]


def test_barrier_no_training_starts_before_the_previous_batch_is_evaluated(store: SQLStore) -> None:
    dispatcher = SimulatedDispatcher(VirtualClock(), behaviour)
    controller(store, dispatcher).run()
    trainings = [rec for rec in dispatcher.started if rec.job_type is JobTypes.LAUNCH_TRAINING]
    first, second = trainings[:4], trainings[4:]
    last_eval_end = max(
        rec.at + 1.0
        for rec in dispatcher.started
        if rec.job_type is JobTypes.LAUNCH_EVAL and rec.at < second[0].at
    )
    assert {rec.at for rec in first} == {first[0].at}
    assert min(rec.at for rec in second) >= last_eval_end


def test_max_parallel_bounds_running_trainings(store: SQLStore) -> None:
    dispatcher = SimulatedDispatcher(VirtualClock(), behaviour)
    controller(store, dispatcher, max_parallel=2, batch_size=4).run()
    spans = [
        (rec.at, rec.at + behaviour(JobDefinition(run_id="r", cmd="t", overrides=rec.params)).duration)
        for rec in dispatcher.started
        if rec.job_type is JobTypes.LAUNCH_TRAINING
    ]
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2


def test_failed_training_reaches_the_optimizer_as_a_failure(store: SQLStore) -> None:
    dispatcher = SimulatedDispatcher(VirtualClock(), lambda job: SimOutcome(exit_code=2, error="exit code 2"))
    runs = controller(store, dispatcher, max_trials=4, batch_size=2).run()
    assert [run.status for run in runs] == [JobStatus.FAILED] * 4
    assert all(run.error == "exit code 2" for run in runs)
    assert all(rec.job_type is JobTypes.LAUNCH_TRAINING for rec in dispatcher.started)


def test_scheduler_state_is_saved_in_the_store(store: SQLStore) -> None:
    dispatcher = SimulatedDispatcher(VirtualClock(), behaviour)
    controller(store, dispatcher).run()
    state = store.load_state("exp")
    assert state is not None and len(state["runs_completed"]) == 8


def test_missing_metric_fails_the_run_with_one_line(store: SQLStore) -> None:
    dispatcher = SimulatedDispatcher(VirtualClock(), lambda job: SimOutcome(result={"acc": 1.0}))
    runs = controller(store, dispatcher, max_trials=2, batch_size=2).run()
    assert all(run.status is JobStatus.FAILED for run in runs)
    assert "no 'score'" in (runs[0].error or "") and "acc" in (runs[0].error or "")
    assert "\n" not in (runs[0].error or "")


class CrashingDispatcher(SimulatedDispatcher):
    """Crashes the controller once, before or after the Nth real dispatch."""

    def __init__(self, clock: VirtualClock, nth: int, after: bool) -> None:
        super().__init__(clock, behaviour)
        self.nth, self.after, self.calls = nth, after, 0

    def dispatch(self, job: JobDefinition) -> str:
        self.calls += 1
        if self.calls == self.nth and not self.after:
            raise Crash
        dispatch_id = super().dispatch(job)
        if self.calls == self.nth and self.after:
            raise Crash
        return dispatch_id


@pytest.mark.parametrize("nth", [1, 3, 6, 11])
@pytest.mark.parametrize("after", [False, True], ids=["before-dispatch", "after-dispatch"])
def test_crash_around_dispatch_resumes_without_loss_or_duplicates(
    store: SQLStore, nth: int, after: bool
) -> None:
    dispatcher = CrashingDispatcher(VirtualClock(), nth, after)
    with pytest.raises(Crash):
        controller(store, dispatcher).run()
    dispatcher.forget_watchers()
    runs = controller(store, dispatcher).run()
    assert len(runs) == 8
    assert set(started(dispatcher).values()) == {1}
    assert all(run.status.is_finished() for run in runs)


def test_crash_during_hook_applies_its_effect_once(store: SQLStore) -> None:
    calls: list[str] = []

    def hook(run: Any) -> dict[str, Any]:
        calls.append(run.run_id)
        if len(calls) == 3:
            raise Crash
        return {keys.OBSERVATION_SCORE: 1.0, "hook/effects": run.summary.get("hook/effects", 0) + 1}

    dispatcher = SimulatedDispatcher(VirtualClock(), behaviour)
    with pytest.raises(Crash):
        controller(store, dispatcher, hooks=ControllerHooks(on_eval_completed=hook)).run()
    dispatcher.forget_watchers()
    runs = controller(store, dispatcher, hooks=ControllerHooks(on_eval_completed=hook)).run()
    completed = [run for run in runs if run.status is JobStatus.COMPLETED]
    assert completed and all(run.summary["hook/effects"] == 1 for run in completed)
    assert set(started(dispatcher).values()) == {1}


def test_second_controller_is_refused_while_the_first_holds_the_lease(store: SQLStore) -> None:
    dispatcher = SimulatedDispatcher(VirtualClock(), behaviour)
    first = controller(store, dispatcher)
    first.lease.acquire(dispatcher.clock)
    with pytest.raises(LeaseHeldError, match="already being run"):
        controller(store, dispatcher).run()
    first.lease.release()
    assert len(controller(store, dispatcher).run()) == 8


def test_rerunning_a_complete_experiment_does_nothing(store: SQLStore) -> None:
    dispatcher = SimulatedDispatcher(VirtualClock(), behaviour)
    controller(store, dispatcher).run()
    before = len(dispatcher.started)
    runs = controller(store, dispatcher).run()
    assert len(runs) == 8 and len(dispatcher.started) == before


def test_a_job_silent_past_stale_after_becomes_stale_and_is_cancelled(store: SQLStore) -> None:
    dispatcher = SimulatedDispatcher(VirtualClock(), lambda job: SimOutcome(duration=1000.0))
    ctl = controller(store, dispatcher, max_trials=2, batch_size=2)
    ctl.settings = ControllerSettings(max_parallel=2, monitoring_interval=30.0, stale_after=120.0)
    runs = ctl.run()
    assert [run.status for run in runs] == [JobStatus.STALE, JobStatus.STALE]
    assert all("no heartbeat" in (run.error or "") for run in runs)
    assert dispatcher.clock.now() - dispatcher.started[0].at < 1000.0  # cancelled, not waited out


def test_on_job_dispatch_sees_every_job_with_its_dispatch_id(store: SQLStore) -> None:
    seen: list[tuple[str, JobTypes, str]] = []
    hooks = ControllerHooks(
        on_job_dispatch=lambda job, dispatch_id: seen.append((job.run_id, job.type, dispatch_id))
    )
    dispatcher = SimulatedDispatcher(VirtualClock(), behaviour)
    controller(store, dispatcher, hooks=hooks, max_trials=2, batch_size=2).run()
    assert sorted(seen) == sorted(
        (rec.run_id, rec.job_type, f"sim:{rec.run_id}:{rec.job_type.short}") for rec in dispatcher.started
    )


class GreedyScheduler:
    """Asks for more trainings than there are slots."""

    def __init__(self) -> None:
        self.asked = 0

    def schedule(self, runs: list[Any], available_training_slots: int) -> list[JobDefinition]:
        if runs:
            return []
        return [JobDefinition(run_id=f"g{i}", cmd="t") for i in range(5)]

    def is_experiment_complete(self, runs: list[Any]) -> bool:
        return len(runs) > 0 and all(run.status.is_finished() for run in runs)


def test_over_slot_requests_are_cut_to_the_free_slots(store: SQLStore) -> None:
    dispatcher = SimulatedDispatcher(VirtualClock(), lambda job: SimOutcome(duration=5.0))
    ctl = AdaptiveController(
        "exp",
        GreedyScheduler(),
        dispatcher,
        store,
        settings=ControllerSettings(max_parallel=2),
        clock=dispatcher.clock,
    )
    ctl.lease.acquire(dispatcher.clock)
    report = ctl.tick()
    assert [job.run_id for job in report.dispatched] == ["g0", "g1"]


def test_a_spec_without_eval_completes_runs_from_their_training_result(store: SQLStore) -> None:
    config = BatchedSyncedSchedulerConfig(
        experiment_id="exp",
        max_trials=3,
        batch_size=3,
        train=JobSpec(cmd=["train"]),
        parameters={"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
        optimizer={"type": "random", "seed": 1},
    )
    dispatcher = SimulatedDispatcher(
        VirtualClock(), lambda job: SimOutcome(duration=2.0, result={"score": 0.5})
    )
    runs = AdaptiveController(
        "exp", BatchedSyncedOptimizingScheduler(config), dispatcher, store, clock=dispatcher.clock
    ).run()
    assert [run.status for run in runs] == [JobStatus.COMPLETED] * 3
    assert all(run.summary[keys.OBSERVATION_SCORE] == 0.5 for run in runs)
    assert {rec.job_type for rec in dispatcher.started} == {JobTypes.LAUNCH_TRAINING}
