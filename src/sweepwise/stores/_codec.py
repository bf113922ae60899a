"""Conversions between Python values and the store's columns: JSON text, epoch times, rows."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from sweepwise.core import keys
from sweepwise.core.jsonsafe import dumps_strict
from sweepwise.core.records import RunInfo

if TYPE_CHECKING:
    from sweepwise.core.models import JobDefinition

UTC = dt.UTC


def _json_default(value: Any) -> Any:
    """What `json.dumps` cannot encode by itself but state and summaries often hold."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, PurePath):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, without importing numpy
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable: {value!r}")


def to_json(value: Any, *, what: str) -> str:
    """Encode `value` as strict JSON text (`NaN` and too-large integers as strings, see `json_safe`).

    Raises:
        TypeError: `value` holds something JSON cannot represent; `what` names it.
    """
    try:
        return dumps_strict(value, default=_json_default, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from None


def to_epoch(value: dt.datetime) -> float:
    """A datetime as UTC epoch seconds (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def cost_of(summary: Mapping[str, Any]) -> float | None:
    """The summary's `observation/cost` when it is a finite number >= 0, else None (a bool is not one)."""
    value = summary.get(keys.OBSERVATION_COST)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        cost = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return cost if math.isfinite(cost) and cost >= 0 else None


_from_epoch = dt.datetime.fromtimestamp


def _parse_job(text: str) -> JobDefinition:
    """A stored job definition (pydantic is imported by the first call, not by readers)."""
    from sweepwise.core.models import JobDefinition

    return JobDefinition.model_validate_json(text)


RUN_FIELDS = (
    "run_id",
    "experiment",
    "tags",
    "created_at",
    "started_at",
    "completed_at",
    "updated_at",
    "last_heartbeat_at",
    "summary",
    "has_started_training",
    "has_completed_training",
    "has_started_eval",
    "has_been_evaluated",
    "has_failed",
    "is_stale",
    "is_cancelled",
    "cost",
    "runtime",
    "error",
    "train_job",
    "eval_job",
    "train_dispatch_id",
    "eval_dispatch_id",
    "seq",
    "trial_index",
    "train_attempt",
    "eval_attempt",
    "is_stopped",
)
"""The `runs` columns `run_from_row` reads, in the order it unpacks them."""


def _summary_from_json(text: str) -> dict[str, Any]:
    """A run's summary; its keys are interned, so 10^4 runs share one copy of each key."""
    data = json.loads(text)
    if not isinstance(data, dict):
        return {}
    return {sys.intern(key): value for key, value in data.items()}


def run_from_row(row: Sequence[Any], *, with_jobs: bool = True) -> RunInfo:
    """A `RunInfo` from a row of the `RUN_FIELDS` columns, in that order.

    `with_jobs=False` leaves `train_job` / `eval_job` empty: read-only commands skip
    validating two job definitions per run.

    Rows are unpacked by position: this runs once per run read, 10^4 times for a
    large experiment, and named access costs more than everything else here.
    """
    (
        run_id,
        experiment,
        tags,
        created_at,
        started_at,
        completed_at,
        updated_at,
        last_heartbeat_at,
        summary,
        has_started_training,
        has_completed_training,
        has_started_eval,
        has_been_evaluated,
        has_failed,
        is_stale,
        is_cancelled,
        cost,
        runtime,
        error,
        train_job,
        eval_job,
        train_dispatch_id,
        eval_dispatch_id,
        seq,
        _trial_index,
        train_attempt,
        eval_attempt,
        is_stopped,
    ) = row
    return RunInfo(
        run_id=sys.intern(run_id),  # one copy of each id, however many sets and indexes hold it
        group=None if experiment is None else sys.intern(experiment),
        tags=[] if tags == "[]" else json.loads(tags),
        created_at=_from_epoch(created_at, UTC),
        started_at=None if started_at is None else _from_epoch(started_at, UTC),
        completed_at=None if completed_at is None else _from_epoch(completed_at, UTC),
        last_updated_at=_from_epoch(updated_at, UTC),
        last_heartbeat_at=None if last_heartbeat_at is None else _from_epoch(last_heartbeat_at, UTC),
        summary=_summary_from_json(summary),
        has_started_training=bool(has_started_training),
        has_completed_training=bool(has_completed_training),
        has_started_eval=bool(has_started_eval),
        has_been_evaluated=bool(has_been_evaluated),
        has_failed=bool(has_failed),
        is_stale=bool(is_stale),
        is_cancelled=bool(is_cancelled),
        is_stopped=bool(is_stopped),
        cost=cost,
        runtime=runtime,
        error=error,
        train_job=None if train_job is None or not with_jobs else _parse_job(train_job),
        eval_job=None if eval_job is None or not with_jobs else _parse_job(eval_job),
        train_dispatch_id=train_dispatch_id,
        eval_dispatch_id=eval_dispatch_id,
        seq=seq,
        train_attempt=train_attempt,
        eval_attempt=eval_attempt,
    )


@dataclass(frozen=True, slots=True)
class ExperimentRecord:
    """An experiment as the store keeps it.

    Attributes:
        name: the experiment's name (the runs' `group`).
        spec: the spec it was created with (JSON-serialisable).
        status: `running`, `complete`, `cancelled`, ...
        created_at: when it was created (UTC).
        updated_at: when it last changed, runs included (UTC).
        last_seq: its update sequence: the `seq` of its most recently changed runs.
        incarnation: a new id each time an experiment of this name is created (None
            for one created before sweepwise recorded them, until it is run again).
    """

    name: str
    spec: dict[str, Any]
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    last_seq: int
    incarnation: str | None = None


EXPERIMENT_FIELDS = ("name", "spec", "status", "created_at", "updated_at", "last_seq", "incarnation")
"""The `experiments` columns `experiment_from_row` reads, in the order it unpacks them."""


def experiment_from_row(row: Sequence[Any]) -> ExperimentRecord:
    """An `ExperimentRecord` from a row of the `EXPERIMENT_FIELDS` columns, in that order."""
    name, spec, status, created_at, updated_at, last_seq, incarnation = row
    return ExperimentRecord(
        name=name,
        spec=json.loads(spec),
        status=status,
        created_at=_from_epoch(created_at, UTC),
        updated_at=_from_epoch(updated_at, UTC),
        last_seq=last_seq,
        incarnation=incarnation,
    )
