"""A run's status and the one rule that derives it from the run's flags.

`sweepwise.core.lifecycle` moves the flags; `RunInfo.status` and the store's status
column both come from `status_of` here (docs/design.md, "A trial's life").
"""

from __future__ import annotations

import enum
from typing import Protocol


class JobStatus(enum.StrEnum):
    """A run's status, derived from its flags (see `RunInfo.status`)."""

    PENDING = "PENDING"
    IN_TRAINING = "IN TRAINING"
    TRAINING_DONE_NO_EVAL = "TRAINING DONE (NO EVAL)"
    IN_EVAL = "IN EVAL"
    COMPLETED = "COMPLETED"
    STALE = "STALE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    STOPPED = "STOPPED"  # ended early by the spec's stopper (docs/optimizers.md, "Early stopping")

    @property
    def key(self) -> str:
        """The status's stable machine name (`in_training`), as `--json` output shows it.

        The value (`IN TRAINING`) is the human label, kept in the store's status column;
        `key` is what scripts match on (docs/design.md, "A trial's life").
        """
        return _KEYS[self]

    @property
    def label(self) -> str:
        """The human label (`IN TRAINING`): the value, beside `key` in `--json` output."""
        return self.value

    @classmethod
    def from_key(cls, key: str) -> JobStatus:
        """The status whose `key` is `key`.

        Raises:
            ValueError: no status has that key; the message lists the keys.
        """
        for status, name in _KEYS.items():
            if name == key:
                return status
        raise ValueError(f"status: unknown status {key!r}; use one of {', '.join(_KEYS.values())}")

    def is_finished(self) -> bool:
        """True when the run will not change any more."""
        return self in _FINISHED

    def is_failure(self) -> bool:
        """True for the statuses the optimizer sees as failed observations."""
        return self in (JobStatus.FAILED, JobStatus.STALE)


# One place for the machine names: `--json` rows and counts use them, in this order.
_KEYS: dict[JobStatus, str] = {
    JobStatus.PENDING: "pending",
    JobStatus.IN_TRAINING: "in_training",
    JobStatus.TRAINING_DONE_NO_EVAL: "trained",
    JobStatus.IN_EVAL: "in_eval",
    JobStatus.COMPLETED: "completed",
    JobStatus.STALE: "stale",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
    JobStatus.STOPPED: "stopped",
}

_FINISHED = frozenset(
    {JobStatus.COMPLETED, JobStatus.STALE, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.STOPPED}
)


def status_of(
    *,
    has_started_training: bool,
    has_completed_training: bool,
    has_started_eval: bool,
    has_been_evaluated: bool,
    has_failed: bool,
    is_stale: bool,
    is_cancelled: bool,
    is_stopped: bool = False,
) -> JobStatus:
    """A run's status from its flags: cancellation, then a stop, failure and staleness win."""
    if is_cancelled:
        return JobStatus.CANCELLED
    if is_stopped:
        return JobStatus.STOPPED
    if has_failed:
        return JobStatus.FAILED
    if is_stale:
        return JobStatus.STALE
    if not has_started_training:
        return JobStatus.PENDING
    if not has_completed_training:
        return JobStatus.IN_TRAINING
    if not has_started_eval:
        return JobStatus.TRAINING_DONE_NO_EVAL
    if not has_been_evaluated:
        return JobStatus.IN_EVAL
    return JobStatus.COMPLETED


class RunFlags(Protocol):
    """What a run's status derives from: its eight flags."""

    @property
    def has_started_training(self) -> bool: ...
    @property
    def has_completed_training(self) -> bool: ...
    @property
    def has_started_eval(self) -> bool: ...
    @property
    def has_been_evaluated(self) -> bool: ...
    @property
    def has_failed(self) -> bool: ...
    @property
    def is_stale(self) -> bool: ...
    @property
    def is_cancelled(self) -> bool: ...
    @property
    def is_stopped(self) -> bool: ...


def status_from(run: RunFlags) -> JobStatus:
    """`status_of` the flags of `run` (a `RunInfo`, a `TrialRecord`, ...)."""
    return status_of(
        has_started_training=run.has_started_training,
        has_completed_training=run.has_completed_training,
        has_started_eval=run.has_started_eval,
        has_been_evaluated=run.has_been_evaluated,
        has_failed=run.has_failed,
        is_stale=run.is_stale,
        is_cancelled=run.is_cancelled,
        is_stopped=run.is_stopped,
    )


__all__ = ["JobStatus", "RunFlags", "status_from", "status_of"]
