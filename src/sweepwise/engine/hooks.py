"""Post-training and post-eval hooks: what the controller does, exactly once, when a job ends.

A hook returns the summary update it wants; the controller writes that update and
the processed flag in one transaction, so the effect happens exactly once even if
the controller is killed mid-hook. A hook with outside side effects must be
idempotent (it runs again if it was killed before its flag was written).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sweepwise.core import keys
from sweepwise.core.models import RunInfo

HookFn = Callable[[RunInfo], dict[str, Any] | None]


class MissingMetricError(ValueError):
    """The finished job did not report the experiment's metric."""


def lookup_metric(run: RunInfo, metric: str) -> Any:
    """The metric's value: from the eval result, else the train result, else the summary."""
    for source in (run.summary.get(keys.EVAL_RESULT), run.summary.get(keys.TRAIN_RESULT), run.summary):
        if isinstance(source, dict) and metric in source:
            return source[metric]
    return None


@dataclass(frozen=True, slots=True)
class ObservationHook:
    """The default post-eval hook: writes `observation/score` and `observation/cost`.

    Args:
        metric: the result key holding the score.
        cost_metric: the result key holding the cost; the training runtime when absent.
    """

    metric: str
    cost_metric: str = "cost"

    def __call__(self, run: RunInfo) -> dict[str, Any]:
        value = lookup_metric(run, self.metric)
        if value is None:
            results = {
                **(run.summary.get(keys.TRAIN_RESULT) or {}),
                **(run.summary.get(keys.EVAL_RESULT) or {}),
            }
            found = ", ".join(sorted(results)) or "nothing"
            if self.metric in results:
                raise MissingMetricError(
                    f"the result's {self.metric!r} is null, not a number; report a number, "
                    f'e.g. SWEEPWISE_RESULT {{"{self.metric}": 0.9}}'
                )
            raise MissingMetricError(
                f"the result has no {self.metric!r} (it reported: {found}); "
                f'report it, e.g. SWEEPWISE_RESULT {{"{self.metric}": 0.9}}, or set metric: in the spec'
            )
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise MissingMetricError(f"{self.metric!r} is {value!r}, not a number") from None
        if not math.isfinite(score):
            raise MissingMetricError(f"{self.metric!r} is {value!r}, not a finite number")
        cost = lookup_metric(run, self.cost_metric)
        try:
            cost_value = float(cost) if cost is not None else float(run.runtime)
        except (TypeError, ValueError):
            cost_value = float(run.runtime)
        update: dict[str, Any] = {keys.OBSERVATION_SCORE: score, keys.OBSERVATION_COST: cost_value}
        if keys.OBSERVATION_SUGGESTION not in run.summary:
            update[keys.OBSERVATION_SUGGESTION] = {}
        return update


def no_op_hook(run: RunInfo) -> None:
    """A hook that does nothing (the default after training)."""
    return None


__all__ = ["HookFn", "MissingMetricError", "ObservationHook", "lookup_metric", "no_op_hook"]
