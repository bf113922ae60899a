"""Records every part passes around, free of pydantic: job types, runs, job events, checks.

Read-only commands (`status`, `best`) build thousands of `RunInfo`s and nothing else, so
this module imports only the standard library and `core.status`; `core.models` re-exports
these names beside `JobDefinition`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sweepwise.core import keys
from sweepwise.core.status import JobStatus, status_from

if TYPE_CHECKING:
    from sweepwise.core.models import JobDefinition


class JobTypes(enum.StrEnum):
    """What a job does for its run."""

    LAUNCH_TRAINING = "launch_training"
    LAUNCH_EVAL = "launch_eval"

    @property
    def short(self) -> str:
        """`train` or `eval`: the name used in file names and on the command line."""
        return "train" if self is JobTypes.LAUNCH_TRAINING else "eval"

    @classmethod
    def from_short(cls, name: str) -> JobTypes:
        """Parse `train` / `eval` (or the full value)."""
        for member in cls:
            if name in (member.short, member.value):
                return member
        raise ValueError(f"unknown job type {name!r}: use train or eval")


@dataclass(slots=True)
class Observation:
    """What an optimizer learns from one finished run."""

    score: float
    cost: float
    suggestion: dict[str, Any]
    is_failure: bool = False
    step: int | None = None  # the last training step the run reported (None: it reported none)
    stopped: bool = False  # a STOPPED run: its score is at `step`, short of full training
    rungs: dict[int, float] | None = None  # its scores at earlier steps (the stopper's rungs), if known


@dataclass(slots=True)
class RunInfo:
    """A run as the store returns it; `status` is derived from the flags."""

    run_id: str
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    last_updated_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    has_started_training: bool = False
    has_completed_training: bool = False
    has_started_eval: bool = False
    has_been_evaluated: bool = False
    has_failed: bool = False
    is_stale: bool = False
    is_cancelled: bool = False
    is_stopped: bool = False
    cost: float = 0.0
    runtime: float = 0.0
    error: str | None = None
    train_job: JobDefinition | None = None
    eval_job: JobDefinition | None = None
    train_dispatch_id: str | None = None
    eval_dispatch_id: str | None = None
    seq: int = 0
    train_attempt: int = 1
    eval_attempt: int = 1
    _status: JobStatus = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._status = self._derive_status()

    @property
    def status(self) -> JobStatus:
        """The run's status, from its flags (cancellation, then failure, win).

        Derived once, when the run is built: a `RunInfo` is a snapshot the store
        returns, never changed in place.
        """
        return self._status

    def _derive_status(self) -> JobStatus:
        return status_from(self)

    def attempt(self, job_type: JobTypes) -> int:
        """The current attempt of the run's job of `job_type` (1 for the first)."""
        return self.train_attempt if job_type is JobTypes.LAUNCH_TRAINING else self.eval_attempt

    @property
    def suggestion(self) -> dict[str, Any]:
        """The hyperparameters suggested for this run (empty when none)."""
        value = self.summary.get(keys.OBSERVATION_SUGGESTION)
        return dict(value) if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Check:
    """One check of a backend, as `sweepwise doctor` prints it (`Diagnosable.diagnose`).

    Attributes:
        name: what was checked, e.g. `sinfo answers`.
        ok: whether it passed.
        detail: what was found (`partition debug is up`; the error when it failed).
        fix: what to do about a failed check, in one sentence ("" when it passed).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""


class EventKind(enum.StrEnum):
    """What a dispatcher saw happen to a job."""

    STARTED = "started"
    HEARTBEAT = "heartbeat"
    METRICS = "metrics"
    FINISHED = "finished"
    LOST = "lost"  # the job vanished without a final status


@dataclass(slots=True)
class JobEvent:
    """One thing that happened to a job, as `Dispatcher.poll()` reports it.

    `at` is in seconds since the epoch of the dispatcher's clock. A METRICS event carries
    the newest row the job reported (`metrics`) and the rows it reported since the last
    METRICS event before that one (`earlier_metrics`, oldest first), which early stopping
    judges too (only `metrics` is kept in the event log). A FINISHED event
    carries the exit code and the parsed result (`None` when the job gave none);
    `error` says why a job failed or why its result was rejected; `timed_out` that
    its supervisor stopped it for running longer than its `JobDefinition.timeout`.
    """

    run_id: str
    job_type: JobTypes
    kind: EventKind
    at: float
    dispatch_id: str = ""
    exit_code: int | None = None
    result: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    earlier_metrics: list[dict[str, Any]] | None = None
    error: str | None = None
    started_at: float | None = None
    attempt: int = 1
    timed_out: bool = False

    @property
    def succeeded(self) -> bool:
        """True for a FINISHED event with exit code 0 and no error."""
        return self.kind is EventKind.FINISHED and self.exit_code == 0 and self.error is None


__all__ = ["Check", "EventKind", "JobEvent", "JobStatus", "JobTypes", "Observation", "RunInfo"]
