"""Reading what a job left in its run dir: its result, its status, the end of its log.

Readers only look at the ends of files (results and log tails), so their cost does not
grow with how much a job printed; a result over `max_result_bytes()` is rejected, not
read whole (docs/design.md, "Results and strict JSON").
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from sweepwise.core.jsonsafe import loads_bounded
from sweepwise.runtime import LOG, METRICS, METRICS_LINE_PREFIX, RESULT, RESULT_LINE_PREFIX, job_file
from sweepwise.runtime.regular import StrPath, open_regular

_TAIL_BYTES = 64 * 1024
_RESULT_EXAMPLE = '{"score": 0.9}'
MAX_RESULT_ENV = "SWEEPWISE_MAX_RESULT_BYTES"
DEFAULT_MAX_RESULT_BYTES = 1_000_000

logger = logging.getLogger(__name__)
_warned: set[str] = set()


def max_result_bytes() -> int:
    """The largest result a job may report, in bytes: `$SWEEPWISE_MAX_RESULT_BYTES`, else 1 MB."""
    text = os.environ.get(MAX_RESULT_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_RESULT_BYTES
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit <= 0:
        if text not in _warned:
            _warned.add(text)
            logger.warning(
                "%s=%r is not a positive number of bytes; using %d",
                MAX_RESULT_ENV,
                text,
                DEFAULT_MAX_RESULT_BYTES,
            )
        return DEFAULT_MAX_RESULT_BYTES
    return limit


def _size(n: int) -> str:
    """A byte count for people: `512 bytes`, `64 kB`, `200 MB`."""
    if n < 1000:
        return f"{n} bytes"
    if n < 1_000_000:
        return f"{n / 1000:.3g} kB"
    return f"{n / 1_000_000:.3g} MB"


def _too_large(where: str, size: int, limit: int) -> str:
    return (
        f"{where} is {_size(size)}, over the {_size(limit)} limit ({MAX_RESULT_ENV}); "
        "report a summary, not data"
    )


def _read_tail(path: StrPath, max_bytes: int) -> tuple[bytes, bool]:
    """The last `max_bytes` of `path` and whether that is the whole file."""
    with open_regular(path) as handle:
        size = handle.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        handle.seek(start)
        return handle.read(size - start), start == 0


def _text_lines(data: bytes, whole: bool) -> list[str]:
    """The lines of `data` without their endings; when it is not `whole`, its cut first line dropped."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    return [line.rstrip("\r") for line in (lines if whole else lines[1:])]


def _tail_text_lines(path: StrPath, max_bytes: int = _TAIL_BYTES) -> list[str]:
    """Complete lines in the last `max_bytes` of `path` (a cut first line is dropped)."""
    try:
        data, whole = _read_tail(path, max_bytes)
    except OSError:
        return []
    return _text_lines(data, whole)


def tail_lines(path: StrPath, n: int = 20) -> list[str]:
    """The last `n` lines of a text file, reading only its end.

    Args:
        path: the file (a missing file gives `[]`).
        n: how many lines.

    Returns:
        Up to `n` lines without their line endings; a final empty line is not counted.
    """
    if n <= 0:
        return []
    try:
        handle = open_regular(path)
    except OSError:
        return []
    with handle:
        end = handle.seek(0, os.SEEK_END)
        pos, data = end, b""
        while pos > 0 and data.count(b"\n") <= n:
            step = min(8192, pos)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + data
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if pos > 0:
        lines = lines[1:]
    return [line.rstrip("\r") for line in lines[-n:]]


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _json_error(exc: json.JSONDecodeError) -> str:
    return f"line {exc.lineno} column {exc.colno}: {exc.msg}"


