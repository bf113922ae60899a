"""A custom scheduler registered from outside the package: trials alternate between two values of `x`."""

from __future__ import annotations

from pydantic import Field

from sweepwise.core.models import JobDefinition, JobStatus, RunInfo
from sweepwise.schedulers import register_scheduler
from sweepwise.schedulers.base import (
    TrainAndEvalConfig,
    create_eval_job,
    create_training_job,
    generate_run_id,
)


class EveryOtherConfig(TrainAndEvalConfig):
    """Odd trials train with `x = low`, even ones with `x = high`."""

    experiment_id: str = "every_other"
    max_trials: int = Field(default=4, ge=1)
    low: float = 0.25
    high: float = 0.75


@register_scheduler("every_other", EveryOtherConfig)
class EveryOtherScheduler:
    """Evaluates every trained run and trains the next trials up to `max_trials`."""

    def __init__(self, config: EveryOtherConfig) -> None:
        self.config = config

    def schedule(self, runs: list[RunInfo], available_training_slots: int) -> list[JobDefinition]:
        jobs = [
            create_eval_job(self.config, run) for run in runs if run.status is JobStatus.TRAINING_DONE_NO_EVAL
        ]
        for i in range(min(self.config.max_trials - len(runs), max(0, available_training_slots))):
            trial = len(runs) + i + 1
            x = self.config.low if trial % 2 else self.config.high
            run_id = generate_run_id(self.config.experiment_id, trial)
            jobs.append(create_training_job(self.config, run_id, {"x": x}))
        return jobs

    def is_experiment_complete(self, runs: list[RunInfo]) -> bool:
        return sum(1 for run in runs if run.status.is_finished()) >= self.config.max_trials
