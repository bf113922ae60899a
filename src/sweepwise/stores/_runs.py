"""Writes to experiments and runs, each inside a caller's transaction (`*_without_commit`).

Every write that changes a run stamps it with its experiment's next update
sequence number: `next_seq` bumps `experiments.last_seq` once per transaction
(the row lock it takes also orders concurrent writers, so sequence order is
commit order) and caches the value in `conn.info[TX_CACHE]` for the
transaction's other writes; `SQLStore` empties that cache at every BEGIN.

Statements are built once, with bound parameters: SQLAlchemy then reuses their
compiled form instead of rebuilding a cache key from literal values on every call.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from sweepwise.core import keys
from sweepwise.core.lifecycle import status_of
from sweepwise.core.models import JobDefinition, JobStatus, JobTypes
from sweepwise.stores._codec import (
    EXPERIMENT_FIELDS,
    ExperimentRecord,
    cost_of,
    experiment_from_row,
    to_epoch,
    to_json,
)
from sweepwise.stores._exec import Prepared, RunLookup
from sweepwise.stores.schema import EXPERIMENTS, RUNS

TX_CACHE = "sweepwise.tx"
"""Key in `Connection.info` of the current transaction's cache (emptied at every BEGIN)."""
_SEQ_KEY = "seq"
FLAGS = (
    "has_started_training",
    "has_completed_training",
    "has_started_eval",
    "has_been_evaluated",
    "has_failed",
    "is_stale",
    "is_cancelled",
    "is_stopped",
)
EXPERIMENT_COLUMNS = [EXPERIMENTS.c[name] for name in EXPERIMENT_FIELDS]
_FINISHED = frozenset(status for status in JobStatus if status.is_finished())

_BUMP_SEQ = (
    update(EXPERIMENTS)
    .where(EXPERIMENTS.c.name == bindparam("b_name"))
    .values(last_seq=EXPERIMENTS.c.last_seq + 1, updated_at=bindparam("b_now"))
)
_BUMP = Prepared(_BUMP_SEQ)
_BUMP_RETURNING = Prepared(_BUMP_SEQ.returning(EXPERIMENTS.c.last_seq))
LAST_SEQ = Prepared(select(EXPERIMENTS.c.last_seq).where(EXPERIMENTS.c.name == bindparam("b_name")))
EXPERIMENT = Prepared(select(*EXPERIMENT_COLUMNS).where(EXPERIMENTS.c.name == bindparam("b_name")))
_INSERT_EXPERIMENT = Prepared(insert(EXPERIMENTS))
_UPDATE_EXPERIMENT = Prepared(update(EXPERIMENTS).where(EXPERIMENTS.c.name == bindparam("b_name")))
_MAX_TRIAL = Prepared(
    select(func.max(RUNS.c.trial_index)).where(RUNS.c.experiment == bindparam("b_experiment"))
)
_RUN_EXISTS = Prepared(select(RUNS.c.run_id).where(RUNS.c.run_id == bindparam("b_run_id")))
_INSERT_RUN = Prepared(insert(RUNS))
_INSERT_NEW_RUN = Prepared(postgresql.insert(RUNS).on_conflict_do_nothing(index_elements=[RUNS.c.run_id]))
# Run with the columns to set as parameters: `{"status": ..., "b_run_id": ...}`.
UPDATE_RUN = Prepared(update(RUNS).where(RUNS.c.run_id == bindparam("b_run_id")))


class _RunState(NamedTuple):
    experiment: str
    status: str
    train_dispatch_id: str | None
    eval_dispatch_id: str | None
    has_started_training: bool
    has_completed_training: bool
    has_started_eval: bool
    has_been_evaluated: bool
    has_failed: bool
    is_stale: bool
    is_cancelled: bool
    is_stopped: bool


_RUN_STATE = RunLookup([RUNS.c[name] for name in _RunState._fields])
_CAS_RUN = Prepared(
    update(RUNS).where(RUNS.c.run_id == bindparam("b_run_id"), RUNS.c.status == bindparam("b_status"))
)
_RUN_SUMMARY = RunLookup([RUNS.c.experiment, RUNS.c.summary, RUNS.c.cost])


def _tx_cache(conn: Connection) -> dict[str, Any]:
    cache: dict[str, Any] = conn.info.setdefault(TX_CACHE, {})
    return cache


