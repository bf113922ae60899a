"""Seed 002's `TrainAndEvalScheduler`: train up to `max_trials` runs, evaluate each."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sweepwise.core.models import JobDefinition, JobStatus, RunInfo
from sweepwise.core.runs import FINISHED, count_status, with_status
from sweepwise.schedulers import register_scheduler
from sweepwise.schedulers.base import (
    TemplateEnvironment,
    TrainAndEvalConfig,
    create_eval_job,
    create_training_job,
    generate_run_id,
)

logger = logging.getLogger(__name__)


@register_scheduler("train_and_eval", TrainAndEvalConfig)
class TrainAndEvalScheduler(TemplateEnvironment[TrainAndEvalConfig]):
    """Schedules an eval for every run whose training is done, and new training up to `max_trials`.

    Args:
        config: the typed config (seed field names).
    """

    def __init__(self, config: TrainAndEvalConfig) -> None:
        self.config = config

    def schedule(self, runs: Sequence[RunInfo], available_training_slots: int) -> list[JobDefinition]:
        """Evals for runs with training done; new trainings bounded by slots and `max_trials`."""
        jobs = [
            create_eval_job(self.config, run) for run in with_status(runs, JobStatus.TRAINING_DONE_NO_EVAL)
        ]
        to_launch = min(self.config.max_trials - len(runs), max(0, available_training_slots))
        for i in range(to_launch):
            run_id = generate_run_id(self.config.experiment_id, len(runs) + i + 1)
            jobs.append(create_training_job(self.config, run_id, suggestion={}))
            logger.info("scheduling training %s", run_id)
        return jobs

    def is_experiment_complete(self, runs: Sequence[RunInfo]) -> bool:
        """True once `max_trials` runs have finished (completed, failed, stale or cancelled)."""
        return count_status(runs, *FINISHED) >= self.config.max_trials


__all__ = ["TrainAndEvalConfig", "TrainAndEvalScheduler"]  # the config where the seed imports it from
