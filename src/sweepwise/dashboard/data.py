"""What the dashboard's pages show, built on the payloads `sweepwise status` and `best` print.

Every read goes through `sweepwise.app.views` on a `RunReader` (docs/dashboard.md, "Reads"):
the dashboard has no query layer of its own, so it reads every store the CLI reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sweepwise.app.views import RunReader, best_payload, experiment_record, status_payload
from sweepwise.core.errors import ConfigError
from sweepwise.core.status import JobStatus
from sweepwise.dashboard.reads import RunsReadOnce

STATUS_BY_KEY = {status.key: status for status in JobStatus}
SORTABLE = ("run_id", "status", "score", "cost", "runtime", "created_at")
PARAM_PREFIX = "param:"
MAX_PER_PAGE = 500


def finite(value: Any) -> float | None:
    """`value` as a finite float, or None (a bool, a string, NaN, infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _is_finished(row: Mapping[str, Any]) -> bool:
    status = STATUS_BY_KEY.get(str(row["status"]))
    return status is not None and status.is_finished()


def stage_states(row: Mapping[str, Any]) -> tuple[str, str]:
    """What the train and the eval job of a `status --json` row are doing: `running`, `exit 0`, ..."""
    status = row["status"]

    def state(code: Any, running: str, started: bool) -> str:
        if code is not None:
            return f"exit {code}"
        if status == running:
            return "running"
        return "pending" if not started else "-"

    train = state(row.get("train_exit_code"), "in_training", status != "pending")
    evaluation = state(row.get("eval_exit_code"), "in_eval", status in ("in_eval", "completed"))
    if status == "pending":
        train = "pending"
    return train, evaluation


def table_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A `status --json` row with the state of each stage, as the runs table shows it."""
    train, evaluation = stage_states(row)
    return {**row, "train_state": train, "eval_state": evaluation, "finished": _is_finished(row)}


@dataclass(frozen=True)
class TableQuery:
    """One page of the runs table: its sort, its filters and where it starts.

    Attributes:
        sort: a column (`SORTABLE`) or `param:NAME`.
        descending: largest first.
        status: only runs of this status (its machine name, `completed`), or all.
        text: only runs whose id or a parameter value contains this (case-insensitive).
        page: the page, from 1.
        per_page: rows per page (1 to `MAX_PER_PAGE`).
    """

    sort: str = "run_id"
    descending: bool = False
    status: str = ""
    text: str = ""
    page: int = 1
    per_page: int = 50

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> TableQuery:
        """The query of a request's parameters (`sort`, `order`, `status`, `q`, `page`, `per_page`).

        Raises:
            ConfigError: a parameter is not one the table takes; the message names it and the fix.
        """
        sort = params.get("sort", "run_id")
        if sort not in SORTABLE and not sort.startswith(PARAM_PREFIX):
            raise ConfigError(
                "sort", f"{sort!r} is not a column; use one of {', '.join(SORTABLE)} or param:NAME"
            )
        order = params.get("order", "asc")
        if order not in ("asc", "desc"):
            raise ConfigError("order", f"{order!r}: use asc or desc")
        status = params.get("status", "")
        if status and status not in STATUS_BY_KEY:
            raise ConfigError("status", f"{status!r} is not a status; use one of {', '.join(STATUS_BY_KEY)}")
        page = _positive(params, "page", 1)
        per_page = _positive(params, "per_page", 50)
        if per_page > MAX_PER_PAGE:
            raise ConfigError("per_page", f"{per_page} is more than {MAX_PER_PAGE}; ask for fewer rows")
        return cls(sort, order == "desc", status, params.get("q", "").strip(), page, per_page)


def _positive(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(name, f"{raw!r} is not a whole number from 1 up")
    return int(raw)


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers before text; a missing value sorts last whichever way the column is sorted."""
    number = finite(value)
    if number is not None:
        return (0, number, "")
    return (1, 0.0, str(value))


def table_page(rows: Sequence[Mapping[str, Any]], query: TableQuery) -> dict[str, Any]:
    """The page of `rows` (`status --json` rows) that `query` asks for, with the count of matching rows."""
    matching = [row for row in rows if _matches(row, query)]
    if query.sort.startswith(PARAM_PREFIX):
        name = query.sort[len(PARAM_PREFIX) :]

        def value(row: Mapping[str, Any]) -> Any:
            return row["suggestion"].get(name)
    else:

        def value(row: Mapping[str, Any]) -> Any:
            return row.get(query.sort)

    present = [row for row in matching if value(row) is not None]
    missing = [row for row in matching if value(row) is None]
    present.sort(key=lambda row: _sort_key(value(row)), reverse=query.descending)
    ordered = present + missing
    pages = max(1, math.ceil(len(ordered) / query.per_page))
    page = min(query.page, pages)
    start = (page - 1) * query.per_page
    return {
        "total": len(ordered),
        "page": page,
        "pages": pages,
        "per_page": query.per_page,
        "sort": query.sort,
        "order": "desc" if query.descending else "asc",
        "rows": [table_row(row) for row in ordered[start : start + query.per_page]],
    }


def _matches(row: Mapping[str, Any], query: TableQuery) -> bool:
    if query.status and row["status"] != query.status:
        return False
    if not query.text:
        return True
    needle = query.text.lower()
    words = [str(row["run_id"]), *(f"{k}={v}" for k, v in row["suggestion"].items())]
    return any(needle in word.lower() for word in words)


def experiment_settings(record: Any) -> dict[str, Any]:
    """The metric, goal, parameter names and planned trial count of a stored experiment."""
    spec = record.spec.get("spec", {}) if isinstance(record.spec, dict) else {}
    scheduler = spec.get("scheduler") or {}
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        parameters = {}
    return {
        "metric": spec.get("metric", "score"),
        "goal": spec.get("goal", "maximize"),
        "parameters": list(parameters),
        "log_parameters": [name for name, p in parameters.items() if _log_scaled(p)],
        "max_trials": scheduler.get("max_trials") if isinstance(scheduler, dict) else None,
    }


def _log_scaled(parameter: Any) -> bool:
    """Whether a spec searches its parameter on a log scale (`log_normal`, `uniform_pow2`, `log: true`)."""
    if not isinstance(parameter, dict):
        return False
    return parameter.get("distribution") in ("log_normal", "uniform_pow2") or parameter.get("log") is True


def progress(counts: Mapping[str, int], max_trials: Any, runs: int) -> dict[str, int]:
    """Finished, total, running and failed trials from `status --json` counts."""
    finished = sum(n for key, n in counts.items() if STATUS_BY_KEY[key].is_finished())
    total = max_trials if isinstance(max_trials, int) and max_trials >= runs else runs
    return {
        "finished": finished,
        "total": total,
        "running": counts.get("in_training", 0) + counts.get("in_eval", 0),
        "failed": counts.get("failed", 0) + counts.get("stale", 0),
    }


def experiment_view(reader: RunReader, name: str) -> dict[str, Any]:
    """Everything the experiment page shows but the plots: `status --json`, settings, progress, best.

    Raises:
        SweepwiseError: there is no experiment `name` (the message lists those there are).
    """
    reader = RunsReadOnce(reader)  # status_payload and best_payload read the runs once between them
    record = experiment_record(reader, name)
    payload = status_payload(reader, name)
    settings = experiment_settings(record)
    rows = payload["runs"]
    costs = [cost for cost in (finite(row["cost"]) for row in rows) if cost is not None]
    return {
        **payload,
        **settings,
        "progress": progress(payload["counts"], settings["max_trials"], len(rows)),
        "best": best_payload(reader, name),
        "total_cost": sum(costs),
        "updated_at": record.updated_at,
        "seq": record.last_seq,
    }


def experiment_line(view: Mapping[str, Any]) -> dict[str, Any]:
    """An experiment's line on the experiments page, from its `experiment_view`."""
    best = view["best"]
    return {
        "experiment": view["experiment"],
        "status": view["status"],
        **view["progress"],
        "best_score": best["score"] if best else None,
        "metric": view["metric"],
        "goal": view["goal"],
        "total_cost": view["total_cost"],
        "updated_at": view["updated_at"],
    }


def experiments_view(reader: RunReader) -> list[dict[str, Any]]:
    """One line per experiment for the experiments page (name, status, progress, best, cost, update)."""
    return [experiment_line(experiment_view(reader, record.name)) for record in reader.list_experiments()]


def scored_points(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The finished trials with a score, in trial order: what every plot draws one point for."""
    points = []
    for row in rows:
        score = finite(row["score"])
        if score is None or not _is_finished(row):
            continue
        points.append(
            {
                "run_id": row["run_id"],
                "score": score,
                "cost": finite(row["cost"]),
                "params": dict(row["suggestion"]),
            }
        )
    return points


__all__ = [
    "MAX_PER_PAGE",
    "PARAM_PREFIX",
    "SORTABLE",
    "STATUS_BY_KEY",
    "TableQuery",
    "experiment_line",
    "experiment_settings",
    "experiment_view",
    "experiments_view",
    "finite",
    "progress",
    "scored_points",
    "stage_states",
    "table_page",
    "table_row",
]
