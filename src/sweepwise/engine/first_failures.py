"""A sweep whose first trials all fail for one reason in the spec, not in the jobs, stops early.

Today that reason is a metric no job reports (`metric: acc` where jobs report `accuracy`): every
trial would fail the same way, so running them all only wastes the budget. Trials failing for
their own reasons (different errors) never stop a sweep (docs/design.md, "First failures").
"""

from __future__ import annotations

from collections.abc import Iterable

from sweepwise.core.records import RunInfo
from sweepwise.engine.hooks import missing_metric

LIMIT = 3
"""Failed trials, all for the same missing metric and none scored, before the sweep stops."""


def misconfiguration(failed: Iterable[RunInfo], limit: int = LIMIT) -> str | None:
    """One line saying why the sweep stops, when `limit` failed trials all lacked one metric.

    Args:
        failed: the sweep's FAILED runs (the caller checks that none has scored).
        limit: how many such failures stop the sweep.
    """
    metrics: set[str] = set()
    reported: set[str] = set()
    count = 0
    for run in failed:
        missing = missing_metric(run.error)
        if missing is None:
            return None  # a trial failed for a reason of its own: the sweep goes on
        metrics.add(missing[0])
        reported.update(missing[1])
        count += 1
    if count < limit or len(metrics) != 1:
        return None
    (metric,) = metrics
    found = ", ".join(sorted(reported)) or "nothing"
    hint = "set metric: to one of them in the spec" if reported else "make the jobs report it"
    return (
        f"stopped after {count} trials: no job reported the metric {metric!r} "
        f"(they reported: {found}); {hint}, or report {metric!r}"
    )


__all__ = ["LIMIT", "misconfiguration"]
