"""METRICS events of remote jobs, from rows read off their logs or passed on by their nodes.

A remote job's newest `sweepwise.report` row reaches the controller as a row (a Ray task
passes it to its supervisor actor; `sweepwise.runtime.remote` writes it into the log as a
`SWEEPWISE_METRICS` line). The same row is read again until the job reports a newer one, so
each watch remembers the last row it reported (docs/backends.md, "Early stopping on every
backend").
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from sweepwise.core.models import EventKind, JobEvent
from sweepwise.dispatchers._job_files import number
from sweepwise.runtime import METRICS_LINE_PREFIX


class MetricsWatch(Protocol):
    """A watch that makes its job's events and remembers the last metrics row it reported."""

    metrics_seen: str | None

    def event(self, kind: EventKind, at: float | None = None, **fields: Any) -> JobEvent:
        """An event of the watched job."""
        ...


def forwarded(line: str) -> bool:
    """A log line the runner wrote (a metrics row), not the job's own output."""
    return line.startswith(METRICS_LINE_PREFIX)


def metrics_event(watch: MetricsWatch, row: dict[str, Any] | None) -> list[JobEvent]:
    """A METRICS event for the job's newest row, unless it is the row `watch` reported last."""
    if row is None:
        return []
    seen = json.dumps(row, sort_keys=True, default=str)
    if seen == watch.metrics_seen:
        return []
    watch.metrics_seen = seen
    metrics = {name: value for name, value in row.items() if name != "time"}
    return [watch.event(EventKind.METRICS, number(row.get("time")), metrics=metrics)]


__all__ = ["MetricsWatch", "forwarded", "metrics_event"]
