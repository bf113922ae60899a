"""The Ray dispatcher's bookkeeping for one Ray job, and how its status becomes events.

`STATUS_PHASES` maps each `ray.job_submission.JobStatus` (by value) onto sweepwise's
lifecycle; a `RayWatch` turns what the Jobs API says of one job (`JobDetails`, the end
of its log) into `JobEvent`s. Nothing here calls Ray.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepwise.core.models import EventKind, JobEvent, JobTypes
from sweepwise.dispatchers._job_files import number
from sweepwise.dispatchers._reported_metrics import forwarded, metrics_event
from sweepwise.dispatchers._sky_watch import clean_log
from sweepwise.runtime import job_stem
from sweepwise.runtime.remote import TIMEOUT_LINE_PREFIX
from sweepwise.runtime.results import result_from_lines


class RayPhase(enum.Enum):
    """Where a Ray job is in sweepwise's lifecycle."""

    QUEUED = "queued"  # waiting for resources or its runtime env: heartbeats (Ray holds it), no STARTED
    RUNNING = "running"  # STARTED, then heartbeats
    SUCCEEDED = "succeeded"  # FINISHED with the result of its log's last SWEEPWISE_RESULT line
    FAILED = "failed"  # FINISHED, failed, with Ray's message and the job's last output
    STOPPED = "stopped"  # FINISHED, cancelled


STATUS_PHASES: dict[str, RayPhase] = {
    "PENDING": RayPhase.QUEUED,
    "RUNNING": RayPhase.RUNNING,
    "SUCCEEDED": RayPhase.SUCCEEDED,
    "FAILED": RayPhase.FAILED,
    "STOPPED": RayPhase.STOPPED,
}
"""Each `ray.job_submission.JobStatus` value and the phase it is."""


def _seconds(ms: Any) -> float | None:
    """A Jobs API time (ms since the epoch) in seconds; None when there is none."""
    if isinstance(ms, bool) or not isinstance(ms, int | float) or ms <= 0:
        return None
    return float(ms) / 1000.0


@dataclass(slots=True)
class JobRecord:
    """The fields read from one `JobDetails`."""

    status: str
    message: str | None
    start_time: float | None  # s; Ray sets it when the job is submitted
    end_time: float | None  # s
    exit_code: int | None  # the entrypoint's, once it has exited

    @classmethod
    def read(cls, details: Any) -> JobRecord:
        """The fields of a `JobDetails` (or anything with its attributes)."""
        status = getattr(details, "status", "")
        code = getattr(details, "driver_exit_code", None)
        message = getattr(details, "message", None)
        return cls(
            status=str(getattr(status, "value", status) or ""),
            message=message if isinstance(message, str) else None,
            start_time=_seconds(getattr(details, "start_time", None)),
            end_time=_seconds(getattr(details, "end_time", None)),
            exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        )

    def reason(self) -> str:
        """Ray's message as one line, without the copy of the log it appends to a failure's."""
        lines = (self.message or "").strip().splitlines()
        text = lines[0] if lines else ""
        return text.split(", last available logs", 1)[0].rstrip(":. ")


