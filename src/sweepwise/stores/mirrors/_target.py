"""What a mirror target writes, and the run fields every target mirrors (docs/stores.md, "Mirrors")."""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

from sweepwise.core import keys
from sweepwise.core.models import RunInfo
from sweepwise.core.status import JobStatus


@runtime_checkable
class MirrorTarget(Protocol):
    """A tracking service runs are copied to: MLflow, W&B or a plug-in."""

    @property
    def name(self) -> str:
        """What `sweepwise status` calls this target (`mlflow http://host:5000`)."""
        ...

    def push(self, experiment: str, runs: list[RunInfo]) -> None:
        """Create or update one tracked run per sweepwise run; idempotent (a run pushed twice is updated).

        Raises:
            Exception: anything; the caller retries the whole batch later.
        """
        ...

    def close(self) -> None:
        """Release clients and files."""
        ...


def run_params(run: RunInfo) -> dict[str, Any]:
    """The run's hyperparameters: its suggestion, as flat `{dot.path: value}`."""
    suggestion = run.summary.get(keys.OBSERVATION_SUGGESTION)
    return dict(suggestion) if isinstance(suggestion, dict) else {}


def run_metrics(run: RunInfo) -> dict[str, float]:
    """The run's finite numeric summary values (its result, `score`, `cost`), without the flags."""
    metrics: dict[str, float] = {}
    for key, value in run.summary.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            continue
        if key.startswith("adaptive/") or key.endswith("_at"):
            continue  # controller bookkeeping, timestamps
        metrics[key.removeprefix("observation/")] = float(value)
    if run.cost and math.isfinite(run.cost):
        metrics["cost"] = float(run.cost)
    return metrics


def is_finished(run: RunInfo) -> bool:
    """True once nothing more will happen to the run."""
    return run.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.STOPPED)


__all__ = ["MirrorTarget", "is_finished", "run_metrics", "run_params"]
