"""A trial as `AxScheduler` sees it, and the batch context that collects trials to run."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweepwise.ax.scheduler import AxScheduler


class TrialStatus(enum.StrEnum):
    """Where a trial stands in the scheduler."""

    CANDIDATE = "CANDIDATE"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    def is_finished(self) -> bool:
        """True for COMPLETED and FAILED."""
        return self in (TrialStatus.COMPLETED, TrialStatus.FAILED)


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


class BatchTrialContext:
    """Collects trials with `add_trial` and runs them together with `run`."""

    def __init__(self, scheduler: AxScheduler) -> None:
        self._scheduler = scheduler
        self.trial_indices: list[int] = []

    def add_trial(self, params: Mapping[str, Any]) -> int:
        """Attach a trial with these parameters to the experiment; return its index."""
        index = self._scheduler._attach(dict(params))
        self.trial_indices.append(index)
        return index

    def run(self) -> list[Trial]:
        """Run every added trial (up to the runner's capacity at once) and wait for them."""
        return self._scheduler._run_many(self.trial_indices)


def status_from_ax(trial: Any) -> TrialStatus:
    """Our status for an Ax trial (by its status name, so any Ax version works)."""
    status = str(getattr(trial.status, "name", trial.status)).upper()
    if status == "COMPLETED":
        return TrialStatus.COMPLETED
    if status in ("FAILED", "ABANDONED", "EARLY_STOPPED"):
        return TrialStatus.FAILED
    return TrialStatus.CANDIDATE


__all__ = ["BatchTrialContext", "Trial", "TrialStatus", "status_from_ax"]
