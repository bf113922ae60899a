"""A sweep whose first trials all fail for one reason in the spec, not in the jobs, stops early.

Two such reasons are recognised: a metric no job reports (`metric: acc` where jobs report
`accuracy`), and a job that cannot start its work whatever its parameters (the same error,
from a missing module, a syntax error, a missing file or a command the shell cannot run, in
every job). Either way every trial would fail alike, so running them all only wastes the
budget. Trials failing for their own reasons (different errors, or an error a job's parameters
may cause) never stop a sweep (docs/design.md, "First failures").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sweepwise.core.records import RunInfo
from sweepwise.engine.hooks import missing_metric

LIMIT = 3
"""Failed trials, all for the same reason and none scored, before the sweep stops."""

_SETUP_ERROR = re.compile(
    r"exit code 12[67]\b"  # the shell could not run the command (126) or find it (127)
    r"|last output: (?:Traceback .*)?(?:ModuleNotFoundError|ImportError|SyntaxError|IndentationError"
    r"|TabError|FileNotFoundError|PermissionError)\b"
)
"""Errors no parameter value causes: the job could not set itself up (its last output, or the
exit status of a command the shell could not run)."""


def misconfiguration(failed: Iterable[RunInfo], limit: int = LIMIT) -> str | None:
    """One line saying why the sweep stops, when `limit` failed trials all failed for one reason
    in the spec: the same missing metric, or the same set-up error.

    Args:
        failed: the sweep's FAILED runs (the caller checks that none has scored).
        limit: how many such failures stop the sweep.
    """
    runs = list(failed)
    if len(runs) < limit:
        return None
    return _same_missing_metric(runs) or _same_setup_error(runs)


def _same_missing_metric(runs: list[RunInfo]) -> str | None:
    metrics: set[str] = set()
    reported: set[str] = set()
    for run in runs:
        missing = missing_metric(run.error)
        if missing is None:
            return None  # a trial failed for a reason of its own: the sweep goes on
        metrics.add(missing[0])
        reported.update(missing[1])
    if len(metrics) != 1:
        return None
    (metric,) = metrics
    found = ", ".join(sorted(reported)) or "nothing"
    hint = "set metric: to one of them in the spec" if reported else "make the jobs report it"
    return (
        f"stopped after {len(runs)} trials: no job reported the metric {metric!r} "
        f"(they reported: {found}); {hint}, or report {metric!r}"
    )


def _same_setup_error(runs: list[RunInfo]) -> str | None:
    errors = {" ".join((run.error or "").split()) for run in runs}
    if len(errors) != 1:
        return None
    (error,) = errors
    if not _SETUP_ERROR.search(error):
        return None
    return (
        f"stopped after {len(runs)} trials: every job failed the same way before its parameters "
        f"could matter ({error}); fix the job (`sweepwise logs` shows its output) and run again"
    )


__all__ = ["LIMIT", "misconfiguration"]
