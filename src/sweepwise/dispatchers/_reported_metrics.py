"""METRICS events of remote jobs, from rows read off their logs or passed on by their nodes.

A remote job's `sweepwise.report` rows reach the controller one by one (a Ray task passes
them to its supervisor actor; `sweepwise.runtime.remote` writes each into the log as a
`SWEEPWISE_METRICS` line). The same rows are read again until the job reports newer ones, so
each watch remembers the last row it reported and passes on only those after it
(docs/backends.md, "Early stopping on every backend").
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from sweepwise.core.models import EventKind, JobEvent
from sweepwise.dispatchers._job_files import metrics_rows_event
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


def metrics_event(watch: MetricsWatch, rows: list[dict[str, Any]]) -> list[JobEvent]:
    """A METRICS event for the rows after the one `watch` reported last (all of them when it is
    not among them), the newest as its `metrics`; none when there is no new row."""
    start = 0
    for index in range(len(rows) - 1, -1, -1):  # newest first: only the new rows and one more are dumped
        if _key(rows[index]) == watch.metrics_seen:
            start = index + 1
            break
    rows = rows[start:]
    if rows:
        watch.metrics_seen = _key(rows[-1])
    return metrics_rows_event(watch.event, rows)


def _key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


__all__ = ["MetricsWatch", "forwarded", "metrics_event"]
