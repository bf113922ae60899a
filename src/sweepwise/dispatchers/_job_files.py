"""What a job's files say, as `JobEvent`s: shared by every dispatcher that runs sweepwise's supervisor.

The supervisor (or the local job host) records a job's life in `<run_dir>/<job>.status.json`
("starting", "running" with heartbeats, "exited" with its exit code), the job appends metrics
to `<job>.metrics.jsonl` and leaves its result in `<job>.result.json` or its log. `JobFiles`
holds what a dispatcher has already read of one job and turns what is new into events;
whether the job's supervisor is still alive is the dispatcher's business (a pid for the
local dispatcher, the engine's word for a remote one: docs/design.md, "Liveness from evidence").
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepwise.core.models import EventKind, JobEvent, JobTypes
from sweepwise.runtime import CANCEL, LOG, METRICS, RESULT_FILE, STATUS, job_file, job_stem
from sweepwise.runtime.results import (
    last_output,
    read_job_result,
    read_job_result_file,
    read_new_metrics,
    read_status,
)
from sweepwise.runtime.supervise import RunState, mark_exited, write_json_atomic

logger = logging.getLogger(__name__)


def number(value: Any) -> float | None:
    """`value` as a float when it is an int or float (not a bool), else None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def mark_cancelled(run_dir: str | Path, stem: str) -> None:
    """Write the job's `<job>.cancel` marker; a warning when it cannot be written.

    The marker only lets the job's supervisor record the end as "cancelled" and keeps a job
    that has not started from starting; a canceller that cannot write it (a full disk) signals
    the job all the same (docs/design.md, "Cancelling a job").
    """
    path = job_file(str(run_dir), stem, CANCEL)
    try:
        write_json_atomic(path, {"cancelled_at": time.time()})
    except OSError as exc:
        logger.warning("cannot write %s (%s); stopping the job without it", path, exc.strerror or exc)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"exit code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"exit code {code} (killed by signal {-code})"
    return f"exit code {code}"


def timeout_error(timeout: float | None) -> str:
    """How a job stopped for running past `timeout` seconds is described."""
    return f"timeout: ran longer than its {timeout:g} s limit" if timeout else "timeout: ran past its limit"


