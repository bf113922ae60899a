"""The SkyPilot dispatcher's bookkeeping for one managed job, and how its status becomes events.

`STATUS_PHASES` maps each `sky.jobs.ManagedJobStatus` (by value) onto sweepwise's
lifecycle; a `SkyWatch` turns what SkyPilot's queue and log say of one job into
`JobEvent`s. Nothing here calls SkyPilot.
"""

from __future__ import annotations

import enum
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepwise.core.models import EventKind, JobEvent, JobTypes
from sweepwise.dispatchers._local_watch import number
from sweepwise.dispatchers._reported_metrics import forwarded
from sweepwise.runtime import job_stem, parse_stem
from sweepwise.runtime.remote import TIMEOUT_LINE_PREFIX
from sweepwise.runtime.results import result_from_lines

CLOCK_SLACK = 300.0  # seconds a managed job's submission time may precede its claim (clock skew)
MISSING_READS = 3  # reads of the queue in a row without a launched job before it is lost
# What SkyPilot's log puts before a task's line: colours and `(task, pid=...)` / `(head, rank=0, ...)`.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LINE_PREFIX = re.compile(r"^\([^()]*pid=\d+[^()]*\)\s?")
# SkyPilot's own last lines, not the job's: `✓ Job finished (status: FAILED).`
_SKY_TRAILER = re.compile(r"finished:? \(status: [A-Z_]+\)|^\W*Managed job finished: ")


class SkyPhase(enum.Enum):
    """Where a managed job is in sweepwise's lifecycle."""

    QUEUED = "queued"  # not running yet: heartbeats (SkyPilot holds it), no STARTED
    RUNNING = "running"  # STARTED, then heartbeats
    RECOVERING = "recovering"  # preempted (or its cluster failed); SkyPilot brings it back: heartbeats
    SUCCEEDED = "succeeded"  # FINISHED with the result of its log's last SWEEPWISE_RESULT line
    FAILED = "failed"  # FINISHED, failed, with SkyPilot's reason and the job's last output
    CANCELLED = "cancelled"  # FINISHED, cancelled


STATUS_PHASES: dict[str, SkyPhase] = {
    "PENDING": SkyPhase.QUEUED,
    "SUBMITTED": SkyPhase.QUEUED,
    "STARTING": SkyPhase.QUEUED,
    "RUNNING": SkyPhase.RUNNING,
    "WINDING_DOWN": SkyPhase.RUNNING,
    "RECOVERING": SkyPhase.RECOVERING,
    "SUCCEEDED": SkyPhase.SUCCEEDED,
    "FAILED": SkyPhase.FAILED,
    "FAILED_SETUP": SkyPhase.FAILED,
    "FAILED_PRECHECKS": SkyPhase.FAILED,
    "FAILED_NO_RESOURCE": SkyPhase.FAILED,
    "FAILED_CONTROLLER": SkyPhase.FAILED,
    "CANCELLING": SkyPhase.CANCELLED,
    "CANCELLED": SkyPhase.CANCELLED,
}
"""Each `sky.jobs.ManagedJobStatus` value and the phase it is."""

_FAILURES = {
    "FAILED": "the job failed",
    "FAILED_SETUP": "its setup commands failed",
    "FAILED_PRECHECKS": "SkyPilot's prechecks failed (no enabled cloud fits its resources?)",
    "FAILED_NO_RESOURCE": "no cloud had the resources",
    "FAILED_CONTROLLER": "SkyPilot's jobs controller failed",
}


def status_name(status: Any) -> str:
    """A `ManagedJobStatus` (or its value) as its value, e.g. `RUNNING`."""
    return str(getattr(status, "value", status) or "")


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def parse_task_name(experiment: str, name: str) -> tuple[str, str] | None:
    """`(run id, stem)` of a managed job's name `<experiment>.<run id>.<stem>`; None when it is not one."""
    prefix = f"{experiment}."
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    for dots in (1, 2):  # `train`, then `train.2`
        pieces = rest.rsplit(".", dots)
        stem = ".".join(pieces[1:])
        if len(pieces) == dots + 1 and pieces[0] and parse_stem(stem) is not None:
            return pieces[0], stem
    return None


def clean_log(text: str) -> list[str]:
    """A SkyPilot log's lines without colours and without the `(task, pid=...)` prefixes."""
    return [_LINE_PREFIX.sub("", _ANSI.sub("", line)).rstrip("\r") for line in text.split("\n")]


@dataclass(slots=True)
class QueueRecord:
    """The fields read from one `sky.jobs.queue_v2` record (a `ManagedJobRecord`, or a dict)."""

    job_id: int | None
    name: str
    status: str
    failure_reason: str | None
    submitted_at: float | None
    start_at: float | None
    end_at: float | None

    @classmethod
    def read(cls, raw: Any) -> QueueRecord:
        """The record's fields, from a `ManagedJobRecord` or a dict of them."""

        def get(key: str) -> Any:
            return raw.get(key) if hasattr(raw, "get") else getattr(raw, key, None)

        job_id = get("job_id")
        reason = get("failure_reason")
        return cls(
            job_id=job_id if isinstance(job_id, int) and not isinstance(job_id, bool) else None,
            name=str(get("job_name") or get("task_name") or ""),
            status=status_name(get("status")),
            failure_reason=(_first_line(reason) or None) if isinstance(reason, str) else None,
            submitted_at=number(get("submitted_at")),
            start_at=number(get("start_at")),
            end_at=number(get("end_at")),
        )


