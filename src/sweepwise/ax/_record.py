"""Mirror `AxScheduler` trials into the sweepwise store, so `sweepwise status` and `best` show them.

Each Ax trial is one run: its training job is the trial's job; a trial Ax accepted is
also given a finished eval step (the moment its data reached Ax), so it reads COMPLETED,
with `observation/score` and `observation/cost` as a sweep's post-eval hook writes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweepwise.core import keys
from sweepwise.core.lifecycle import completed_events, failed_event, started_event
from sweepwise.core.models import JobDefinition, JobTypes

if TYPE_CHECKING:
    from sweepwise.stores.sql import SQLStore


def _mean(value: Any) -> float | None:
    """The mean of an Ax value (`x` or `(mean, sem)`), when it is a finite number."""
    if isinstance(value, list | tuple) and value:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class Scoring:
    """How a trial's Ax data becomes its run's `observation/score`, and which way is better.

    The score is the objective metric's mean; with several objectives, the first one
    the objective names (sweepwise's `best` ranks by one number; Ax keeps the Pareto
    set); with a scalarized objective, the weighted sum Ax maximises.

    Attributes:
        metric: the name `sweepwise best` shows for the score.
        goal: `maximize` or `minimize`.
        weights: the objective's `(metric, weight)` pairs (a weight < 0 is minimised).
        scalarized: whether the score is the weighted sum of `weights`.
    """

    metric: str
    goal: str
    weights: tuple[tuple[str, float], ...] = ()
    scalarized: bool = False

    @classmethod
    def of(cls, weights: Sequence[tuple[str, float]], scalarized: bool) -> Scoring:
        """The scoring of an objective given as `AxBackend.objective_weights` returns it."""
        if not weights:
            return cls("score", "maximize")
        if scalarized:
            label = " + ".join(f"{weight:g}*{name}" for name, weight in weights)
            return cls(label, "maximize", tuple(weights), True)
        name, weight = weights[0]
        return cls(name, "minimize" if weight < 0 else "maximize", tuple(weights))

    def score(self, data: Mapping[str, Any]) -> float | None:
        """The score of a trial's data (None when the data lacks it)."""
        if not self.weights:  # no objective: the first value, as reported
            return next((m for m in map(_mean, data.values()) if m is not None), None)
        if not self.scalarized:
            return _mean(data.get(self.metric))
        total = 0.0
        for name, weight in self.weights:
            mean = _mean(data.get(name))
            if mean is None:
                return None
            total += weight * mean
        return total


def _cost(data: Mapping[str, Any], runtime: float) -> float:
    """The run's cost: the result's `cost` when it reported one (>= 0), else the job's runtime."""
    cost = _mean(data.get("cost"))
    return cost if cost is not None and cost >= 0 else max(0.0, runtime)


class TrialRecorder:
    """Writes the runs of one Ax experiment into a `SQLStore`.

    The experiment is created (if new) with a record whose `spec.metric` and
    `spec.goal` are what `sweepwise best` ranks by.

    Args:
        store: the store.
        experiment: the sweepwise experiment name.
        scoring: how a trial's data becomes its score.
        metrics: the Ax objective's metrics (shown with the experiment).
        runner: the runner's name; the record's dispatcher is `ax:<runner>`, so `sweepwise
            cancel` marks runs cancelled without stopping processes by ids it does not own.
        runs_root: where the trials' directories are (`<runs_root>/<experiment>/<run id>`).
    """

    def __init__(
        self,
        store: SQLStore,
        experiment: str,
        scoring: Scoring,
        *,
        metrics: Sequence[str] = (),
        runner: str = "runner",
        runs_root: str = ".",
    ) -> None:
        self.store = store
        self.experiment = experiment
        self.scoring = scoring
        spec = {
            "name": experiment,
            "metric": scoring.metric,
            "goal": scoring.goal,
            "dispatcher": {"type": f"ax:{runner}"},
        }
        record = {"spec": spec, "kind": "ax", "metrics": list(metrics), "runs_root": runs_root}
        self._status = store.ensure_experiment(experiment, record).status

    def started(
        self, run_id: str, trial_index: int, params: dict[str, Any], command: str, dispatch_id: str, at: float
    ) -> None:
        """The trial's job was submitted (the experiment is running again if it had finished)."""
        self._set_status("running")
        job = JobDefinition(
            run_id=run_id, cmd=command, overrides=dict(params), metadata={"ax_trial": trial_index}
        )
        self.store.record_training_intent(self.experiment, job, dict(params), trial_index)
        self.store.record_dispatch_id(run_id, JobTypes.LAUNCH_TRAINING, dispatch_id)
        self.store.apply_events([started_event(run_id, at, dispatch_id)])

    def attached(self, run_id: str, trial_index: int, params: dict[str, Any], at: float) -> None:
        """A trial whose data comes from `complete_trial` (no job of ours)."""
        self.started(run_id, trial_index, params, "ax:external", "external", at)

    def completed(self, run_id: str, result: dict[str, Any], started_at: float, ended_at: float) -> None:
        """Ax accepted the trial's data: the run completes with its score and cost."""
        observation: dict[str, Any] = {keys.OBSERVATION_COST: _cost(result, ended_at - started_at)}
        score = self.scoring.score(result)
        if score is not None:
            observation[keys.OBSERVATION_SCORE] = score
        events = completed_events(run_id, dict(result), started_at, ended_at)
        self.store.apply_events(events, {run_id: observation})

    def failed(
        self, run_id: str, error: str, started_at: float, ended_at: float, exit_code: int | None
    ) -> None:
        """The trial failed with `error`."""
        self.store.apply_events([failed_event(run_id, error, started_at, ended_at, exit_code)])

    def finish(self) -> None:
        """Mark the experiment complete (until a trial starts again)."""
        self._set_status("complete")

    def _set_status(self, status: str) -> None:
        if self._status != status:
            self.store.set_experiment_status(self.experiment, status)
            self._status = status


__all__ = ["Scoring", "TrialRecorder"]