@dataclass(slots=True)
class JobFiles:
    """What a dispatcher has read of one job's files; subclasses say how its dispatch id is spelled."""

    run_id: str
    job_type: JobTypes
    run_dir: Path
    claimed_at: float
    attempt: int = 1
    started_at: float | None = None
    heartbeat_at: float | None = None
    next_status_read: float = 0.0
    metrics_offset: int = 0
    done: bool = False

    @property
    def job(self) -> str:
        """The name of this attempt's files and of its dispatch id (`train`, `train.2`)."""
        return job_stem(self.job_type.short, self.attempt)

    @property
    def dispatch_id(self) -> str:
        raise NotImplementedError

    def path(self, kind: str) -> str:
        return job_file(self.run_dir, self.job, kind)

    def event(self, kind: EventKind, at: float | None, **fields: Any) -> JobEvent:
        return JobEvent(
            run_id=self.run_id,
            job_type=self.job_type,
            kind=kind,
            at=time.time() if at is None else at,
            dispatch_id=self.dispatch_id,
            started_at=self.started_at,
            attempt=self.attempt,
            **fields,
        )

    def progress_events(self, status: dict[str, Any] | None) -> list[JobEvent]:
        """STARTED the first time `status` says the job runs (or ran), then a HEARTBEAT per new beat."""
        if status is None or status.get("state") == RunState.STARTING:
            return []
        heartbeat = number(status.get("heartbeat_at"))
        if self.started_at is None:
            self.started_at = number(status.get("started_at")) or time.time()
            self.heartbeat_at = heartbeat
            return [self.event(EventKind.STARTED, self.started_at)]
        if heartbeat is not None and (self.heartbeat_at is None or heartbeat > self.heartbeat_at):
            self.heartbeat_at = heartbeat
            if status.get("state") == RunState.RUNNING:
                return [self.event(EventKind.HEARTBEAT, heartbeat)]
        return []

    def lost_event(self, error: str) -> JobEvent:
        """The LOST event of the job, `error` followed by the last line of its output."""
        last = last_output(self.path(LOG))
        return self.event(EventKind.LOST, None, error=error + (f"; last output: {last}" if last else ""))

    def result_end(self) -> JobEvent | None:
        """The end of a job gone without a final status, judged by its result; None when it left none.

        A result on disk means it finished (its exit code unknown, recorded as such); the
        verdict is written to the job's status file, so every later reader sees the same
        (docs/design.md, "Liveness from evidence"). A `sweepwise.report` row is progress, not
        a result, here: a job killed mid-training leaves one.
        """
        result, error = read_job_result(self.run_dir, self.job, rows=False)
        loose = os.path.join(self.run_dir, RESULT_FILE)
        if result is None and error is None and os.path.exists(loose):
            result, error = read_job_result_file(loose, self.job)
        if result is None:
            return None
        status = read_status(self.path(STATUS)) or {}
        mark_exited(
            status,
            os.fspath(self.run_dir),
            self.job,
            0,
            started_at=number(status.get("started_at")) or time.time(),
            cancelled=False,
        )
        status.update(exit_code=None, exit_unobserved=True)
        try:
            write_json_atomic(self.path(STATUS), status)
        except OSError:
            pass  # the same evidence is judged again next time
        return self.event(EventKind.FINISHED, number(status.get("ended_at")), exit_code=0, result=result)

    def finished_event(self, status: dict[str, Any]) -> JobEvent:
        """The FINISHED event of a job whose final status is `status`.

        A job stopped for its timeout fails with `timed_out` set, even if it exited 0;
        a cancelled one says so first (and keeps `timed_out`).
        """
        if status.get("exit_unobserved") and status.get("exit_code") is None:
            result, _ = read_job_result(self.run_dir, self.job, rows=False)
            return self.event(EventKind.FINISHED, number(status.get("ended_at")), exit_code=0, result=result)
        code = status.get("exit_code")
        exit_code = code if isinstance(code, int) else -1
        timed_out = status.get("timed_out") is True
        result, error = read_job_result(self.run_dir, self.job)
        if exit_code != 0 or timed_out:
            last = last_output(self.path(LOG))
            error = _describe_exit(exit_code) + (f"; last output: {last}" if last else " (no output)")
        if status.get("cancelled"):
            error = f"cancelled; {error}" if error else "cancelled"
        elif timed_out:
            error = f"{timeout_error(number(status.get('timeout')))}; {error}"
        ended_at = number(status.get("ended_at"))
        return self.event(
            EventKind.FINISHED, ended_at, exit_code=exit_code, result=result, error=error, timed_out=timed_out
        )

    def new_metrics(self) -> list[JobEvent]:
        """A METRICS event for the rows the job appended since the last call (the newest as its
        `metrics`), if any."""
        rows, self.metrics_offset = read_new_metrics(self.path(METRICS), self.metrics_offset)
        return metrics_rows_event(self.event, rows)


def metrics_rows_event(event: Callable[..., JobEvent], rows: list[dict[str, Any]]) -> list[JobEvent]:
    """One METRICS event made by `event` for `rows` (oldest first): the newest as its `metrics`,
    the others as its `earlier_metrics`, each without its `time`; none without rows."""
    if not rows:
        return []
    *earlier, newest = [{name: value for name, value in row.items() if name != "time"} for row in rows]
    return [
        event(
            EventKind.METRICS, number(rows[-1].get("time")), metrics=newest, earlier_metrics=earlier or None
        )
    ]


__all__ = ["JobFiles", "metrics_rows_event", "number", "timeout_error"]