def _parse_object(text: str, where: str, how: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = loads_bounded(text)
    except json.JSONDecodeError as exc:
        return None, f"{where} is not valid JSON ({_json_error(exc)}); {how}"
    except ValueError as exc:  # nested too deep, or an integer too long to read
        return None, f"{where} {exc}; {how}"
    if not isinstance(value, dict):
        kind = _JSON_TYPES.get(type(value), "null")
        return None, f"{where} holds {kind}, not a JSON object of metrics; {how}"
    return value, None


def _from_result_file(path: StrPath, job_name: str) -> tuple[dict[str, Any] | None, str | None]:
    how = f"write one JSON object, e.g. {_RESULT_EXAMPLE}"
    where = f"{job_name}.{RESULT}"
    limit = max_result_bytes()
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            data = b"" if size > limit else handle.read(limit + 1)  # it may grow as we read
            if size > limit or len(data) > limit:
                return None, _too_large(where, max(size, len(data)), limit)
            text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"{where} is not UTF-8 text; {how}"
    except OSError as exc:
        return None, f"{where} cannot be read ({exc.strerror}); {how}"
    return _parse_object(text, where, how)


def _from_log(path: StrPath, job_name: str) -> tuple[dict[str, Any] | None, str | None] | None:
    """The result of the log's last `SWEEPWISE_RESULT` line, read from its end.

    The last 64 KiB first; when they hold no result and start inside a line, as much as holds
    any result line within the size limit whole. A line cut even then is looked at only at its
    start, to say it is too large.
    """
    limit = max_result_bytes()
    for size in dict.fromkeys((_TAIL_BYTES, max(_TAIL_BYTES, limit + len(RESULT_LINE_PREFIX) + 2))):
        try:
            data, whole = _read_tail(path, size)
        except OSError:
            return None
        found = result_from_lines(_text_lines(data, whole), job_name)
        if found is not None or whole:
            return found
    cut = data.find(b"\n")
    length = _cut_result_line(path, len(data), cut if cut >= 0 else len(data))
    if length is None:
        return None
    where = f"the last {RESULT_LINE_PREFIX.strip()} line of {job_name}.{LOG}"
    return None, _too_large(where, length, limit)


_LINE_SEARCH_BYTES = 64 * 1024 * 1024  # how far back the start of a cut line is looked for


def _cut_result_line(path: StrPath, tail: int, seen: int) -> int | None:
    """The size of the result line the last `tail` bytes of `path` start inside, whose last
    `seen` bytes they hold; None when that line is not a result line (or its start is too far back)."""
    with open_regular(path) as handle:
        end = handle.seek(0, os.SEEK_END) - tail  # where the cut line's read part starts
        position = end
        while position > 0 and end - position < _LINE_SEARCH_BYTES:
            step = min(_TAIL_BYTES, position)
            handle.seek(position - step)
            chunk = handle.read(step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                position = position - step + newline + 1
                break
            position -= step
        else:
            if position > 0:
                return None
        handle.seek(position)
        if handle.read(len(RESULT_LINE_PREFIX)) != RESULT_LINE_PREFIX.encode():
            return None
    return end - position + seen - len(RESULT_LINE_PREFIX)


def result_from_lines(lines: list[str], job_name: str) -> tuple[dict[str, Any] | None, str | None] | None:
    """The result in the last `SWEEPWISE_RESULT {json}` line of a job's output, if it has one.

    Args:
        lines: the end of the job's log, one line per item, without line endings.
        job_name: `train` or `eval` (`train.2`...), named in the reason a result is rejected.

    Returns:
        None when no line starts with the prefix; else `(result, error)` as `read_job_result`.
    """
    for line in reversed(lines):
        if line.startswith(RESULT_LINE_PREFIX):
            how = f"print one JSON object on one line, e.g. {RESULT_LINE_PREFIX}{_RESULT_EXAMPLE}"
            where = f"the last {RESULT_LINE_PREFIX.strip()} line of {job_name}.{LOG}"
            text = line[len(RESULT_LINE_PREFIX) :]
            size, limit = len(text.encode()), max_result_bytes()
            if size > limit:
                return None, _too_large(where, size, limit)
            return _parse_object(text, where, how)
    return None


def metrics_from_lines(lines: list[str]) -> list[dict[str, Any]]:
    """The metrics rows of the well-formed `SWEEPWISE_METRICS {json}` lines of a remote job's log, in order.

    Args:
        lines: the end of the job's log, one line per item, without line endings.

    Returns:
        The rows (JSON objects, each at most the result size limit); a line cut or mangled
        in transit is left out.
    """
    rows = []
    for line in lines:
        if line.startswith(METRICS_LINE_PREFIX):
            row = _metrics_row(line[len(METRICS_LINE_PREFIX) :].encode())
            if row is not None:
                rows.append(row)
    return rows


def _from_metrics(path: StrPath, job_name: str) -> tuple[dict[str, Any] | None, str | None]:
    row, size = _last_metrics_row(path)
    if row is None:
        return None, None
    limit = max_result_bytes()
    if size > limit:
        return None, _too_large(f"the last row of {job_name}.{METRICS}", size, limit)
    metrics = {key: value for key, value in row.items() if key not in ("step", "time")}
    return metrics or None, None


def last_metrics_row(path: StrPath) -> dict[str, Any] | None:
    """The last complete, valid JSON-object row of a metrics file, or None."""
    return _last_metrics_row(path)[0]


def _last_metrics_row(path: StrPath) -> tuple[dict[str, Any] | None, int]:
    """`last_metrics_row` and the size of its line in bytes."""
    for line in reversed(_tail_text_lines(path)):
        if not line.strip():
            continue
        try:
            row = loads_bounded(line)
        except ValueError:
            continue  # a line being written right now, or garbage
        if isinstance(row, dict):
            return row, len(line.encode())
    return None, 0


def read_new_metrics(path: StrPath, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The rows appended to a metrics file since byte `offset`, oldest first.

    Every row counts for early stopping: a stopper records a run's value at the first report
    at or past each rung, which may be any of them (docs/optimizers.md, "Early stopping").
    Reads only the new bytes (at most the last 64 KiB of them: older rows of a job that
    reported faster than that between two reads are skipped); a line still being written
    is left for the next call.

    Args:
        path: the metrics file.
        offset: where the previous call stopped (0 at first).

    Returns:
        `(rows, new offset)`; the offset restarts at 0 if the file shrank.
    """
    try:
        size = os.stat(path).st_size
    except OSError:
        return [], offset
    if size < offset:  # rewritten from scratch
        offset = 0
    if size == offset:
        return [], offset
    start = max(offset, size - _TAIL_BYTES)
    with open_regular(path) as handle:
        handle.seek(start)
        data = handle.read(size - start)
    end = data.rfind(b"\n")
    skipped = start > offset  # the first line may be cut
    if end < 0:
        return [], start if skipped else offset
    lines = data[: end + 1].split(b"\n")[1 if skipped else 0 :]
    return [row for line in lines if (row := _metrics_row(line)) is not None], start + end + 1


def _metrics_row(line: bytes | str) -> dict[str, Any] | None:
    """One reported row: a JSON object of at most the result size limit, else None."""
    if len(line) > max_result_bytes():
        return None  # a row over the result limit is data, not progress
    try:
        row = loads_bounded(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def last_output(log: StrPath, max_chars: int = 500) -> str | None:
    """The last non-empty line of a job's log (shortened to `max_chars`), or None."""
    for line in reversed(tail_lines(log, 20)):
        text = line.strip()
        if text:
            return text if len(text) <= max_chars else text[: max_chars - 3] + "..."
    return None


def read_job_result(
    run_dir: StrPath, job_name: str, *, rows: bool = True
) -> tuple[dict[str, Any] | None, str | None]:
    """The result a job reported, and why it was rejected if it was.

    Precedence: `<job>.result.json` (`report_result` or a renamed `result.json`); else
    the last `SWEEPWISE_RESULT {json}` line in the end of `<job>.log` (its last 64 KiB, or
    the size limit and the prefix if more); else
    the last row of `<job>.metrics.jsonl` without its `step` / `time`. A result over
    `max_result_bytes()` is rejected; at most that many bytes (plus one) are read.

    Args:
        run_dir: the run directory.
        job_name: `train` or `eval`.
        rows: whether the last metrics row counts. It does for a job seen to exit 0; not for
            one whose exit nobody saw, which may have been killed mid-training with a row of
            its progress on disk (docs/design.md, "Liveness from evidence").

    Returns:
        `(result, error)`: `(dict, None)` for a result; `(None, "one-line reason")`
        when the job gave a result that is not a JSON object or is too large; `(None, None)` when it
        gave none.
    """
    result_path = job_file(run_dir, job_name, RESULT)
    if os.path.exists(result_path):
        return _from_result_file(result_path, job_name)
    found = _from_log(job_file(run_dir, job_name, LOG), job_name)
    if found is not None:
        return found
    if not rows:
        return None, None
    return _from_metrics(job_file(run_dir, job_name, METRICS), job_name)


def read_job_result_file(path: StrPath, job_name: str) -> tuple[dict[str, Any] | None, str | None]:
    """The result in a `result.json` the job wrote (`(result, error)` as `read_job_result`)."""
    return _from_result_file(path, job_name)


def read_status(path: StrPath) -> dict[str, Any] | None:
    """A status file's contents; None if it is missing, unreadable or not a JSON object."""
    try:
        with open_regular(path) as handle:
            value = loads_bounded(handle.read())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


__all__ = [
    "DEFAULT_MAX_RESULT_BYTES",
    "MAX_RESULT_ENV",
    "last_metrics_row",
    "last_output",
    "max_result_bytes",
    "metrics_from_lines",
    "read_job_result",
    "read_job_result_file",
    "read_new_metrics",
    "read_status",
    "result_from_lines",
    "tail_lines",
]
