"""What `status`, `best` and the live display show: plain dicts from runs, cheap to build."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from sweepwise import keys
from sweepwise.models import JobStatus, RunInfo


def run_row(run: RunInfo) -> dict[str, Any]:
    """One run as `status --json` shows it."""
    summary = run.summary
    progress = None
    metrics = summary.get("train/metrics")
    if isinstance(metrics, dict):
        progress = metrics.get("progress")
    return {
        "run_id": run.run_id,
        "status": run.status.value,
        "suggestion": run.suggestion,
        "score": summary.get(keys.OBSERVATION_SCORE),
        "cost": summary.get(keys.OBSERVATION_COST),
        "runtime": run.runtime,
        "progress": progress,
        "train_exit_code": summary.get(keys.TRAIN_EXIT_CODE),
        "eval_exit_code": summary.get(keys.EVAL_EXIT_CODE),
        "error": run.error,
        "created_at": run.created_at.isoformat() if run.created_at else None,
    }


def status_counts(runs: list[RunInfo]) -> dict[str, int]:
    """How many runs are in each status (every status listed, zeros included)."""
    counts = Counter(run.status.value for run in runs)
    return {status.value: counts.get(status.value, 0) for status in JobStatus}


def best_run(runs: list[RunInfo], goal: str) -> RunInfo | None:
    """The COMPLETED run with the best `observation/score` for `goal`, or None."""
    best: RunInfo | None = None
    best_score = -math.inf
    sign = 1.0 if goal == "maximize" else -1.0
    for run in runs:
        if run.status is not JobStatus.COMPLETED:
            continue
        score = run.summary.get(keys.OBSERVATION_SCORE)
        if not isinstance(score, int | float) or math.isnan(score):
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


__all__ = ["best_row", "best_run", "run_row", "status_counts"]
