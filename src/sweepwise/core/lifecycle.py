"""A trial's life in one place: its record, the events that move it, its retries, its observation.

The store loads a run into a `TrialRecord`, applies job events to it here, and writes
it back; the controller and the Ax facade go through the same functions, so every
rule of a trial's life (docs/design.md, "A trial's life") is written once:

- a job event moves the run's flags (`apply_event`);
- a job that is lost, fails or times out is retried while the `RetryPolicy` allows:
  the run goes back to wait for a new attempt of the same job, recorded in its
  `adaptive/attempts` ledger; otherwise it ends STALE (lost) or FAILED;
- a run whose spec has no eval job completes with an empty eval (`no_eval_event`);
- the status derives from the flags (`status_of`), and the optimizer's observation
  from the status and the summary (`observation_of`).
"""

from __future__ import annotations

import enum
import math
import sys
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sweepwise.core import keys
from sweepwise.core.jsonsafe import finite_number, rung_scores
from sweepwise.core.models import EventKind, JobEvent, JobStatus, JobTypes, Observation, RunInfo
from sweepwise.core.status import status_from, status_of

LOST_ERROR = "job lost: its process vanished without an exit status"


class EndReason(enum.StrEnum):
    """Why a job ended without success: what a retry policy chooses among."""

    LOST = "lost"  # vanished without an exit status (host gone, reboot, no heartbeat)
    FAILED = "failed"  # exited non-zero, or its result was rejected
    TIMEOUT = "timeout"  # ran longer than its `timeout`


class RetryPolicy(BaseModel):
    """Which unsuccessful jobs are run again, and how often.

    Args:
        max_attempts: attempts of one job (train or eval) of a run, the first included.
        on: the end reasons that are retried; by default only lost jobs.
    """

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=3, ge=1, le=100)
    on: list[EndReason] = Field(default_factory=lambda: [EndReason.LOST])

    def allows(self, reason: EndReason, attempt: int) -> bool:
        """Whether a job that ended for `reason` at `attempt` is run again."""
        return reason in self.on and attempt < self.max_attempts


DEFAULT_RETRIES = RetryPolicy()


_RESULT_KEYS = {
    JobTypes.LAUNCH_TRAINING: (keys.TRAIN_RESULT, keys.TRAIN_EXIT_CODE, keys.TRAIN_RUNTIME),
    JobTypes.LAUNCH_EVAL: (keys.EVAL_RESULT, keys.EVAL_EXIT_CODE, keys.EVAL_RUNTIME),
}
_METRICS_KEYS = {
    JobTypes.LAUNCH_TRAINING: (keys.TRAIN_METRICS, keys.TRAIN_STEP),
    JobTypes.LAUNCH_EVAL: (keys.EVAL_METRICS, keys.EVAL_STEP),
}


@dataclass(slots=True)
class TrialRecord:
    """The mutable state of one run while events are applied to it (times in epoch seconds)."""

    run_id: str
    experiment: str
    has_started_training: bool
    has_completed_training: bool
    has_started_eval: bool
    has_been_evaluated: bool
    has_failed: bool
    is_stale: bool
    is_cancelled: bool
    started_at: float | None
    completed_at: float | None
    last_heartbeat_at: float | None
    cost: float
    runtime: float
    error: str | None
    summary: dict[str, Any]
    train_attempt: int = 1
    eval_attempt: int = 1
    train_dispatch_id: str | None = None
    eval_dispatch_id: str | None = None
    eval_started_at: float | None = None
    is_stopped: bool = False
    dirty: bool = field(default=False)

    @property
    def status(self) -> JobStatus:
        """The run's status, from its flags."""
        return status_from(self)

    def attempt(self, job_type: JobTypes) -> int:
        """The current attempt of the run's job of `job_type` (1 for the first)."""
        return self.train_attempt if job_type is JobTypes.LAUNCH_TRAINING else self.eval_attempt

    def job_done(self, job_type: JobTypes) -> bool:
        """Whether events of this run's `job_type` job can change nothing any more."""
        if self.status.is_finished():
            return True
        if job_type is JobTypes.LAUNCH_TRAINING:
            return self.has_completed_training
        return self.has_been_evaluated


