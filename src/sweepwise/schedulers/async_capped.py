"""Asynchronous optimizing scheduler: every training slot busy, evaluations capped.

There is no barrier: whenever a training slot frees up, the optimizer suggests a new
trial from the observations so far, told which suggestions are still running so that
parallel trials spread out instead of piling onto one point. Evaluations run at most
`max_concurrent_evals` at a time (an evaluator GPU, a shared benchmark server); the
other trained runs wait their turn, the one whose training finished first going next.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from sweepwise.core.models import JobDefinition, JobStatus, RunInfo
from sweepwise.core.protocols import Optimizer
from sweepwise.core.runs import FINISHED, UNFINISHED, count_status, with_status
from sweepwise.optimizers import OptimizerSpec
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
from sweepwise.schedulers.batched_synced import SchedulerState

logger = logging.getLogger(__name__)


class AsyncCappedSchedulerConfig(TrainAndEvalConfig):
    """Configuration of the asynchronous scheduler with capped evaluations.

    Attributes:
        max_trials: how many runs the experiment creates in all.
        parameters: the search space (see `SearchSpace.from_dict`).
        optimizer: which optimizer suggests the trials (`protein` by default).
        goal: `maximize` or `minimize` the score.
        max_concurrent_evals: evaluation jobs allowed to run at once (>= 1).
    """

    experiment_id: str = "async_capped"
    max_trials: int = Field(default=10, ge=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    goal: Literal["maximize", "minimize"] = "maximize"
    max_concurrent_evals: int = Field(default=1, ge=1, description="evaluation jobs running at once")


def _training_done_at(run: RunInfo) -> float:
    """When a run's training ended (seconds since the epoch); +inf when unknown."""
    if run.started_at is None:
        return float("inf")
    return run.started_at.timestamp() + run.runtime


@register_scheduler("async_capped", AsyncCappedSchedulerConfig)
class AsyncCappedOptimizingScheduler(TemplateEnvironment[AsyncCappedSchedulerConfig]):
    """Keeps every training slot busy and at most `max_concurrent_evals` evaluations running.

    Its `state` is a `SchedulerState` (runs in training, in eval, completed). A state
    loaded from the store describes what an earlier controller scheduled; any eval it
    scheduled that the store does not show as started was never dispatched (the
    controller commits an eval's intent before saving the state), so it is scheduled
    again rather than counted as running.

    Args:
        config: the typed config.
        state: a saved `SchedulerState` (or its dict); rebuilt from the runs when None.
        optimizer: the optimizer to ask; built from `config.optimizer` when None.
    """

    def __init__(
        self,
        config: AsyncCappedSchedulerConfig,
        state: SchedulerState | dict[str, Any] | None = None,
        optimizer: Optimizer | None = None,
    ) -> None:
        self.config = config
        self.state: SchedulerState | None = (
            SchedulerState.model_validate(state) if isinstance(state, dict) else state
        )
        self._reconcile = self.state is not None
        self.optimizer = build_optimizer(config, optimizer)
        self._observations = ObservationLog()

    def load_state(self, data: dict[str, Any]) -> None:
        """Restore the state saved by a previous controller."""
        self.state = SchedulerState.model_validate(data)
        self._reconcile = True

    def schedule(self, runs: Sequence[RunInfo], available_training_slots: int) -> list[JobDefinition]:
        """Evals up to the cap, then new trainings for every free slot.

        Args:
            runs: every run of the experiment.
            available_training_slots: how many trainings may start now.

        Returns:
            The eval jobs first, then the training jobs.
        """
        state = self._sync(runs)
        jobs = self._evals(runs, state)
        jobs.extend(self._trainings(runs, available_training_slots, state))
        return jobs

    def is_experiment_complete(self, runs: Sequence[RunInfo]) -> bool:
        """True once `max_trials` runs are COMPLETED, FAILED, STALE or CANCELLED."""
        if self.state is not None:
            self.state.update(runs)
        return count_status(runs, *FINISHED) >= self.config.max_trials

    # -- steps -------------------------------------------------------------------------------

    def _sync(self, runs: Sequence[RunInfo]) -> SchedulerState:
        if self.state is None:
            self.state = SchedulerState.from_runs(runs)
            return self.state
        if self._reconcile:
            self._reconcile = False
            for run in with_status(runs, JobStatus.TRAINING_DONE_NO_EVAL):
                self.state.runs_in_eval.discard(run.run_id)
        self.state.update(runs)
        return self.state

    def _evals(self, runs: Sequence[RunInfo], state: SchedulerState) -> list[JobDefinition]:
        # After `update`, `runs_in_eval` holds the runs IN EVAL plus the evals scheduled
        # earlier whose intent the store does not show yet.
        free = self.config.max_concurrent_evals - len(state.runs_in_eval)
        if free <= 0:
            return []
        waiting = [
            run
            for run in with_status(runs, JobStatus.TRAINING_DONE_NO_EVAL)
            if run.run_id not in state.runs_in_eval
        ]
        waiting.sort(key=_training_done_at)  # stable: ties keep the runs' creation order
        jobs = [create_eval_job(self.config, run) for run in waiting[:free]]
        for job in jobs:
            state.runs_in_eval.add(job.run_id)
        if len(waiting) > len(jobs):
            logger.debug("%d trained runs wait for an eval slot", len(waiting) - len(jobs))
        return jobs

    def _trainings(
        self, runs: Sequence[RunInfo], available_training_slots: int, state: SchedulerState
    ) -> list[JobDefinition]:
        to_launch = min(max(0, available_training_slots), self.config.max_trials - len(runs))
        if to_launch <= 0:
            return []
        observations = self._observations.collect(runs)
        pending = [run.suggestion for run in with_status(runs, *UNFINISHED) if run.suggestion]
        jobs: list[JobDefinition] = []
        for i in range(to_launch):
            # One at a time, each new suggestion pending for the next: any optimizer spreads out.
            suggestion = self.optimizer.suggest(observations, n_suggestions=1, pending=list(pending))[0]
            pending.append(suggestion)
            run_id = generate_run_id(self.config.experiment_id, len(runs) + i + 1)
            jobs.append(create_training_job(self.config, run_id, suggestion))
            state.runs_in_training.add(run_id)
        logger.info(
            "%d trainings from %d observations, %d pending",
            len(jobs),
            len(observations),
            len(pending) - len(jobs),
        )
        return jobs


__all__ = ["AsyncCappedOptimizingScheduler", "AsyncCappedSchedulerConfig"]
