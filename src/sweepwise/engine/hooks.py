"""Post-training and post-eval hooks: what the controller does, exactly once, when a job ends.

A hook returns the summary update it wants; the controller writes that update and
the processed flag in one transaction, so the effect happens exactly once even if
the controller is killed mid-hook. A hook with outside side effects must be
idempotent (it runs again if it was killed before its flag was written).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sweepwise.core import keys
from sweepwise.core.jsonsafe import NON_FINITE
from sweepwise.core.models import RunInfo

HookFn = Callable[[RunInfo], dict[str, Any] | None]

DEFAULT_METRIC = "score"
"""The metric of an experiment that names none."""
FALLBACK_METRIC = "evaluator/eval_arena/score"
"""Seed 002's default score key: read when the metric is the default and the job did not report it."""


class MissingMetricError(ValueError):
    """The finished job did not report the experiment's metric, or its score or cost is not a number."""


_MISSING = re.compile(r"^the result has no '(?P<metric>.*?)' \(it reported: (?P<found>.*?)\); ")


def missing_metric(error: str | None) -> tuple[str, list[str]] | None:
    """(metric, keys reported) when `error` is the hook's "the result has no ..." failure, else None.

    Read here, beside the message `ObservationHook` writes, so the two cannot drift apart.
    """
    match = _MISSING.match(error or "")
    if match is None:
        return None
    return match["metric"], [key for key in match["found"].split(", ") if key and key != "nothing"]


# How the store keeps what strict JSON cannot hold (`sweepwise.core.jsonsafe`).
_STORED_NON_FINITE = tuple(NON_FINITE)
_STORED_HUGE_INT = re.compile(r"-?\d{309,}")


def _kind(value: Any) -> str:
    """What a JSON value is, in words: `true`, `NaN`, `the string "0.9"`, `an array`, ..."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float) or value in _STORED_NON_FINITE:
        return value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, int) or isinstance(value, str) and _STORED_HUGE_INT.fullmatch(value):
        try:
            return f"a {len(str(value).lstrip('-'))}-digit integer, too large for a float"
        except ValueError:  # too many digits to print
            return "an integer too large for a float"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {json.dumps(text)}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def finite_number(key: str, value: Any) -> float:
    """`value`, the result's `key`, as a finite float.

    NaN, the infinities and integers too large for a float are rejected as such also
    in the string form the store keeps them in (docs/design.md, "Results and strict JSON").

    Raises:
        MissingMetricError: it is a bool, not a number, NaN, infinite, or an integer too
            large for a float; the message names `key` and what it is.
    """
    numeric = value is not None and not isinstance(value, bool | str | bytes | dict | list | tuple)
    number: float | None = None
    if numeric:
        try:
            number = float(value)  # ints, floats, numpy scalars
        except (TypeError, ValueError, OverflowError):
            number, numeric = None, isinstance(value, int)
    elif isinstance(value, str):
        numeric = value in _STORED_NON_FINITE or _STORED_HUGE_INT.fullmatch(value) is not None
    if number is None or not math.isfinite(number):
        what = "not a finite number" if numeric else "not a number"
        raise MissingMetricError(f"the result's {json.dumps(key)} is {_kind(value)}, {what}")
    return number


def lookup_metric(run: RunInfo, metric: str) -> Any:
    """The metric's value: from the eval result, else the train result, else the summary."""
    for source in (run.summary.get(keys.EVAL_RESULT), run.summary.get(keys.TRAIN_RESULT), run.summary):
        if isinstance(source, dict) and metric in source:
            return source[metric]
    return None


@dataclass(frozen=True, slots=True)
class ObservationHook:
    """The default post-eval hook: writes `observation/score` and `observation/cost`.

    When `metric` is the default (`score`) and the job did not report it, the score is
    read from seed 002's default key `evaluator/eval_arena/score` instead.

    Args:
        metric: the result key holding the score.
        cost_metric: the result key holding the cost; the training runtime when absent.
    """

    metric: str
    cost_metric: str = "cost"

    def __call__(self, run: RunInfo) -> dict[str, Any]:
        metric = self.metric
        value = lookup_metric(run, metric)
        if value is None and metric == DEFAULT_METRIC:
            fallback = lookup_metric(run, FALLBACK_METRIC)
            if fallback is not None:
                metric, value = FALLBACK_METRIC, fallback
        if value is None:
            results = {
                **(run.summary.get(keys.TRAIN_RESULT) or {}),
                **(run.summary.get(keys.EVAL_RESULT) or {}),
            }
            found = ", ".join(sorted(results)) or "nothing"
            if metric in results:
                raise MissingMetricError(
                    f"the result's {metric!r} is null, not a number; report a number, "
                    f'e.g. SWEEPWISE_RESULT {{"{metric}": 0.9}}'
                )
            raise MissingMetricError(
                f"the result has no {metric!r} (it reported: {found}); "
                f'report it, e.g. SWEEPWISE_RESULT {{"{metric}": 0.9}}, or set metric: in the spec'
            )
        score = finite_number(metric, value)
        cost = lookup_metric(run, self.cost_metric)
        cost_value = float(run.runtime) if cost is None else finite_number(self.cost_metric, cost)
        if cost_value < 0:
            key = json.dumps(self.cost_metric)
            raise MissingMetricError(f"the result's {key} is {cost!r}; a cost must be >= 0")
        update: dict[str, Any] = {keys.OBSERVATION_SCORE: score, keys.OBSERVATION_COST: cost_value}
        if keys.OBSERVATION_SUGGESTION not in run.summary:
            update[keys.OBSERVATION_SUGGESTION] = {}
        return update


def no_op_hook(run: RunInfo) -> None:
    """A hook that does nothing (the default after training)."""
    return None


__all__ = [
    "DEFAULT_METRIC",
    "FALLBACK_METRIC",
    "HookFn",
    "MissingMetricError",
    "ObservationHook",
    "finite_number",
    "lookup_metric",
    "no_op_hook",
]
