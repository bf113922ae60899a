"""The report client, imported inside user jobs: `sweepwise.report(...)`, `sweepwise.report_result(...)`.

Standard library only, and cheap to import. Outside sweepwise (no `SWEEPWISE_*`
variables) both calls do nothing and warn once, so a training script runs unchanged
on its own.
"""

from __future__ import annotations

import errno
import json
import math
import os
import time
import warnings

TYPE_CHECKING = False  # not `from typing import ...`: typing costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import Any

_warned = False
_torn = False  # the last row was cut short (a full disk): the next one starts on a new line


def _to_json(value: Any) -> Any:
    """Make numpy / torch scalars and other odd values serialisable."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return str(value)


def _safe(value: Any) -> Any:
    """`value` with NaN and infinities as strings, as the store keeps them (docs/design.md)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(item) for item in value]
    return value


def _dumps(value: Any, **options: Any) -> str:
    """Strict JSON (no bare `NaN`), which any reader of the job's files can parse."""
    try:
        return json.dumps(value, default=_to_json, allow_nan=False, **options)
    except ValueError:
        safe = _safe(value)
        return json.dumps(safe, default=lambda item: _safe(_to_json(item)), allow_nan=False, **options)


def _target(variable: str, file_name: str) -> str | None:
    path = os.environ.get(variable)
    if path:
        return path
    run_dir = os.environ.get("SWEEPWISE_RUN_DIR")
    if run_dir:
        return os.path.join(run_dir, file_name)
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "sweepwise.report: not running under sweepwise (no SWEEPWISE_RUN_DIR); metrics are dropped",
            stacklevel=3,
        )
    return None


def report(step: int | None = None, **metrics: Any) -> None:
    """Append one row of metrics to the job's metrics file (`$SWEEPWISE_METRICS_FILE`).

    Each call writes one JSON line `{"step": step, "time": <epoch seconds>, **metrics}`;
    the dispatcher passes every row on as it reads them (a stopper judges each), and the
    last row is the job's result when it reports no other.

    Args:
        step: the training step (or epoch) the metrics belong to; a stopper judges whole
            steps only (5.0 is written as 5).
        **metrics: metric names and JSON-serialisable values (numpy scalars are fine;
            NaN and infinities are written as the strings "NaN", "Infinity", "-Infinity").

    Raises:
        OSError: the row could not be written whole (a full disk).
        ValueError: a metric is named `time`, which is the row's timestamp.
    """
    if "time" in metrics:
        raise ValueError(
            "report(time=...): 'time' is each row's timestamp, which report writes itself; "
            "give the metric another name, e.g. report(step=..., time_s=...)"
        )
    path = _target("SWEEPWISE_METRICS_FILE", "metrics.jsonl")
    if path is None:
        return
    if isinstance(step, float) and step.is_integer():
        step = int(step)  # an epoch counted in floats (5.0) is step 5, which a stopper can judge
    row = {"step": step, "time": time.time(), **metrics}
    _append(path, (_dumps(row, separators=(",", ":")) + "\n").encode())


def _append(path: str, line: bytes) -> None:
    """Append one row whole, or raise `OSError` (a full disk): never a stale last row.

    The last row may be the job's result, so a row that cannot be written is an error, not
    a row quietly lost. A row a full disk cut short is ended by the next row's leading
    newline, so a job that catches the error and goes on writes its next row whole, and
    readers pass over the cut one (docs/design.md, "A full disk").
    """
    global _torn
    data = b"\n" + line if _torn else line
    # One write on an O_APPEND descriptor: concurrent writers never interleave a line.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        written = os.write(fd, data)
    finally:
        os.close(fd)
    _torn = written < len(data)
    if _torn:
        raise OSError(
            errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: only {written} of {len(data)} bytes of a row", path
        )


def report_result(**metrics: Any) -> None:
    """Write the job's final result (`$SWEEPWISE_RESULT_FILE`), replacing an earlier one.

    The file is written atomically, so a job killed mid-write leaves the previous
    result (or none), never half of one.

    Args:
        **metrics: the result's metric names and JSON-serialisable values,
            e.g. `report_result(score=0.9, cost=12.0)`.
    """
    path = _target("SWEEPWISE_RESULT_FILE", "result.json")
    if path is None:
        return
    import tempfile  # only here: it is not cheap, and most jobs never call this

    payload = _dumps(metrics, indent=1).encode()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".result.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


__all__ = ["report", "report_result"]
