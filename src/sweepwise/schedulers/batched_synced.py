"""Seed 000's batched synchronized optimizing scheduler.

No new batch starts until every run of the experiment, evals included, has
finished; then the optimizer suggests up to `min(batch_size, remaining, slots)`
new trainings from the observations of the finished runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator

from sweepwise.core.models import JobDefinition, JobStatus, RunInfo
from sweepwise.core.protocols import Optimizer
from sweepwise.core.runs import FINISHED, UNFINISHED, changed_since, count_status, with_status
from sweepwise.optimizers import OptimizerSpec
from sweepwise.optimizers.protein.settings import ProteinConfig
from sweepwise.schedulers import register_scheduler
from sweepwise.schedulers.base import (
    ObservationLog,
    TemplateEnvironment,
    TrainAndEvalConfig,
    build_optimizer,
    create_eval_job,
    create_training_job,
    generate_run_id,
)
from sweepwise.schedulers.search import check_protein_config

logger = logging.getLogger(__name__)


class BatchedSyncedSchedulerConfig(TrainAndEvalConfig):
    """Configuration for the batched synchronized scheduler (seed field names).

    The search is given either in `parameters`, `goal` and `optimizer`, or as seed 000
    writes it, in `protein_config` (its metric, goal, parameters and Protein settings);
    both at once must agree. Without a search space every run trains with the fixed
    `train_overrides`. A searched `gpus` or `nodes` is each run's resource request.

    Attributes:
        batch_size: training jobs per batch.
        stats_server_uri: passed to every train and eval job as the override
            `stats_server_uri` (an entrypoint that does not take it is not given it).
        parameters: the search space, flat dot-path names to specs.
        optimizer: the optimizer (`protein` by default).
        goal: `maximize` or `minimize`; None: `protein_config.goal`, else `maximize`.
        protein_config: the seed's `ProteinConfig`.
        force_eval: schedule an eval for every trained run the store shows without one.
    """

    experiment_id: str = "batched_synced"
    max_trials: int = Field(default=10, ge=1)
    batch_size: int = Field(default=4, ge=1)
    stats_server_uri: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    goal: Literal["maximize", "minimize"] | None = None
    protein_config: ProteinConfig | None = None
    force_eval: bool = Field(
        default=False,
        description="schedule an eval for every trained run the store shows without one, "
        "even when the saved state believes it already started",
    )

    @field_validator("protein_config")
    @classmethod
    def _agrees_with_own_search(
        cls, value: ProteinConfig | None, info: ValidationInfo
    ) -> ProteinConfig | None:
        if value is not None:
            check_protein_config(value, info.data)
        return value


class SchedulerState(BaseModel):
    """Which runs are in training, in evaluation and finished.

    It keeps the scheduler from dispatching a job twice between the moment it is
    scheduled and the moment the store shows it.
    """

    model_config = ConfigDict(extra="forbid")

    runs_in_training: set[str] = Field(default_factory=set)
    runs_in_eval: set[str] = Field(default_factory=set)
    runs_completed: set[str] = Field(default_factory=set)
    _seen: int = PrivateAttr(default=0)  # the RunList version already applied

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """Serialize state to a JSON-ready dictionary (sets become sorted lists)."""
        data = super().model_dump(**kwargs)
        return {key: sorted(value) for key, value in data.items()}

    @classmethod
    def from_runs(cls, runs: Sequence[RunInfo]) -> SchedulerState:
        """Rebuild the state from run statuses (the restart rule)."""
        state = cls()
        state.update(runs)
        return state

    def update(self, runs: Sequence[RunInfo]) -> None:
        """Move each run to the set its status says."""
        changed, self._seen = changed_since(runs, self._seen)
        for run in changed:
            run_id = run.run_id
            if run_id in self.runs_completed:  # finished runs never change again
                continue
            status = run.status
            if status in (JobStatus.PENDING, JobStatus.IN_TRAINING, JobStatus.TRAINING_DONE_NO_EVAL):
                self.runs_in_training.add(run_id)
            elif status is JobStatus.IN_EVAL:
                self.runs_in_training.discard(run_id)
                self.runs_in_eval.add(run_id)
            else:
                self.runs_in_training.discard(run_id)
                self.runs_in_eval.discard(run_id)
                self.runs_completed.add(run_id)


@register_scheduler("batched_synced", BatchedSyncedSchedulerConfig)
class BatchedSyncedOptimizingScheduler(TemplateEnvironment[BatchedSyncedSchedulerConfig]):
    """Scheduler that generates batches of suggestions synchronously.

    Args:
        config: the typed config.
        state: a saved `SchedulerState` (or its dict); rebuilt from the runs when None.
        optimizer: the optimizer to ask; built from `config.optimizer` when None.
    """

    def __init__(
        self,
        config: BatchedSyncedSchedulerConfig,
        state: SchedulerState | dict[str, Any] | None = None,
        optimizer: Optimizer | None = None,
    ) -> None:
        self.config = config
        self.state: SchedulerState | None = (
            SchedulerState.model_validate(state) if isinstance(state, dict) else state
        )
        self.optimizer = build_optimizer(config, optimizer)
        self._observations = ObservationLog()

    def load_state(self, data: dict[str, Any]) -> None:
        """Restore the state saved by a previous controller."""
        self.state = SchedulerState.model_validate(data)

    def schedule(self, runs: Sequence[RunInfo], available_training_slots: int) -> list[JobDefinition]:
        """Evals for trained runs first; a new batch only once every run has finished."""
        if self.state is None:
            self.state = SchedulerState.from_runs(runs)
        else:
            self.state.update(runs)
        evals = [
            create_eval_job(self.config, run)
            for run in with_status(runs, JobStatus.TRAINING_DONE_NO_EVAL)
            if self.config.force_eval or run.run_id not in self.state.runs_in_eval
        ]
        if evals:
            for job in evals:
                self.state.runs_in_eval.add(job.run_id)
            return evals

        total_created = len(runs)
        if total_created >= self.config.max_trials:
            return []
        if count_status(runs, *UNFINISHED):
            return []  # the barrier
        to_launch = min(
            self.config.batch_size, self.config.max_trials - total_created, available_training_slots
        )
        if to_launch <= 0:
            return []
        observations = self._observations.collect(runs)
        suggestions = self.optimizer.suggest(observations, n_suggestions=to_launch)
        jobs = []
        for i, suggestion in enumerate(suggestions[:to_launch]):
            run_id = generate_run_id(self.config.experiment_id, total_created + i + 1)
            jobs.append(create_training_job(self.config, run_id, suggestion))
            self.state.runs_in_training.add(run_id)
        logger.info("batch of %d trainings from %d observations", len(jobs), len(observations))
        return jobs

    def is_experiment_complete(self, runs: Sequence[RunInfo]) -> bool:
        """True once `max_trials` runs are COMPLETED, FAILED, STALE or CANCELLED."""
        if self.state is not None:
            self.state.update(runs)
        return count_status(runs, *FINISHED) >= self.config.max_trials


__all__ = ["BatchedSyncedOptimizingScheduler", "BatchedSyncedSchedulerConfig", "SchedulerState"]