def end_reason(event: JobEvent) -> EndReason | None:
    """Why the job of `event` ended without success; None when it has not, or succeeded."""
    if event.kind is EventKind.LOST:
        return EndReason.LOST
    if event.kind is not EventKind.FINISHED or event.succeeded:
        return None
    if event.timed_out:
        return EndReason.TIMEOUT
    return EndReason.FAILED


_NO_EVAL = "none"
"""The dispatch id of the empty eval that completes a run of a spec with no eval job."""


def _finish(record: TrialRecord, event: JobEvent, eval_started_at: float | None) -> None:
    """A job ended with success: its result joins the summary and the run moves on."""
    result_key, exit_key, runtime_key = _RESULT_KEYS[event.job_type]
    no_eval = event.job_type is JobTypes.LAUNCH_EVAL and event.dispatch_id == _NO_EVAL
    if not no_eval:  # a run with no eval job has no eval exit code or runtime to show
        record.summary[exit_key] = event.exit_code
    if event.job_type is JobTypes.LAUNCH_TRAINING:
        start = event.started_at if event.started_at is not None else record.started_at
        start = event.at if start is None else start
        record.has_started_training = True
        record.has_completed_training = True
        record.started_at = start if record.started_at is None else record.started_at
        record.runtime = max(0.0, event.at - start)
        record.summary[runtime_key] = record.runtime
    else:
        start = event.started_at if event.started_at is not None else eval_started_at
        record.has_started_eval = True
        record.has_been_evaluated = True
        record.completed_at = event.at
        if not no_eval:
            record.summary[runtime_key] = max(0.0, event.at - (event.at if start is None else start))
    record.summary[result_key] = dict(event.result or {})


def _stopped(record: TrialRecord, event: JobEvent) -> None:
    """The training job of a run its stopper stopped has ended: the run is STOPPED, never retried.

    Its observation is the value the decision recorded (`observation/score`, written with
    it); its cost is what it spent: the `cost` of its last report when it reported one (the
    unit its completed runs' results give), else its runtime.
    """
    start = event.started_at if event.started_at is not None else record.started_at
    start = event.at if start is None else start
    record.has_started_training = True
    record.is_stopped = True
    record.started_at = start if record.started_at is None else record.started_at
    record.completed_at = event.at
    record.runtime = max(0.0, event.at - start)
    record.summary[keys.TRAIN_RUNTIME] = record.runtime
    if event.exit_code is not None:
        record.summary[keys.TRAIN_EXIT_CODE] = event.exit_code
    cost = record.summary.get(keys.OBSERVATION_COST)
    if not isinstance(cost, int | float) or isinstance(cost, bool):
        reported = _reported_cost(record.summary.get(keys.TRAIN_METRICS))
        record.summary[keys.OBSERVATION_COST] = record.runtime if reported is None else reported


def _reported_cost(row: object) -> float | None:
    """The `cost` a metrics row reports, when it is a finite number >= 0."""
    value = finite_number(row.get("cost") if isinstance(row, dict) else None)
    return value if value is not None and value >= 0 else None


