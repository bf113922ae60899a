"""Mirror `AxScheduler` trials into the sweepwise store, so `sweepwise status` shows them.

Each Ax trial is one run: its training job is the trial's job; a trial Ax accepted is
also given a finished eval step (the moment its data reached Ax), so it reads COMPLETED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweepwise.core.lifecycle import completed_events, failed_event, started_event
from sweepwise.core.models import JobDefinition, JobTypes

if TYPE_CHECKING:
    from sweepwise.stores.sql import SQLStore


class TrialRecorder:
    """Writes the runs of one Ax experiment into a `SQLStore`.

    Args:
        store: the store.
        experiment: the sweepwise experiment name.
        spec: what `sweepwise status` shows as the experiment's spec.
    """

    def __init__(self, store: SQLStore, experiment: str, spec: dict[str, Any]) -> None:
        self.store = store
        self.experiment = experiment
        store.ensure_experiment(experiment, spec)

    def started(
        self, run_id: str, trial_index: int, params: dict[str, Any], command: str, dispatch_id: str, at: float
    ) -> None:
        """The trial's job was submitted."""
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
        """Ax accepted the trial's data."""
        score = _score(result)
        summary_result = {**result, **({"score": score} if score is not None else {})}
        self.store.apply_events(completed_events(run_id, summary_result, started_at, ended_at))

    def failed(
        self, run_id: str, error: str, started_at: float, ended_at: float, exit_code: int | None
    ) -> None:
        """The trial failed with `error`."""
        self.store.apply_events([failed_event(run_id, error, started_at, ended_at, exit_code)])

    def finish(self) -> None:
        """Mark the experiment complete."""
        self.store.set_experiment_status(self.experiment, "complete")


def _score(result: dict[str, Any]) -> float | None:
    """The first metric's mean, shown as the run's score (single-objective view)."""
    for value in result.values():
        if isinstance(value, list | tuple):
            return float(value[0])
        if isinstance(value, int | float):
            return float(value)
    return None


__all__ = ["TrialRecorder"]
