"""Queries of the SQL store, each inside a caller's transaction."""

from __future__ import annotations

import functools
import gc
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from sweepwise.core.models import JobStatus, RunInfo
from sweepwise.stores._codec import RUN_FIELDS, ExperimentRecord, experiment_from_row, run_from_row
from sweepwise.stores._exec import Prepared
from sweepwise.stores._runs import EXPERIMENT, EXPERIMENT_COLUMNS, LAST_SEQ
from sweepwise.stores.schema import EXPERIMENTS, JOB_EVENTS, RUNS

RUN_FILTERS = ("group", "run_id", "status", "since_seq")
_ORDER = (RUNS.c.trial_index, RUNS.c.created_at, RUNS.c.run_id)
_RUN_COLUMNS = [RUNS.c[name] for name in RUN_FIELDS]
_EVENT_FIELDS = ("id", "run_id", "job_type", "kind", "at", "exit_code", "payload")
_CHUNK = 512  # ids per IN (...) list, well under every backend's parameter limit
_TRIAL_INDEX = RUN_FIELDS.index("trial_index")
_CREATED_AT = RUN_FIELDS.index("created_at")

# Built once with bound parameters and run on the driver's cursor (see _exec.py).
_CHANGED = Prepared(
    select(*_RUN_COLUMNS)
    .where(
        RUNS.c.experiment == bindparam("b_experiment"),
        RUNS.c.seq > bindparam("b_since"),
        # The upper bound keeps the answer consistent with the sequence number returned even
        # where each statement sees newer commits (PostgreSQL, READ COMMITTED).
        RUNS.c.seq <= bindparam("b_upto"),
    )
    .order_by(*_ORDER),
    custom_plan=True,
)
_COUNT_BY_STATUS = Prepared(
    select(RUNS.c.status, func.count())
    .where(RUNS.c.experiment == bindparam("b_experiment"))
    .group_by(RUNS.c.status)
)
_JOB_EVENTS = Prepared(
    select(*(JOB_EVENTS.c[name] for name in _EVENT_FIELDS))
    .where(JOB_EVENTS.c.run_id == bindparam("b_run_id"))
    .order_by(JOB_EVENTS.c.id)
)
_EXPERIMENTS = Prepared(select(*EXPERIMENT_COLUMNS).order_by(EXPERIMENTS.c.created_at, EXPERIMENTS.c.name))


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Validated `fetch_runs` filters."""

    group: str | None = None
    run_ids: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    since_seq: int | None = None


def _status(value: Any) -> str:
    try:
        return JobStatus(value).value
    except ValueError:
        names = ", ".join(repr(status.value) for status in JobStatus)
        raise ValueError(f"fetch_runs: unknown status {value!r}; use one of {names}") from None


def parse_filters(filters: dict[str, Any]) -> RunQuery:
    """Validate `fetch_runs` filters.

    Raises:
        ValueError: an unknown filter key or status, or a value of the wrong type.
    """
    unknown = sorted(set(filters) - set(RUN_FILTERS))
    if unknown:
        raise ValueError(f"fetch_runs: unknown filter {unknown[0]!r}; use {', '.join(RUN_FILTERS)}")
    group = filters.get("group")
    run_id = filters.get("run_id")
    status = filters.get("status")
    since = filters.get("since_seq")
    if group is not None and not isinstance(group, str):
        raise ValueError(f"fetch_runs: group must be a string, not {group!r}")
    run_ids = None if run_id is None else (run_id,) if isinstance(run_id, str) else tuple(run_id)
    statuses = None
    if status is not None:
        statuses = (_status(status),) if isinstance(status, str) else tuple(_status(s) for s in status)
    if since is not None and (isinstance(since, bool) or not isinstance(since, int)):
        raise ValueError(f"fetch_runs: since_seq must be an int, not {since!r}")
    return RunQuery(group, run_ids, statuses, since)


@functools.lru_cache(maxsize=64)
def _fetch_statement(group: bool, statuses: int, since: bool, ids: int) -> Prepared:
    """The `fetch_runs` statement for one combination of filters (and IN-list lengths)."""
    statement = select(*_RUN_COLUMNS)
    if group:
        statement = statement.where(RUNS.c.experiment == bindparam("b_group"))
    if statuses:
        statement = statement.where(RUNS.c.status.in_([bindparam(f"b_status_{i}") for i in range(statuses)]))
    if since:
        statement = statement.where(RUNS.c.seq > bindparam("b_since"))
    if ids:
        statement = statement.where(RUNS.c.run_id.in_([bindparam(f"b_id_{i}") for i in range(ids)]))
    return Prepared(statement.order_by(*_ORDER), custom_plan=since or ids > 1)


def _id_chunks(run_ids: Sequence[str]) -> Iterable[list[str]]:
    """`run_ids` in IN-list chunks padded (by repeating an id) to a power of two: few statement shapes."""
    for start in range(0, len(run_ids), _CHUNK):
        chunk = list(run_ids[start : start + _CHUNK])
        size = 1 << (len(chunk) - 1).bit_length()
        yield chunk + [chunk[-1]] * (size - len(chunk))


def fetch_runs(conn: Connection, query: RunQuery) -> list[RunInfo]:
    """Runs matching `query`, by trial index then creation time."""
    params: dict[str, Any] = {}
    if query.group is not None:
        params["b_group"] = query.group
    for index, status in enumerate(query.statuses or ()):
        params[f"b_status_{index}"] = status
    if query.since_seq is not None:
        params["b_since"] = query.since_seq
    shape = (query.group is not None, len(query.statuses or ()), query.since_seq is not None)
    if query.run_ids is None:
        return runs_from_rows(_fetch_statement(*shape, 0).rows(conn, params))
    if not query.run_ids:
        return []
    rows: list[Any] = []
    for chunk in _id_chunks(query.run_ids):
        ids = {f"b_id_{index}": run_id for index, run_id in enumerate(chunk)}
        rows.extend(_fetch_statement(*shape, len(chunk)).rows(conn, params | ids))
    if len(query.run_ids) > _CHUNK:  # each chunk came sorted; merge them in _ORDER
        rows.sort(key=lambda row: (row[_TRIAL_INDEX], row[_CREATED_AT], row[0]))
    return runs_from_rows(rows)


def runs_from_rows(rows: Sequence[Any]) -> list[RunInfo]:
    """`RunInfo`s from rows of the `RUN_FIELDS` columns.

    The cyclic garbage collector is paused while a long list is built: the
    thousands of new containers would otherwise trigger collections that scan
    them again and again, which doubles the time to list 10^4 runs.
    """
    if len(rows) < 1000 or not gc.isenabled():
        return [run_from_row(row) for row in rows]
    gc.disable()
    try:
        return [run_from_row(row) for row in rows]
    finally:
        gc.enable()


def last_seq(conn: Connection, experiment: str) -> int:
    """The experiment's update sequence number (0 for none or an unknown experiment)."""
    value = LAST_SEQ.scalar(conn, {"b_name": experiment})
    return 0 if value is None else int(value)


