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
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from sweepwise.core.lifecycle import DEFAULT_RETRIES, LOST_ERROR, RetryPolicy, TrialRecord, apply_event
from sweepwise.core.models import EventKind, JobEvent, JobTypes
from sweepwise.stores._codec import cost_of, to_json
from sweepwise.stores._exec import Prepared, RunLookup
from sweepwise.stores._runs import FLAGS, next_seq
from sweepwise.stores.schema import JOB_EVENTS, RUNS

logger = logging.getLogger(__name__)

_WRITTEN = (
    "has_started_training",
    "has_completed_training",
    "has_started_eval",
    "has_been_evaluated",
    "has_failed",
    "is_stale",
    "is_stopped",
    "started_at",
    "completed_at",
    "last_heartbeat_at",
    "cost",
    "runtime",
    "error",
    "train_attempt",
    "eval_attempt",
    "train_dispatch_id",
    "eval_dispatch_id",
)

_LOADED_FIELDS = ("run_id", "experiment", *_WRITTEN, "is_cancelled", "summary")
_LOAD = RunLookup([RUNS.c[name] for name in _LOADED_FIELDS])
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


def _load(conn: Connection, run_ids: list[str]) -> dict[str, TrialRecord]:
    runs: dict[str, TrialRecord] = {}
    for run_id, row in _LOAD.many(conn, run_ids).items():  # in the order asked
        values = dict(zip(_LOADED_FIELDS, row, strict=True))
        values["summary"] = json.loads(values["summary"])
        for flag in FLAGS:  # SQLite hands booleans back as 0 / 1
            values[flag] = bool(values[flag])
        runs[run_id] = TrialRecord(**values)
    return runs


def _eval_started_at(conn: Connection, event: JobEvent, record: TrialRecord) -> float | None:
    """When the run's eval started, read from the event log only when the event needs it."""
    if (
        event.kind is not EventKind.FINISHED
        or event.job_type is not JobTypes.LAUNCH_EVAL
        or event.started_at is not None
        or record.eval_started_at is not None
    ):
        return None
    value = _EVAL_STARTED_AT.scalar(conn, {"b_run_id": record.run_id})
    return None if value is None else float(value)


def _log_row(event: JobEvent) -> dict[str, Any]:
    payload = {
        name: value
        for name, value in (
            ("dispatch_id", event.dispatch_id or None),
            ("result", event.result),
            ("metrics", event.metrics),
            ("error", event.error),
            ("started_at", event.started_at),
            ("attempt", event.attempt if event.attempt != 1 else None),
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
    conn: Connection,
    events: list[JobEvent],
    summary_updates: Mapping[str, dict[str, Any]] | None = None,
    policy: RetryPolicy = DEFAULT_RETRIES,
) -> list[str]:
    """Apply `events` in order, then merge `summary_updates` (by run id) into the runs' summaries.

    Each run is read and written once, whatever it takes; the rules are the
    lifecycle's (`sweepwise.core.lifecycle.apply_event`), with `policy` deciding retries.
    Returns the ids of the runs changed (in order of first event).
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
        if apply_event(run, event, policy, eval_started_at=_eval_started_at(conn, event, run)):
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
        _WRITE_BACK.later_many(conn, params)
    if log:
        _INSERT_EVENT.later_many(conn, log)
    return [run.run_id for run in changed]


__all__ = ["LOST_ERROR", "apply_events_without_commit"]
