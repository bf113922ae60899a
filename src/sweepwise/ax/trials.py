"""A trial as `AxScheduler` sees it, and the batch context that collects trials to run."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweepwise.ax.scheduler import AxScheduler


class TrialStatus(enum.StrEnum):
    """Where a trial stands in the scheduler.

    Seed 001 calls this `TrialState` (an alias here) and its first state `CREATED`
    (an alias of `CANDIDATE`), so code comparing against the seed's names still works.
    """

    CANDIDATE = "CANDIDATE"
    CREATED = "CANDIDATE"  # the seed's name for a trial not yet run
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"  # never run: abandoned (a batch left by an exception, or in Ax)

    def is_finished(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED."""
        return self in (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.CANCELLED)


TrialState = TrialStatus
"""Seed 001's name for `TrialStatus`."""


@dataclass(slots=True)
class Trial:
    """One Ax trial as the scheduler sees it (what `run_trial` returns).

    Attributes:
        index: the Ax trial index.
        parameters: its parameters.
        status: where it stands.
        run_id: the sweepwise run that records it.
        result: the data given to Ax, once completed.
        error: why it failed, once failed.
        started_at: when its job started (seconds since the epoch).
        ended_at: when it ended.
        dispatch_id: the runner's id for its job.
        scheduler: the scheduler that runs it (for `check_status`; not compared or shown).
    """

    index: int
    parameters: dict[str, Any]
    status: TrialStatus = TrialStatus.CANDIDATE
    run_id: str = ""
    result: dict[str, Any] | None = None
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    dispatch_id: str | None = None
    scheduler: AxScheduler | None = field(default=None, repr=False, compare=False)

    @property
    def trial_id(self) -> str:
        """The seed's id for the trial: `trial_<index>`."""
        return f"trial_{self.index}"

    @property
    def state(self) -> TrialStatus:
        """The seed's name for `status`."""
        return self.status

    def check_status(self) -> TrialStatus:
        """Poll, then return the status.

        While the trial runs, this is one non-blocking pass of its scheduler (as
        `monitor_trials`): every trial whose job has ended is completed or failed in
        Ax and in the store, and trials past `max_trial_monitoring_time` are stopped.
        """
        if self.status is TrialStatus.RUNNING and self.scheduler is not None:
            self.scheduler.monitor_trials()
        return self.status

    def get_results(self) -> dict[str, Any]:
        """The trial's data, `{metric: value | (mean, sem)}`; `{}` until it has completed."""
        return dict(self.result or {})


class BatchTrialContext:
    """Collects trials with `add_trial` and runs them together with `run`.

    Leaving `scheduler.batch_trial_context()` runs the trials `run` has not run yet;
    leaving it by an exception runs none and marks those abandoned in Ax.
    """

    def __init__(self, scheduler: AxScheduler) -> None:
        self._scheduler = scheduler
        self.trial_indices: list[int] = []
        self._pending: list[int] = []

    @property
    def pending(self) -> list[int]:
        """The indices of the trials added but not run yet."""
        return list(self._pending)

    def add_trial(self, params: Mapping[str, Any]) -> int:
        """Attach a trial with these parameters to the experiment; return its index."""
        index = self._scheduler._attach(dict(params))
        self.trial_indices.append(index)
        self._pending.append(index)
        return index

    def run(self) -> list[Trial]:
        """Run the added trials not run yet (up to the runner's capacity at once); wait for them.

        Returns:
            Those trials, finished (completed or failed), in the order they were added.
        """
        indices, self._pending = self._pending, []
        return self._scheduler._run_many(indices)

    def abandon(self, reason: str) -> None:
        """Mark the trials not run yet abandoned in Ax (CANCELLED here), with `reason`."""
        indices, self._pending = self._pending, []
        for index in indices:
            self._scheduler._abandon(index, reason)


def status_from_ax(trial: Any) -> TrialStatus:
    """Our status for an Ax trial (by its status name, so any Ax version works)."""
    status = str(getattr(trial.status, "name", trial.status)).upper()
    if status == "COMPLETED":
        return TrialStatus.COMPLETED
    if status in ("FAILED", "EARLY_STOPPED"):
        return TrialStatus.FAILED
    if status == "ABANDONED":
        return TrialStatus.CANCELLED
    return TrialStatus.CANDIDATE


__all__ = ["BatchTrialContext", "Trial", "TrialState", "TrialStatus", "status_from_ax"]