def _end_without_success(
    record: TrialRecord, event: JobEvent, reason: EndReason, policy: RetryPolicy
) -> None:
    """Retry the job when the policy allows, else end the run STALE (lost) or FAILED."""
    job_type = event.job_type
    attempt = record.attempt(job_type)
    error = event.error or (LOST_ERROR if reason is EndReason.LOST else None)
    if error is None:
        error = f"{job_type.short} job exited with code {event.exit_code}"
    ledger = list(record.summary.get(keys.ATTEMPTS) or [])
    entry = {"job": job_type.short, "attempt": attempt, "reason": reason.value, "error": error}
    ledger.append({**entry, "exit_code": event.exit_code, "at": event.at})
    record.summary[keys.ATTEMPTS] = ledger
    if policy.allows(reason, attempt):
        # The same job again, as a new attempt: the controller dispatches it (docs/design.md,
        # "Retries"); the run waits meanwhile, in PENDING (training) or IN EVAL.
        if job_type is JobTypes.LAUNCH_TRAINING:
            record.train_attempt = attempt + 1
            record.train_dispatch_id = None
            record.has_started_training = False
            record.last_heartbeat_at = None
        else:
            record.eval_attempt = attempt + 1
            record.eval_dispatch_id = None
        return
    _, exit_key, runtime_key = _RESULT_KEYS[job_type]
    if event.exit_code is not None:
        record.summary[exit_key] = event.exit_code
    started = record.started_at if job_type is JobTypes.LAUNCH_TRAINING else record.eval_started_at
    start = event.started_at if event.started_at is not None else started
    if start is not None:  # what the failed job ran for, shown as the run's runtime
        spent = max(0.0, event.at - start)
        record.summary[runtime_key] = spent
        if job_type is JobTypes.LAUNCH_TRAINING:
            record.runtime = spent
    if reason is EndReason.LOST:
        record.is_stale = True
    else:
        record.has_failed = True
    record.error = error


def apply_event(
    record: TrialRecord,
    event: JobEvent,
    policy: RetryPolicy = DEFAULT_RETRIES,
    *,
    eval_started_at: float | None = None,
) -> bool:
    """Apply one job event to `record`.

    Events of a job that has finished, or of an earlier attempt than the run's
    current one, change nothing: a dispatcher that replays its events is harmless.

    Args:
        record: the run, changed in place (`dirty` set when it changed).
        event: what the dispatcher saw.
        policy: which unsuccessful jobs are retried.
        eval_started_at: when the run's eval started, if the store knows (for its runtime).

    Returns:
        True when the event is one to keep in the run's event log.
    """
    if record.job_done(event.job_type) or event.attempt != record.attempt(event.job_type):
        return False
    kind = event.kind
    if kind is EventKind.STARTED:
        if event.job_type is JobTypes.LAUNCH_EVAL:
            record.eval_started_at = event.at
            return True
        if record.has_started_training:
            return False  # a replayed STARTED
        record.has_started_training = True
        record.started_at = event.at if record.started_at is None else record.started_at
    elif kind is EventKind.HEARTBEAT:
        if record.last_heartbeat_at is not None and event.at <= record.last_heartbeat_at:
            return False
        record.last_heartbeat_at = event.at
    elif kind is EventKind.METRICS:
        if event.metrics is None:
            return False
        metrics_key, step_key = _METRICS_KEYS[event.job_type]
        record.summary[metrics_key] = dict(event.metrics)
        if "step" in event.metrics:
            record.summary[step_key] = event.metrics["step"]
    elif event.job_type is JobTypes.LAUNCH_TRAINING and keys.STOP in record.summary:
        _stopped(record, event)  # the stopper's decision holds, however the job ended
    else:
        reason = end_reason(event)
        if reason is None:
            _finish(record, event, record.eval_started_at or eval_started_at)
        else:
            _end_without_success(record, event, reason, policy)
    record.dirty = True
    return kind in (EventKind.STARTED, EventKind.FINISHED, EventKind.LOST)


def no_eval_event(run_id: str, now: float) -> JobEvent:
    """The empty eval that completes a trained run of a spec with no eval job."""
    return JobEvent(
        run_id, JobTypes.LAUNCH_EVAL, EventKind.FINISHED, now, _NO_EVAL, exit_code=0, started_at=now
    )


def started_event(run_id: str, at: float, dispatch_id: str) -> JobEvent:
    """A run's training job started (for callers that run jobs themselves, like the Ax facade)."""
    return JobEvent(run_id, JobTypes.LAUNCH_TRAINING, EventKind.STARTED, at, dispatch_id)


def completed_events(
    run_id: str, result: dict[str, Any], started_at: float, ended_at: float
) -> list[JobEvent]:
    """A run whose one job both trained and scored it: its training and its eval finished at once."""
    train = JobEvent(
        run_id, JobTypes.LAUNCH_TRAINING, EventKind.FINISHED, ended_at, exit_code=0, result=result
    )
    train.started_at = started_at
    evaluation = JobEvent(
        run_id, JobTypes.LAUNCH_EVAL, EventKind.FINISHED, ended_at, exit_code=0, result=result
    )
    evaluation.started_at = ended_at
    return [train, evaluation]