def fetch_changed(conn: Connection, experiment: str, since_seq: int) -> tuple[list[RunInfo], int]:
    """Runs of `experiment` changed after `since_seq`, and the sequence number to ask from next."""
    current = last_seq(conn, experiment)
    if current <= since_seq:
        return [], max(current, since_seq)
    params = {"b_experiment": experiment, "b_since": since_seq, "b_upto": current}
    return runs_from_rows(_CHANGED.rows(conn, params)), current


def count_by_status(conn: Connection, experiment: str) -> dict[str, int]:
    """How many of `experiment`'s runs have each status (statuses with no run are left out)."""
    rows = _COUNT_BY_STATUS.rows(conn, {"b_experiment": experiment})
    return {str(status): int(count) for status, count in rows}


def fetch_job_events(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    """The recorded events of a run, oldest first."""
    rows = _JOB_EVENTS.rows(conn, {"b_run_id": run_id})
    events = [dict(zip(_EVENT_FIELDS, row, strict=True)) for row in rows]
    for event in events:
        event["payload"] = json.loads(event["payload"]) if event["payload"] else {}
    return events


def get_experiment(conn: Connection, name: str) -> ExperimentRecord | None:
    """The experiment called `name`, or None."""
    row = EXPERIMENT.first(conn, {"b_name": name})
    return None if row is None else experiment_from_row(row)


def list_experiments(conn: Connection) -> list[ExperimentRecord]:
    """Every experiment, oldest first."""
    return [experiment_from_row(row) for row in _EXPERIMENTS.rows(conn)]


__all__ = [
    "RUN_FILTERS",
    "RunQuery",
    "count_by_status",
    "fetch_changed",
    "fetch_job_events",
    "fetch_runs",
    "get_experiment",
    "last_seq",
    "list_experiments",
    "parse_filters",
    "runs_from_rows",
]
