"""Applying job events to runs: one read per run concerned, one batched write back.

Application is idempotent: an event for a job that has already finished (or a
run that has) changes nothing, not even the event log, so a dispatcher that
replays its events after a restart does no harm.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from sweepwise import keys
from sweepwise.models import EventKind, JobEvent, JobStatus, JobTypes
from sweepwise.stores._codec import cost_of, status_of, to_json
from sweepwise.stores._exec import Prepared
from sweepwise.stores._runs import FLAGS, next_seq
from sweepwise.stores.schema import JOB_EVENTS, RUNS

logger = logging.getLogger(__name__)

LOST_ERROR = "job lost: its process vanished without an exit status"
_LOGGED = frozenset({EventKind.STARTED, EventKind.FINISHED, EventKind.LOST})
_WRITTEN = (
    "has_started_training",
    "has_completed_training",
    "has_started_eval",
    "has_been_evaluated",
    "has_failed",
    "is_stale",
    "started_at",
    "completed_at",
    "last_heartbeat_at",
    "cost",
    "runtime",
    "error",
)

_LOADED_FIELDS = ("run_id", "experiment", *_WRITTEN, "is_cancelled", "summary")
# One primary-key lookup per run: on the driver's cursor that beats rendering an IN list.
_LOAD = Prepared(
    select(*(RUNS.c[name] for name in _LOADED_FIELDS)).where(RUNS.c.run_id == bindparam("b_run_id"))
)
_EVAL_STARTED_AT = Prepared(
    select(func.max(JOB_EVENTS.c.at)).where(
        JOB_EVENTS.c.run_id == bindparam("b_run_id"),
        JOB_EVENTS.c.job_type == JobTypes.LAUNCH_EVAL.value,
        JOB_EVENTS.c.kind == EventKind.STARTED.value,
    )
)
_WRITE_BACK = Prepared(
    update(RUNS)
    .where(RUNS.c.run_id == bindparam("b_run_id"))
    .values({name: bindparam(f"b_{name}") for name in (*_WRITTEN, "summary", "status", "seq", "updated_at")})
)
_INSERT_EVENT = Prepared(insert(JOB_EVENTS))
_RESULT_KEYS = {
    JobTypes.LAUNCH_TRAINING: (keys.TRAIN_RESULT, keys.TRAIN_EXIT_CODE, keys.TRAIN_RUNTIME),
    JobTypes.LAUNCH_EVAL: (keys.EVAL_RESULT, keys.EVAL_EXIT_CODE, keys.EVAL_RUNTIME),
}


@dataclass(slots=True)
class _Run:
    """The mutable part of a run while a batch of events is applied to it."""

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
    eval_started_at: float | None = None
    dirty: bool = field(default=False)

    @property
    def status(self) -> JobStatus:
        return status_of(
            has_started_training=self.has_started_training,
            has_completed_training=self.has_completed_training,
            has_started_eval=self.has_started_eval,
            has_been_evaluated=self.has_been_evaluated,
            has_failed=self.has_failed,
            is_stale=self.is_stale,
            is_cancelled=self.is_cancelled,
        )

    def job_done(self, job_type: JobTypes) -> bool:
        if self.status.is_finished():
            return True
        if job_type is JobTypes.LAUNCH_TRAINING:
            return self.has_completed_training
        return self.has_been_evaluated


def _load(conn: Connection, run_ids: list[str]) -> dict[str, _Run]:
    runs: dict[str, _Run] = {}
    for run_id in run_ids:
        row = _LOAD.first(conn, {"b_run_id": run_id})
        if row is None:
            continue
        values = dict(zip(_LOADED_FIELDS, row, strict=True))
        values["summary"] = json.loads(values["summary"])
        for flag in FLAGS:  # SQLite hands booleans back as 0 / 1
            values[flag] = bool(values[flag])
        runs[values["run_id"]] = _Run(**values)
    return runs


def _eval_started_at(conn: Connection, run: _Run) -> float | None:
    if run.eval_started_at is not None:
        return run.eval_started_at
    value = _EVAL_STARTED_AT.scalar(conn, {"b_run_id": run.run_id})
    return None if value is None else float(value)


def _finish(conn: Connection, run: _Run, event: JobEvent) -> None:
    short = event.job_type.short
    result_key, exit_key, runtime_key = _RESULT_KEYS[event.job_type]
    run.summary[exit_key] = event.exit_code
    if not event.succeeded:
        run.has_failed = True
        run.error = event.error or f"{short} job exited with code {event.exit_code}"
        return
    if event.job_type is JobTypes.LAUNCH_TRAINING:
        start = event.started_at if event.started_at is not None else run.started_at
        start = event.at if start is None else start
        run.has_started_training = True
        run.has_completed_training = True
        run.started_at = start if run.started_at is None else run.started_at
        run.runtime = max(0.0, event.at - start)
        run.summary[runtime_key] = run.runtime
    else:
        start = event.started_at if event.started_at is not None else _eval_started_at(conn, run)
        run.has_started_eval = True
        run.has_been_evaluated = True
        run.completed_at = event.at
        run.summary[runtime_key] = max(0.0, event.at - (event.at if start is None else start))
    run.summary[result_key] = dict(event.result or {})


def _apply(conn: Connection, run: _Run, event: JobEvent) -> bool:
    """Apply one event to `run`; True if it is to be logged in `job_events`."""
    kind = event.kind
    if kind is EventKind.STARTED:
        if event.job_type is JobTypes.LAUNCH_EVAL:
            run.eval_started_at = event.at
            return True
        if run.has_started_training:
            return False  # a replayed STARTED
        run.has_started_training = True
        run.started_at = event.at if run.started_at is None else run.started_at
    elif kind is EventKind.HEARTBEAT:
        if run.last_heartbeat_at is not None and event.at <= run.last_heartbeat_at:
            return False
        run.last_heartbeat_at = event.at
    elif kind is EventKind.METRICS:
        if event.metrics is None:
            return False
        short = event.job_type.short
        run.summary[f"{short}/metrics"] = dict(event.metrics)
        if "step" in event.metrics:
            run.summary[f"{short}/step"] = event.metrics["step"]
    elif kind is EventKind.FINISHED:
        _finish(conn, run, event)
    elif kind is EventKind.LOST:
        run.is_stale = True
        run.error = LOST_ERROR
    run.dirty = True
    return kind in _LOGGED


def _log_row(event: JobEvent) -> dict[str, Any]:
    payload = {
        name: value
        for name, value in (
            ("dispatch_id", event.dispatch_id or None),
            ("result", event.result),
            ("metrics", event.metrics),
            ("error", event.error),
            ("started_at", event.started_at),
        )
        if value is not None
    }
    return {
        "run_id": event.run_id,
        "job_type": event.job_type.value,
        "kind": event.kind.value,
        "at": event.at,
        "exit_code": event.exit_code,
        "payload": to_json(payload, what="job event") if payload else None,
    }


def apply_events_without_commit(
    conn: Connection, events: list[JobEvent], summary_updates: Mapping[str, dict[str, Any]] | None = None
) -> list[str]:
    """Apply `events` in order, then merge `summary_updates` (by run id) into the runs' summaries.

    Each run is read and written once, whatever it takes. Returns the ids of the runs
    changed (in order of first event).
    """
    updates = summary_updates or {}
    run_ids = list(dict.fromkeys([*(event.run_id for event in events), *updates]))
    if not run_ids:
        return []
    runs = _load(conn, run_ids)
    log: list[dict[str, Any]] = []
    for event in events:
        run = runs.get(event.run_id)
        if run is None:
            logger.warning(
                "ignoring a %s event for run %r, which the store does not know", event.kind, event.run_id
            )
            continue
        if run.job_done(event.job_type):
            continue
        if _apply(conn, run, event):
            log.append(_log_row(event))
    for run_id, summary_update in updates.items():
        if (run := runs.get(run_id)) is not None:
            to_json(summary_update, what="summary_update")  # names the update, not the summary, if bad
            run.summary.update(summary_update)
            run.dirty = True
    changed = [run for run in runs.values() if run.dirty]
    now = time.time()
    if changed:
        params = []
        for run in changed:
            cost = cost_of(run.summary)
            run.cost = run.cost if cost is None else cost
            values = {f"b_{name}": getattr(run, name) for name in _WRITTEN}
            values["b_run_id"] = run.run_id
            values["b_summary"] = to_json(run.summary, what="summary")
            values["b_status"] = run.status.value
            values["b_seq"] = next_seq(conn, run.experiment, now)
            values["b_updated_at"] = now
            params.append(values)
        _WRITE_BACK.run_many(conn, params)
    if log:
        _INSERT_EVENT.run_many(conn, log)
    return [run.run_id for run in changed]


__all__ = ["LOST_ERROR", "apply_events_without_commit"]
