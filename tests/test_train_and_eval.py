"""Seed 002's TrainAndEvalScheduler."""

from __future__ import annotations

from helpers import make_run
from sweepwise.core import keys
from sweepwise.core.models import JobStatus, JobTypes
from sweepwise.schedulers.base import TrainAndEvalConfig
from sweepwise.schedulers.train_and_eval import TrainAndEvalScheduler


def test_entrypoint_jobs_get_the_seed_arguments() -> None:
    config = TrainAndEvalConfig(recipe_module="experiments.recipes.arena", max_trials=3, experiment_id="g")
    scheduler = TrainAndEvalScheduler(config)
    jobs = scheduler.schedule([], available_training_slots=2)
    assert [job.cmd for job in jobs] == ["experiments.recipes.arena.train"] * 2
    assert jobs[0].args == {"run": "g_trial_0001", "group": "g"}
    trained = make_run("g_trial_0001", JobStatus.TRAINING_DONE_NO_EVAL)
    trained.summary[keys.TRAIN_RESULT] = {"policy_uri": "file:///ckpt"}
    jobs = scheduler.schedule([trained, make_run("g_trial_0002", JobStatus.IN_TRAINING)], 0)
    assert [(job.type, job.cmd, job.args) for job in jobs] == [
        (JobTypes.LAUNCH_EVAL, "experiments.recipes.arena.evaluate", {"policy_uri": "file:///ckpt"})
    ]


def test_trains_up_to_max_trials_and_completes() -> None:
    scheduler = TrainAndEvalScheduler(TrainAndEvalConfig(recipe_module="m", max_trials=2))
    runs = [make_run("a", JobStatus.COMPLETED, score=1), make_run("b", JobStatus.FAILED)]
    assert scheduler.schedule(runs, 4) == []
    assert scheduler.is_experiment_complete(runs)
    assert not scheduler.is_experiment_complete(runs[:1])