def next_seq(conn: Connection, experiment: str, now: float) -> int:
    """The update sequence number of this transaction's changes to `experiment`'s runs.

    Creates the experiment (empty spec) if it does not exist yet.
    """
    cache: dict[str, int] = _tx_cache(conn).setdefault(_SEQ_KEY, {})
    seq = cache.get(experiment)
    if seq is not None:
        return seq
    value = _bump(conn, experiment, now)
    if value is None:  # no such experiment: create it, then bump its fresh counter
        ensure_experiment_without_commit(conn, experiment, {}, now)
        value = _bump(conn, experiment, now)
    if value is None:
        raise RuntimeError(f"experiment {experiment!r} vanished while its runs were written")
    cache[experiment] = seq = int(value)
    return seq


def _bump(conn: Connection, experiment: str, now: float) -> Any:
    params = {"b_name": experiment, "b_now": now}
    if conn.dialect.update_returning:
        return _BUMP_RETURNING.scalar(conn, params)
    return LAST_SEQ.scalar(conn, params) if _BUMP.run(conn, params) == 1 else None


def ensure_experiment_without_commit(
    conn: Connection, name: str, spec: dict[str, Any], now: float | None = None
) -> ExperimentRecord:
    """Create experiment `name` unless it exists; return it as stored.

    A new experiment gets a fresh incarnation id; one stored before incarnations
    were recorded gets one now.
    """
    row = EXPERIMENT.first(conn, {"b_name": name})
    if row is not None:
        record = experiment_from_row(row)
        if record.incarnation is not None:
            return record
        incarnation = uuid.uuid4().hex
        _UPDATE_EXPERIMENT.run(conn, {"b_name": name, "incarnation": incarnation})
        return dataclasses.replace(record, incarnation=incarnation)
    now = time.time() if now is None else now
    values = {
        "name": name,
        "created_at": now,
        "updated_at": now,
        "spec": to_json(spec, what="spec"),
        "status": "running",
        "last_seq": 0,
        "incarnation": uuid.uuid4().hex,
    }
    try:
        # A savepoint: where writers do not lock each other out up front (PostgreSQL), another
        # transaction may create the same experiment first; then theirs is the one.
        with conn.begin_nested():
            _INSERT_EXPERIMENT.run(conn, values)
    except IntegrityError:
        row = EXPERIMENT.first(conn, {"b_name": name})
        if row is None:
            raise
        return experiment_from_row(row)
    return experiment_from_row(tuple(values[name] for name in EXPERIMENT_FIELDS))


def set_experiment_status_without_commit(conn: Connection, name: str, status: str) -> None:
    """Set an experiment's status.

    Raises:
        ValueError: there is no experiment `name`.
    """
    params = {"b_name": name, "status": str(status), "updated_at": time.time()}
    if _UPDATE_EXPERIMENT.run(conn, params) != 1:
        raise ValueError(f"no experiment named {name!r}")


def max_trial_index(conn: Connection, experiment: str) -> int:
    """The largest trial index of `experiment`'s runs; -1 when it has none."""
    value = _MAX_TRIAL.scalar(conn, {"b_experiment": experiment})
    return -1 if value is None else int(value)


def _run_exists(conn: Connection, run_id: str) -> bool:
    return _RUN_EXISTS.first(conn, {"b_run_id": run_id}) is not None


def _insert_run(
    conn: Connection,
    *,
    run_id: str,
    experiment: str,
    trial_index: int,
    created_at: float,
    tags: list[str],
    summary: dict[str, Any],
    train_job: str | None,
    now: float,
    if_new: bool = False,
) -> None:
    """Insert the run; with `if_new`, only if no run has its id, sent with the next round trip."""
    values: dict[str, Any] = dict.fromkeys(FLAGS, False)
    values.update(
        run_id=run_id,
        experiment=experiment,
        trial_index=trial_index,
        seq=next_seq(conn, experiment, now),
        status=JobStatus.PENDING.value,
        created_at=created_at,
        updated_at=now,
        train_attempt=1,
        eval_attempt=1,
        cost=cost_of(summary) or 0.0,
        runtime=0.0,
        tags=to_json(tags, what="tags"),
        summary=to_json(summary, what="initial_summary"),
        train_job=train_job,
    )
    if if_new:
        _INSERT_NEW_RUN.later(conn, values)
    else:
        _INSERT_RUN.run(conn, values)


