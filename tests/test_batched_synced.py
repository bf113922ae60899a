"""Seed 000's batched synchronized scheduler: every documented behaviour, pinned."""

from __future__ import annotations

import json

from helpers import RecordingOptimizer, make_run
from sweepwise.core.models import JobStatus, JobTypes
from sweepwise.schedulers.base import JobSpec
from sweepwise.schedulers.batched_synced import (
    BatchedSyncedOptimizingScheduler,
    BatchedSyncedSchedulerConfig,
    SchedulerState,
)

S = JobStatus


def make_scheduler(**overrides: object) -> tuple[BatchedSyncedOptimizingScheduler, RecordingOptimizer]:
    values: dict[str, object] = {
        "experiment_id": "exp",
        "max_trials": 6,
        "batch_size": 2,
        "train": JobSpec(cmd=["python", "train.py"]),
        "eval": JobSpec(cmd=["python", "eval.py"]),
        "train_overrides": {"trainer.epochs": 3},
    }
    values.update(overrides)
    optimizer = RecordingOptimizer()
    return BatchedSyncedOptimizingScheduler(
        BatchedSyncedSchedulerConfig(**values), optimizer=optimizer
    ), optimizer


def test_first_batch_is_batch_size_trainings_with_suggestions_merged_into_overrides() -> None:
    scheduler, _ = make_scheduler()
    jobs = scheduler.schedule([], available_training_slots=4)
    assert [job.run_id for job in jobs] == ["exp_trial_0001", "exp_trial_0002"]
    assert all(job.type is JobTypes.LAUNCH_TRAINING for job in jobs)
    assert jobs[0].overrides == {"trainer.epochs": 3, "x": 0}
    assert jobs[1].metadata["adaptive/suggestion"] == {"x": 1}


def test_new_trainings_bounded_by_slots_and_remaining_trials() -> None:
    scheduler, _ = make_scheduler(batch_size=4)
    assert len(scheduler.schedule([], available_training_slots=1)) == 1
    scheduler, _ = make_scheduler(batch_size=4, max_trials=5)
    runs = [make_run(f"r{i}", S.COMPLETED, score=i) for i in range(4)]
    assert len(scheduler.schedule(runs, available_training_slots=4)) == 1
    scheduler, _ = make_scheduler()
    assert scheduler.schedule([], available_training_slots=0) == []


def test_barrier_waits_for_every_run_including_evals() -> None:
    for blocking in (S.PENDING, S.IN_TRAINING, S.IN_EVAL):
        scheduler, optimizer = make_scheduler()
        runs = [make_run("a", S.COMPLETED, score=1.0), make_run("b", blocking)]
        assert scheduler.schedule(runs, available_training_slots=4) == []
        assert optimizer.calls == []


def test_evals_scheduled_for_trained_runs_and_nothing_else_that_tick() -> None:
    scheduler, optimizer = make_scheduler()
    runs = [make_run("a", S.TRAINING_DONE_NO_EVAL), make_run("b", S.COMPLETED, score=1.0)]
    jobs = scheduler.schedule(runs, available_training_slots=4)
    assert [(job.run_id, job.type) for job in jobs] == [("a", JobTypes.LAUNCH_EVAL)]
    assert jobs[0].cmd == ["python", "eval.py"]
    assert optimizer.calls == []
    # the same run is not scheduled twice while the store catches up
    assert scheduler.schedule(runs, available_training_slots=4) == []


def test_force_eval_schedules_again_when_the_store_shows_no_eval() -> None:
    scheduler, _ = make_scheduler(force_eval=True)
    runs = [make_run("a", S.TRAINING_DONE_NO_EVAL)]
    assert len(scheduler.schedule(runs, 4)) == 1
    assert len(scheduler.schedule(runs, 4)) == 1


def test_observations_only_from_completed_runs_and_failures_flagged() -> None:
    scheduler, optimizer = make_scheduler(max_trials=10)
    runs = [
        make_run("a", S.COMPLETED, score=0.5, x=1),
        make_run("b", S.FAILED, x=2),
        make_run("c", S.STALE, x=3),
        make_run("d", S.CANCELLED, score=9.0, x=4),
    ]
    scheduler.schedule(runs, available_training_slots=4)
    observations, n = optimizer.calls[0]
    assert n == 2
    ok = [o for o in observations if not o.is_failure]
    failed = [o for o in observations if o.is_failure]
    assert [(o.score, o.suggestion) for o in ok] == [(0.5, {"x": 1})]
    assert sorted(o.suggestion["x"] for o in failed) == [2, 3]


def test_no_new_training_once_max_trials_created() -> None:
    scheduler, _ = make_scheduler(max_trials=2)
    runs = [make_run("a", S.COMPLETED, score=1), make_run("b", S.FAILED)]
    assert scheduler.schedule(runs, 4) == []


def test_experiment_complete_counts_completed_failed_and_stale() -> None:
    scheduler, _ = make_scheduler(max_trials=3)
    runs = [make_run("a", S.COMPLETED, score=1), make_run("b", S.FAILED), make_run("c", S.IN_EVAL)]
    assert not scheduler.is_experiment_complete(runs)
    runs[2] = make_run("c", S.STALE)
    assert scheduler.is_experiment_complete(runs)


def test_state_round_trip_through_model_dump_and_model_validate() -> None:
    scheduler, _ = make_scheduler()
    scheduler.schedule([make_run("a", S.TRAINING_DONE_NO_EVAL), make_run("b", S.COMPLETED, score=1)], 4)
    assert scheduler.state is not None
    dumped = scheduler.state.model_dump()
    assert json.loads(json.dumps(dumped)) == dumped
    restored = SchedulerState.model_validate(dumped)
    assert restored == scheduler.state
    assert restored.runs_in_eval == {"a"} and restored.runs_completed == {"b"}


def test_state_rebuilt_from_run_statuses_after_restart() -> None:
    runs = [
        make_run("a", S.IN_TRAINING),
        make_run("b", S.IN_EVAL),
        make_run("c", S.COMPLETED, score=1),
        make_run("d", S.FAILED),
    ]
    state = SchedulerState.from_runs(runs)
    assert state.runs_in_training == {"a"}
    assert state.runs_in_eval == {"b"}
    assert state.runs_completed == {"c", "d"}
    scheduler, _ = make_scheduler()
    assert scheduler.state is None
    scheduler.schedule(runs, 4)
    assert scheduler.state == state


def test_loaded_state_prevents_a_second_eval_dispatch() -> None:
    scheduler, _ = make_scheduler()
    scheduler.load_state({"runs_in_training": [], "runs_in_eval": ["a"], "runs_completed": []})
    assert scheduler.schedule([make_run("a", S.TRAINING_DONE_NO_EVAL)], 4) == []