@dataclass(slots=True)
class RayWatch:
    """What the dispatcher knows of one Ray job it watches."""

    run_id: str
    job_type: JobTypes
    attempt: int
    submission_id: str
    claim: Path
    started_at: float | None = None  # when this dispatcher first saw it RUNNING
    done: bool = False
    route: str = "job"  # "job": a Ray job (Jobs API); "task": a Ray task (`_ray_tasks`)
    metrics_offset: int = 0  # how far its metrics file was read (run directories shared with the node)
    metrics_read_at: float | None = None  # when its log was last read for metrics (monotonic)
    metrics_seen: str | None = None  # the last metrics row reported, as JSON

    @property
    def stem(self) -> str:
        """The name of the job's files: `train`, `eval`, `train.2`..."""
        return job_stem(self.job_type.short, self.attempt)

    def event(self, kind: EventKind, at: float | None = None, **fields: Any) -> JobEvent:
        """An event of this job (at `at`, else now)."""
        at = time.time() if at is None else at
        return JobEvent(
            self.run_id, self.job_type, kind, at, self.submission_id, attempt=self.attempt, **fields
        )

    def lost(self, address: str) -> list[JobEvent]:
        """The cluster does not know this submitted job (it was restarted): LOST."""
        self.done = True
        error = f"job lost: the Ray cluster at {address} has no job {self.submission_id} (restarted?)"
        return [self.event(EventKind.LOST, error=error)]

    def alive(self, phase: RayPhase) -> list[JobEvent]:
        """A queued or running job: STARTED once it runs, and a heartbeat."""
        events: list[JobEvent] = []
        if phase is RayPhase.RUNNING and self.started_at is None:
            self.started_at = time.time()
            events.append(self.event(EventKind.STARTED, self.started_at))
        events.append(self.event(EventKind.HEARTBEAT))
        return events

    def ended(self, record: JobRecord, phase: RayPhase, lines: list[str]) -> list[JobEvent]:
        """STARTED (if it was not reported) and FINISHED of a job Ray is done with.

        Args:
            record: its `JobDetails` fields.
            phase: SUCCEEDED, FAILED or STOPPED.
            lines: the end of its log (`clean_log`): the result of a succeeded job, the
                last output of a failed one.
        """
        result: dict[str, Any] | None = None
        error: str | None = None
        timed_out = False
        exit_code = record.exit_code
        if phase is RayPhase.SUCCEEDED:
            exit_code = 0
            result, error = result_from_lines(lines, self.stem) or (None, None)
        elif phase is RayPhase.FAILED:
            error = f"Ray FAILED: {record.reason() or 'the job failed'}"
            timeout = next((line for line in lines if line.startswith(TIMEOUT_LINE_PREFIX)), None)
            if timeout is not None:  # the job's supervisor stopped it (`sweepwise.runtime.remote`)
                timed_out = True
                error = f"{timeout.removeprefix('sweepwise: ')}; {error}"
            last = next(
                (line.strip() for line in reversed(lines) if line.strip() and not forwarded(line)), None
            )
            error += f"; last output: {last}" if last else ""
        else:
            error = f"cancelled (Ray {record.status})"
        events: list[JobEvent] = []
        started_at = self.started_at if self.started_at is not None else record.start_time
        if self.started_at is None and phase is not RayPhase.STOPPED:
            self.started_at = started_at
            events.append(self.event(EventKind.STARTED, started_at))
        self.done = True
        events.append(
            self.event(
                EventKind.FINISHED,
                record.end_time,
                exit_code=exit_code,
                result=result,
                error=error,
                started_at=started_at,
                timed_out=timed_out,
            )
        )
        return events

    def task_events(self, record: dict[str, Any] | None, address: str) -> list[JobEvent]:
        """The events of a job run as a Ray task, from its record in the supervisor actor.

        A job the supervisor never had was lost with an earlier supervisor (the cluster or the
        actor was restarted). A finished task carries its FINISHED event's fields, judged from
        the job's files on its node; a task Ray could not run or finish fails with Ray's reason.
        """
        if record is None:
            self.done = True
            error = f"job lost: the Ray cluster at {address} has no task {self.submission_id} (restarted?)"
            return [self.event(EventKind.LOST, error=error)]
        status = record.get("status")
        if status in ("PENDING", "RUNNING"):
            live: list[JobEvent] = []
            if status == "RUNNING" and self.started_at is None:
                self.started_at = number(record.get("started_at")) or time.time()
                live.append(self.event(EventKind.STARTED, self.started_at))
            if status == "RUNNING":  # the rows the task passed on (`TaskSupervisor.metrics`)
                passed = record.get("metrics")  # one row: a supervisor of an earlier version
                live.extend(metrics_event(self, [passed] if isinstance(passed, dict) else list(passed or [])))
            return [*live, self.event(EventKind.HEARTBEAT)]
        self.done = True
        ended_at = number(record.get("ended_at"))
        if status == "LOST":
            error = f"job lost: its Ray node died ({record.get('message')})"
            return [self.event(EventKind.LOST, error=error)]
        events: list[JobEvent] = []
        outcome = record.get("outcome")
        if status == "FINISHED" and isinstance(outcome, dict):
            started_at = (
                self.started_at or number(outcome.get("started_at")) or number(record.get("started_at"))
            )
            fields = {
                "exit_code": outcome.get("exit_code"),
                "result": outcome.get("result"),
                "error": outcome.get("error"),
                "timed_out": outcome.get("timed_out") is True,
            }
            ended_at = number(outcome.get("ended_at")) or ended_at
        elif status == "STOPPED":
            started_at = self.started_at
            fields = {"exit_code": -1, "error": "cancelled (Ray task cancelled)"}
        else:
            started_at = self.started_at or number(record.get("started_at"))
            fields = {"exit_code": -1, "error": f"Ray task failed: {record.get('message') or status}"}
        if self.started_at is None and started_at is not None:
            self.started_at = started_at
            events.append(self.event(EventKind.STARTED, started_at))
        events.append(self.event(EventKind.FINISHED, ended_at, started_at=started_at, **fields))
        return events


def latest_heartbeats(events: list[JobEvent]) -> list[JobEvent]:
    """`events` with only the last heartbeat of each job (reads that `wait` made pile them up)."""
    last = {
        (event.run_id, event.job_type, event.attempt): index
        for index, event in enumerate(events)
        if event.kind is EventKind.HEARTBEAT
    }
    return [
        event
        for index, event in enumerate(events)
        if event.kind is not EventKind.HEARTBEAT
        or last[(event.run_id, event.job_type, event.attempt)] == index
    ]


__all__ = ["STATUS_PHASES", "JobRecord", "RayPhase", "RayWatch", "clean_log", "latest_heartbeats"]