def init_run_without_commit(
    conn: Connection,
    run_id: str,
    group: str | None,
    tags: list[str] | None,
    initial_summary: dict[str, Any] | None,
) -> None:
    """Create a PENDING run (trial index: the experiment's next); no-op if it exists."""
    if group is None:
        raise ValueError(f"run {run_id!r}: group (the experiment name) is required by the SQL store")
    if _run_exists(conn, run_id):
        return
    now = time.time()
    _insert_run(
        conn,
        run_id=run_id,
        experiment=group,
        trial_index=max_trial_index(conn, group) + 1,
        created_at=now,
        tags=list(tags or []),
        summary=dict(initial_summary or {}),
        train_job=None,
        now=now,
    )


def record_training_intent_without_commit(
    conn: Connection, experiment: str, job: JobDefinition, suggestion: dict[str, Any], trial_index: int
) -> None:
    """docs/design.md, crash safety: the PENDING run with its job and suggestion, no dispatch id yet."""
    if job.type is not JobTypes.LAUNCH_TRAINING:
        raise ValueError(f"run {job.run_id!r}: a training intent needs a {JobTypes.LAUNCH_TRAINING} job")
    server = conn.dialect.name == "postgresql"  # a round trip saved (docs/stores.md, "PostgreSQL")
    if not server and _run_exists(conn, job.run_id):
        return
    now = time.time()
    _insert_run(
        conn,
        if_new=server,
        run_id=job.run_id,
        experiment=experiment,
        trial_index=trial_index,
        created_at=to_epoch(job.created_at),
        tags=[],
        summary={keys.OBSERVATION_SUGGESTION: suggestion},
        train_job=job.recorded().model_dump_json(),  # env values by name only (README, `train`)
        now=now,
    )


def _run_state(conn: Connection, run_id: str) -> _RunState | None:
    row = _RUN_STATE.one(conn, run_id)
    return None if row is None else _RunState(*row)


def _missing(run_id: str) -> ValueError:
    return ValueError(f"no run {run_id!r} in the store: record its training intent first")


def _flags(row: _RunState, **changes: bool) -> dict[str, bool]:
    return {name: bool(getattr(row, name)) for name in FLAGS} | changes


def record_eval_intent_without_commit(conn: Connection, job: JobDefinition) -> None:
    """Mark the run's eval as started, with its job and no dispatch id (no-op once started)."""
    _set_eval_intent(conn, job, _run_state(conn, job.run_id))


def record_eval_intents_without_commit(conn: Connection, jobs: Sequence[JobDefinition]) -> None:
    """`record_eval_intent_without_commit` for each job; on a server the runs are read in one query."""
    states = _states(conn, [job.run_id for job in jobs])
    for job in jobs:
        _set_eval_intent(conn, job, states.get(job.run_id))


def _set_eval_intent(conn: Connection, job: JobDefinition, row: _RunState | None) -> None:
    if job.type is not JobTypes.LAUNCH_EVAL:
        raise ValueError(f"run {job.run_id!r}: an eval intent needs a {JobTypes.LAUNCH_EVAL} job")
    if row is None:
        raise _missing(job.run_id)
    if row.has_started_eval or JobStatus(row.status).is_finished():
        return
    now = time.time()
    UPDATE_RUN.later(
        conn,
        {
            "b_run_id": job.run_id,
            "has_started_eval": True,
            "eval_job": job.recorded().model_dump_json(),  # env values by name only (README, `train`)
            "eval_dispatch_id": None,
            "status": status_of(**_flags(row, has_started_eval=True)).value,
            "seq": next_seq(conn, row.experiment, now),
            "updated_at": now,
        },
    )


def record_dispatch_id_without_commit(
    conn: Connection, run_id: str, job_type: JobTypes, dispatch_id: str
) -> None:
    """docs/design.md, crash safety: remember where the run's job of `job_type` runs."""
    _set_dispatch_id(conn, run_id, _run_state(conn, run_id), job_type, dispatch_id)


def record_dispatch_ids_without_commit(conn: Connection, items: Sequence[tuple[str, JobTypes, str]]) -> None:
    """`record_dispatch_id_without_commit` for each (run id, job type, dispatch id).

    On a server every run is read in one query: a round trip each would cost more.
    """
    states = _states(conn, [run_id for run_id, _, _ in items])
    for run_id, job_type, dispatch_id in items:
        _set_dispatch_id(conn, run_id, states.get(run_id), job_type, dispatch_id)


def _states(conn: Connection, run_ids: list[str]) -> dict[str, _RunState]:
    """The states of the runs of `run_ids` that exist (one query on a server)."""
    return {run_id: _RunState(*row) for run_id, row in _RUN_STATE.many(conn, run_ids).items()}