def failed_event(
    run_id: str, error: str, started_at: float, ended_at: float, exit_code: int | None
) -> JobEvent:
    """A run's training job failed with `error` (an exit code of 0 or None is recorded as 1)."""
    code = 1 if exit_code in (None, 0) else exit_code
    event = JobEvent(
        run_id, JobTypes.LAUNCH_TRAINING, EventKind.FINISHED, ended_at, exit_code=code, error=error
    )
    event.started_at = started_at
    return event


def retry_due(run: RunInfo) -> JobTypes | None:
    """The job of `run` waiting for a new attempt (after a lost or retried one), if any."""
    status = run.status
    if status is JobStatus.PENDING and run.train_attempt > 1 and run.train_dispatch_id is None:
        return JobTypes.LAUNCH_TRAINING
    if status is JobStatus.IN_EVAL and run.eval_attempt > 1 and run.eval_dispatch_id is None:
        return JobTypes.LAUNCH_EVAL
    return None


def observation_of(run: RunInfo) -> Observation | None:
    """What an optimizer learns from `run`: its score if COMPLETED, a failure if FAILED/STALE.

    A STOPPED run gives the value its stopper recorded, at the step it was stopped (a
    failure when it was stopped for a NaN or a wrong-way infinity: it diverged, or when it
    has no score: its stopper judged another metric, and its report lacked the experiment's).

    A COMPLETED run counts only once its post-eval hook wrote `observation/score`.
    """
    status = run.status
    if status is JobStatus.COMPLETED:
        score = run.summary.get(keys.OBSERVATION_SCORE)
        if score is None or run.summary.get(keys.OBSERVATION_IS_FAILURE):
            return None
        cost = run.summary.get(keys.OBSERVATION_COST)
        step = run.summary.get(keys.TRAIN_STEP)
        return Observation(
            float(score),
            float(cost) if cost is not None else run.runtime,
            _kept(run),
            step=step if isinstance(step, int) and not isinstance(step, bool) else None,
            rungs=_rungs(run),
        )
    if status is JobStatus.STOPPED:
        score = run.summary.get(keys.OBSERVATION_SCORE)
        stop = run.summary.get(keys.STOP)
        cost = run.summary.get(keys.OBSERVATION_COST)
        step = stop.get("step") if isinstance(stop, dict) else None
        # NaN (stored as "NaN") when it was stopped for diverging; none when its stopper judged
        # another metric and the report lacked the experiment's: then too it ranks below every score
        value = float(score) if score is not None else math.nan
        return Observation(
            value,
            float(cost) if cost is not None else run.runtime,
            _kept(run),
            is_failure=not math.isfinite(value),
            step=step if isinstance(step, int) and not isinstance(step, bool) else None,
            stopped=True,
            rungs=_rungs(run),
        )
    if status.is_failure() and run.suggestion:
        return Observation(math.nan, run.runtime, _kept(run), is_failure=True)
    return None


def _rungs(run: RunInfo) -> dict[int, float] | None:
    """The run's scores at the rungs it passed ({step: score}), when its stopper judged the score's metric."""
    return rung_scores(run.summary.get(keys.OBSERVATION_RUNGS)) or None


def _kept(run: RunInfo) -> dict[str, Any]:
    """A run's suggestion as an optimizer keeps it for the whole sweep: one copy of each name."""
    suggestion = run.summary.get(keys.OBSERVATION_SUGGESTION)
    if not isinstance(suggestion, dict):
        return {}
    return {sys.intern(name): value for name, value in suggestion.items()}


__all__ = [
    "DEFAULT_RETRIES",
    "LOST_ERROR",
    "EndReason",
    "RetryPolicy",
    "TrialRecord",
    "apply_event",
    "completed_events",
    "end_reason",
    "failed_event",
    "no_eval_event",
    "observation_of",
    "retry_due",
    "started_event",
    "status_of",
]
