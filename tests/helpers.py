"""Shared test helpers: runs in a given status, and an optimizer that records its calls."""

from __future__ import annotations

from typing import Any

from sweepwise.core import keys
from sweepwise.core.models import JobStatus, Observation, RunInfo

_FLAGS = {
    JobStatus.PENDING: {},
    JobStatus.IN_TRAINING: {"has_started_training": True},
    JobStatus.TRAINING_DONE_NO_EVAL: {"has_started_training": True, "has_completed_training": True},
    JobStatus.IN_EVAL: {
        "has_started_training": True,
        "has_completed_training": True,
        "has_started_eval": True,
    },
    JobStatus.COMPLETED: {
        "has_started_training": True,
        "has_completed_training": True,
        "has_started_eval": True,
        "has_been_evaluated": True,
    },
    JobStatus.FAILED: {"has_started_training": True, "has_failed": True},
    JobStatus.STALE: {"has_started_training": True, "is_stale": True},
    JobStatus.CANCELLED: {"is_cancelled": True},
}


def make_run(run_id: str, status: JobStatus, score: float | None = None, **suggestion: Any) -> RunInfo:
    """A run whose flags give `status`, with an optional score and suggestion."""
    summary: dict[str, Any] = {keys.OBSERVATION_SUGGESTION: suggestion}
    if score is not None:
        summary[keys.OBSERVATION_SCORE] = score
        summary[keys.OBSERVATION_COST] = 1.0
    run = RunInfo(run_id=run_id, summary=summary, runtime=2.0, **_FLAGS[status])
    assert run.status is status
    return run


class RecordingOptimizer:
    """An `Optimizer` that returns x=0,1,2... and records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Observation], int]] = []
        self._next = 0

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        self.calls.append((list(observations), n_suggestions))
        out = [{"x": self._next + i} for i in range(n_suggestions)]
        self._next += n_suggestions
        return out