def _set_dispatch_id(
    conn: Connection, run_id: str, row: _RunState | None, job_type: JobTypes, dispatch_id: str
) -> None:
    if row is None:
        raise _missing(run_id)
    column = "train_dispatch_id" if job_type is JobTypes.LAUNCH_TRAINING else "eval_dispatch_id"
    if getattr(row, column) == dispatch_id:
        return
    now = time.time()
    UPDATE_RUN.later(
        conn,
        {
            "b_run_id": run_id,
            column: dispatch_id,
            "seq": next_seq(conn, row.experiment, now),
            "updated_at": now,
        },
    )


def _compare_and_set_flag(
    conn: Connection, run_id: str, flag: str, error: str | None, blocked: frozenset[JobStatus]
) -> bool:
    """Set `flag` (and `error`) unless the run's status is in `blocked`; True if it changed."""
    row = _run_state(conn, run_id)
    if row is None or JobStatus(row.status) in blocked:
        return False
    now = time.time()
    values: dict[str, Any] = {
        "b_run_id": run_id,
        "b_status": row.status,
        flag: True,
        "status": status_of(**_flags(row, **{flag: True})).value,
        "seq": next_seq(conn, row.experiment, now),
        "updated_at": now,
    }
    if error is not None:
        values["error"] = error
    # The status guard makes this a compare-and-set even without a write lock (PostgreSQL).
    return _CAS_RUN.run(conn, values) == 1


def mark_stale_without_commit(conn: Connection, run_id: str, reason: str) -> bool:
    """Mark an unfinished run STALE; False if it has finished or does not exist."""
    return _compare_and_set_flag(conn, run_id, "is_stale", reason, _FINISHED)


def cancel_run_without_commit(conn: Connection, run_id: str) -> bool:
    """Cancel an unfinished run; False if it has finished or does not exist."""
    return _compare_and_set_flag(conn, run_id, "is_cancelled", None, _FINISHED)


def mark_failed_without_commit(conn: Connection, run_id: str, reason: str) -> bool:
    """Mark a run FAILED, a COMPLETED one too (its result was rejected).

    Returns False if it is already FAILED or CANCELLED, or does not exist.
    """
    blocked = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
    return _compare_and_set_flag(conn, run_id, "has_failed", reason, blocked)


def update_run_summary_without_commit(conn: Connection, run_id: str, summary_update: dict[str, Any]) -> bool:
    """Merge `summary_update` into the run's summary; False if there is no such run."""
    to_json(summary_update, what="summary_update")  # fail before touching the database
    return _merge_summary(conn, run_id, summary_update, _RUN_SUMMARY.one(conn, run_id))


def update_run_summaries_without_commit(conn: Connection, updates: Mapping[str, dict[str, Any]]) -> list[str]:
    """`update_run_summary_without_commit` for each run; the ids of the runs not in the store.

    On a server the runs are read in one query.
    """
    for summary_update in updates.values():
        to_json(summary_update, what="summary_update")  # fail before touching the database
    rows = _RUN_SUMMARY.many(conn, list(updates))  # one query on a server
    return [
        run_id for run_id in updates if not _merge_summary(conn, run_id, updates[run_id], rows.get(run_id))
    ]


def _merge_summary(conn: Connection, run_id: str, summary_update: dict[str, Any], row: Any) -> bool:
    if row is None:
        return False
    experiment, text, old_cost = row
    summary = json.loads(text) | summary_update
    cost = cost_of(summary)
    now = time.time()
    UPDATE_RUN.later(
        conn,
        {
            "b_run_id": run_id,
            "summary": to_json(summary, what="summary"),
            "cost": old_cost if cost is None else cost,
            "seq": next_seq(conn, experiment, now),
            "updated_at": now,
        },
    )
    return True


__all__ = [
    "EXPERIMENT",
    "EXPERIMENT_COLUMNS",
    "FLAGS",
    "LAST_SEQ",
    "TX_CACHE",
    "UPDATE_RUN",
    "cancel_run_without_commit",
    "ensure_experiment_without_commit",
    "init_run_without_commit",
    "mark_failed_without_commit",
    "mark_stale_without_commit",
    "max_trial_index",
    "next_seq",
    "record_dispatch_id_without_commit",
    "record_eval_intent_without_commit",
    "record_training_intent_without_commit",
    "set_experiment_status_without_commit",
    "update_run_summary_without_commit",
]
