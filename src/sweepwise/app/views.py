"""What `status`, `best` and the live display show: plain dicts from runs, cheap to build."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sweepwise.core import keys
from sweepwise.core.errors import SweepwiseError
from sweepwise.core.jsonsafe import finite_number
from sweepwise.core.records import JobStatus, RunInfo


class RunReader(Protocol):
    """What the views read: `SQLStore` or the lean `SQLiteReader`."""

    @property
    def url(self) -> Any: ...

    def exists(self) -> bool: ...

    def get_experiment(self, name: str) -> Any: ...

    def list_experiments(self) -> list[Any]: ...

    def fetch_runs(self, filters: dict[str, Any]) -> list[RunInfo]: ...

    def count_by_status(self, experiment: str) -> dict[str, int]: ...


def run_row(run: RunInfo) -> dict[str, Any]:
    """One run as `status --json` shows it (built 10^4 times for a large experiment: kept lean)."""
    summary = run.summary
    progress = None
    metrics = summary.get(keys.TRAIN_METRICS)
    if isinstance(metrics, dict):
        progress = metrics.get("progress")
    status = run.status
    suggestion = summary.get(keys.OBSERVATION_SUGGESTION)
    stop = summary.get(keys.STOP)
    return {
        "run_id": run.run_id,
        "status": status.key,
        "status_label": status.value,
        "suggestion": suggestion if isinstance(suggestion, dict) else {},
        "score": summary.get(keys.OBSERVATION_SCORE),
        "cost": summary.get(keys.OBSERVATION_COST),
        "runtime": run.runtime,
        "attempt": run.eval_attempt if run.has_started_eval else run.train_attempt,
        "train_attempt": run.train_attempt,
        "eval_attempt": run.eval_attempt,
        "progress": progress,
        "train_exit_code": summary.get(keys.TRAIN_EXIT_CODE),
        "eval_exit_code": summary.get(keys.EVAL_EXIT_CODE),
        "error": run.error,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        # where its stopper stopped it: the step and the value it judged there
        "stopped_at": {"step": stop.get("step"), "value": stop.get("value")}
        if isinstance(stop, dict)
        else None,
    }


def status_counts(runs: Sequence[RunInfo]) -> dict[str, int]:
    """How many runs are in each status, by machine name (every status, zeros included, in order)."""
    return _keyed_counts(Counter(run.status.value for run in runs))


def _keyed_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """`counts` by status value (`"IN TRAINING"`) as every status's machine name in order, zeros included.

    The `status EXPERIMENT --json` counts and the per-experiment counts of `status --json`
    have this one shape (README, "Command line").
    """
    return {status.key: int(counts.get(status.value, 0)) for status in JobStatus}


def best_run(runs: Sequence[RunInfo], goal: str) -> RunInfo | None:
    """The COMPLETED run with the best `observation/score` for `goal`, or None."""
    best: RunInfo | None = None
    best_score = -math.inf
    sign = 1.0 if goal == "maximize" else -1.0
    for run in runs:
        if run.status is not JobStatus.COMPLETED:
            continue
        score = finite_number(run.summary.get(keys.OBSERVATION_SCORE))
        if score is None:
            continue
        if sign * score > best_score:
            best, best_score = run, sign * score
    return best


def best_row(run: RunInfo, metric: str, goal: str) -> dict[str, Any]:
    """The best run as `best --json` shows it."""
    return {
        "run_id": run.run_id,
        "metric": metric,
        "goal": goal,
        "score": run.summary.get(keys.OBSERVATION_SCORE),
        "cost": run.summary.get(keys.OBSERVATION_COST),
        "parameters": run.suggestion,
    }


def experiment_record(reader: RunReader, name: str) -> Any:
    """The stored experiment `name`.

    Raises:
        SweepwiseError: there is none; the message lists the experiments there are.
    """
    record = reader.get_experiment(name)
    if record is None:
        names = ", ".join(e.name for e in reader.list_experiments()) or "none"
        raise SweepwiseError(f"no experiment named {name!r} in {reader.url} (experiments: {names})")
    return record


def experiments_payload(reader: RunReader) -> dict[str, Any]:
    """`status --json` without an experiment: every experiment with its counts."""
    rows = [
        {"experiment": r.name, "status": r.status, "counts": _keyed_counts(reader.count_by_status(r.name))}
        for r in reader.list_experiments()
    ]
    return {"experiments": rows}


def status_payload(reader: RunReader, experiment: str) -> dict[str, Any]:
    """`status EXPERIMENT --json`: the experiment, its counts and every run."""
    record = experiment_record(reader, experiment)
    runs = reader.fetch_runs({"group": experiment})
    from sweepwise.stores.mirrors import mirror_status

    return {
        "experiment": experiment,
        "status": record.status,
        "counts": status_counts(runs),
        "runs": [run_row(run) for run in runs],
        "mirrors": mirror_status(reader, experiment, runs),
    }


def best_payload(reader: RunReader, experiment: str) -> dict[str, Any]:
    """`best EXPERIMENT --json`: the best completed run with its parameters.

    One shape whether or not a run has scored: with none, `run_id`, `score`, `cost` and
    `parameters` are null (and the command exits 1).
    """
    record = experiment_record(reader, experiment)
    spec = record.spec.get("spec", {})
    metric, goal = spec.get("metric", "score"), spec.get("goal", "maximize")
    run = best_run(reader.fetch_runs({"group": experiment, "status": "COMPLETED"}), goal)
    if run is None:
        none = {
            "run_id": None,
            "metric": metric,
            "goal": goal,
            "score": None,
            "cost": None,
            "parameters": None,
        }
        return {"experiment": experiment, **none}
    return {"experiment": experiment, **best_row(run, metric, goal)}


def no_best(reader: RunReader, experiment: str) -> str:
    """What `best` says (and exits 1 with) when no run of `experiment` has scored.

    An experiment still running may yet get one; one that has ended says how its runs ended
    (every run stopped early, say, or failed).
    """
    status = experiment_record(reader, experiment).status
    if status not in ("complete", "cancelled"):
        return f"experiment {experiment!r} has no completed run with a score yet"
    counts = reader.count_by_status(experiment)
    ends = ", ".join(f"{count} {name.lower()}" for name, count in sorted(counts.items()) if count)
    ended = f"experiment {experiment!r} ended ({status})"
    return f"{ended} with no completed run with a score ({ends or 'no run'})"


__all__ = [
    "RunReader",
    "best_payload",
    "best_row",
    "best_run",
    "experiment_record",
    "experiments_payload",
    "no_best",
    "run_row",
    "status_counts",
    "status_payload",
]