def pick(records: list[QueueRecord], job_id: int | None, claimed_at: float) -> QueueRecord | None:
    """Our job's record among those of its name: the one with `job_id`, else the newest since the claim."""
    if job_id is not None:
        return next((record for record in records if record.job_id == job_id), None)
    ours = [r for r in records if r.submitted_at is None or r.submitted_at >= claimed_at - CLOCK_SLACK]
    return max(ours, key=lambda record: record.job_id or 0, default=None)


@dataclass(slots=True)
class SkyWatch:
    """What the dispatcher knows of one managed job it watches."""

    run_id: str
    job_type: JobTypes
    attempt: int
    name: str
    claim: Path
    claimed_at: float
    request_id: str | None = None
    job_id: int | None = None
    started: bool = False
    recovering: bool = False
    cancel_requested: bool = False
    cancelled_id: int | None = None
    missing: int = 0  # reads of the queue in a row that did not show the launched job
    done: bool = False
    metrics_seen: str | None = None  # the last metrics row reported, as JSON
    metrics_read_at: float | None = None  # when its log was last read for metrics (monotonic)

    @property
    def stem(self) -> str:
        """The name of the job's files: `train`, `eval`, `train.2`..."""
        return job_stem(self.job_type.short, self.attempt)

    def event(self, kind: EventKind, at: float | None = None, **fields: Any) -> JobEvent:
        """An event of this job (at `at`, else now)."""
        at = time.time() if at is None else at
        return JobEvent(self.run_id, self.job_type, kind, at, self.name, attempt=self.attempt, **fields)

    def absent(self) -> list[JobEvent]:
        """The queue does not show this launched job: LOST once it has not for `MISSING_READS` reads."""
        self.missing += 1
        if self.missing < MISSING_READS:
            return []
        self.done = True
        known = f" (id {self.job_id})" if self.job_id is not None else ""
        error = f"job lost: SkyPilot's managed-jobs queue has no job {self.name}{known}"
        return [self.event(EventKind.LOST, error=error)]

    def alive(self, record: QueueRecord, phase: SkyPhase) -> list[JobEvent]:
        """A queued, running or recovering job: STARTED once it runs, and a heartbeat."""
        events: list[JobEvent] = []
        if phase is not SkyPhase.QUEUED and not self.started:
            self.started = True
            events.append(self.event(EventKind.STARTED, record.start_at))
        self.recovering = phase is SkyPhase.RECOVERING
        events.append(self.event(EventKind.HEARTBEAT))
        return events

    def ended(self, record: QueueRecord, phase: SkyPhase, lines: list[str]) -> list[JobEvent]:
        """STARTED (if it ran and was not reported) and FINISHED of a job SkyPilot is done with.

        Args:
            record: its queue record.
            phase: SUCCEEDED, FAILED or CANCELLED.
            lines: the end of its log (`clean_log`): the result of a succeeded job, the
                last output of a failed one.
        """
        result: dict[str, Any] | None = None
        error: str | None = None
        timed_out = False
        if phase is SkyPhase.SUCCEEDED:
            result, error = result_from_lines(lines, self.stem) or (None, None)
        elif phase is SkyPhase.FAILED:
            error = f"SkyPilot {record.status}: {_FAILURES.get(record.status, 'it failed')}"
            if record.failure_reason:
                error += f" ({record.failure_reason})"
            timeout = next((line for line in lines if line.startswith(TIMEOUT_LINE_PREFIX)), None)
            if timeout is not None:  # the job's supervisor stopped it (`sweepwise.runtime.remote`)
                timed_out = True
                error = f"{timeout.removeprefix('sweepwise: ')}; {error}"
            last = next(
                (
                    line.strip()
                    for line in reversed(lines)
                    if line.strip() and not _SKY_TRAILER.search(line) and not forwarded(line)
                ),
                None,
            )
            error += f"; last output: {last}" if last else ""
        else:
            error = f"cancelled (SkyPilot {record.status})"
        events: list[JobEvent] = []
        if record.start_at is not None and not self.started:
            self.started = True
            events.append(self.event(EventKind.STARTED, record.start_at))
        self.done = True
        events.append(
            self.event(
                EventKind.FINISHED,
                record.end_at,
                exit_code=0 if phase is SkyPhase.SUCCEEDED else None,
                result=result,
                error=error,
                started_at=record.start_at,
                timed_out=timed_out,
            )
        )
        return events


__all__ = [
    "CLOCK_SLACK",
    "MISSING_READS",
    "STATUS_PHASES",
    "QueueRecord",
    "SkyPhase",
    "SkyWatch",
    "clean_log",
    "parse_task_name",
    "pick",
    "status_name",
]
