"""What the run page shows: parameters, summary, the timeline of its jobs, their log tails and curves.

The run comes from the store's read path (`fetch_runs`, `fetch_job_events`); the job files
the dispatcher left in the run directory (`<job>.dispatch.json`, `<job>.status.json`,
`<job>.metrics.jsonl`; docs/design.md) add when a job was dispatched and its last heartbeat.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sweepwise.app.job_logs import job_log, run_directory
from sweepwise.app.views import RunReader, experiment_record, run_row
from sweepwise.core import keys
from sweepwise.core.errors import SweepwiseError
from sweepwise.core.jsonsafe import loads_bounded
from sweepwise.core.models import JobTypes, RunInfo
from sweepwise.runtime import job_stem
from sweepwise.runtime.regular import open_regular

LOG_TAIL_LINES = 200
_STAGES = ((JobTypes.LAUNCH_TRAINING, "train"), (JobTypes.LAUNCH_EVAL, "eval"))


def when(value: Any) -> dt.datetime | None:
    """A timestamp (epoch seconds, ISO text or a datetime) as an aware UTC datetime, or None."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    if isinstance(value, str):
        try:
            return when(dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open_regular(path) as handle:
            value = loads_bounded(handle.read())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _stages(run: RunInfo) -> Iterator[tuple[JobTypes, str, int]]:
    """The run's stages that have started: (job type, short name, current attempt)."""
    for job_type, short in _STAGES:
        started = run.has_started_training if short == "train" else run.has_started_eval
        if started or run.attempt(job_type) > 1:
            yield job_type, short, run.attempt(job_type)


def timeline(record: Any, run: RunInfo, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every dated thing that happened to the run, oldest first: `{at, job, attempt, what}`."""
    entries: list[dict[str, Any]] = []

    def add(at: Any, job: str, attempt: int | None, what: str) -> None:
        moment = when(at)
        if moment is not None:
            entries.append({"at": moment, "job": job, "attempt": attempt, "what": what})

    add(run.created_at, "run", None, "created (suggestion recorded)")
    directory = run_directory(record, run.run_id)
    for _, short, attempts in _stages(run):
        for attempt in range(1, attempts + 1):
            stem = job_stem(short, attempt)
            dispatch = _read_json(directory / f"{stem}.dispatch.json")
            add(dispatch.get("claimed_at"), short, attempt, "dispatched")
            status = _read_json(directory / f"{stem}.status.json")
            add(status.get("started_at"), short, attempt, "started")
            if status.get("heartbeat_at") != status.get("started_at"):
                add(status.get("heartbeat_at"), short, attempt, "last heartbeat")
            if status.get("ended_at") is not None:
                how = (
                    "cancelled"
                    if status.get("cancelled")
                    else "timed out"
                    if status.get("timed_out")
                    else "ended"
                )
                add(status["ended_at"], short, attempt, f"{how}, exit code {status.get('exit_code')}")
    for event in events:
        short = JobTypes(event["job_type"]).short if event.get("job_type") else "run"
        code = f", exit code {event['exit_code']}" if event.get("exit_code") is not None else ""
        add(event.get("at"), short, None, f"recorded by the controller: {event.get('kind')}{code}")
    for entry in run.summary.get(keys.ATTEMPTS) or []:
        if isinstance(entry, dict):
            reason = entry.get("reason") or "unsuccessful"
            error = f": {entry['error']}" if entry.get("error") else ""
            add(
                entry.get("at"),
                str(entry.get("job", "")),
                entry.get("attempt"),
                f"attempt {reason}{error}, retried",
            )
    add(run.summary.get(keys.POST_TRAINING_PROCESSED_AT), "hook", None, "post-training hook ran")
    add(run.summary.get(keys.POST_EVAL_PROCESSED_AT), "hook", None, "post-eval hook ran (score recorded)")
    stop = run.summary.get(keys.STOP)
    if isinstance(stop, dict):
        add(stop.get("at"), "train", None, f"stopped early at step {stop.get('step')} ({stop.get('value')})")
    entries.sort(key=lambda entry: entry["at"])
    return entries


def job_bars(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A plotly figure with one bar per job attempt, from its start to its end (or its last sign of life)."""
    spans: dict[tuple[str, int], list[dt.datetime]] = {}
    for entry in entries:
        if entry["job"] in ("train", "eval") and entry["attempt"] is not None:
            spans.setdefault((entry["job"], entry["attempt"]), []).append(entry["at"])
    names = [f"{job} #{attempt}" for job, attempt in spans]
    starts = [min(times) for times in spans.values()]
    lengths = [(max(times) - min(times)).total_seconds() * 1000 for times in spans.values()]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": "job",
                "y": names,
                "x": lengths,
                "base": [start.isoformat() for start in starts],
            }
        ],
        "layout": {
            "title": {"text": "Jobs"},
            "height": 120 + 40 * len(names),
            "margin": {"l": 80, "r": 20, "t": 40, "b": 40},
            "xaxis": {"type": "date"},
            "yaxis": {"autorange": "reversed"},
        },
    }


CURVE_POINTS = 2000
"""At most this many points per curve: a job reporting every step of a long training leaves
millions of rows, which would make the run page (and `sweepwise report`'s file) enormous."""


class _Curve:
    """One metric's points against step, thinned as they come: every `stride`-th value is kept,
    the stride doubling (and every other kept point dropped) whenever `CURVE_POINTS` is passed;
    the last value is always kept, so a curve ends where its job's reports end."""

    __slots__ = ("last", "points", "seen", "stride")

    def __init__(self) -> None:
        self.points: list[tuple[Any, Any]] = []
        self.stride, self.seen = 1, 0
        self.last: tuple[Any, Any] | None = None

    def add(self, x: Any, y: Any) -> None:
        self.last = (x, y)
        if self.seen % self.stride == 0:
            self.points.append(self.last)
            if len(self.points) > CURVE_POINTS:
                self.points, self.stride = self.points[::2], self.stride * 2
        self.seen += 1

    def xy(self) -> tuple[list[Any], list[Any]]:
        points = self.points
        if self.last is not None and points[-1] is not self.last:
            points = [*points, self.last]
        return [x for x, _ in points], [y for _, y in points]


def metric_curves(record: Any, run: RunInfo) -> dict[str, Any] | None:
    """What the run's jobs reported with `sweepwise.report`: a line per metric against step, or None.

    The metrics file is read a line at a time and each curve thinned to about `CURVE_POINTS`
    points (docs/dashboard.md), so a file of millions of rows is never held whole.
    """
    directory = run_directory(record, run.run_id)
    traces = []
    for _, short, attempt in _stages(run):
        path = directory / f"{job_stem(short, attempt)}.metrics.jsonl"
        curves: dict[str, _Curve] = {}
        try:
            with io.TextIOWrapper(open_regular(path), encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    try:
                        row = loads_bounded(line)
                    except ValueError:
                        continue
                    if not isinstance(row, dict):
                        continue
                    for name, value in row.items():
                        number = isinstance(value, int | float) and not isinstance(value, bool)
                        if number and name not in ("step", "time"):
                            curve = curves.get(name) or curves.setdefault(name, _Curve())
                            curve.add(row.get("step", curve.seen), value)
        except OSError:
            continue
        for name, curve in curves.items():
            x, y = curve.xy()
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": html.escape(f"{short}: {name}"),  # plotly reads a few HTML tags in names
                    "x": x,
                    "y": y,
                }
            )
    if not traces:
        return None
    return {
        "data": traces,
        "layout": {
            "title": {"text": "Reported metrics"},
            "height": 360,
            "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
            "xaxis": {"title": {"text": "step"}},
        },
    }


def log_tails(record: Any, run: RunInfo, lines: int = LOG_TAIL_LINES) -> list[dict[str, Any]]:
    """The last `lines` lines of each started job's log (its current attempt's), or why there is none."""
    tails = []
    for job_type, short, attempt in _stages(run):
        try:
            text = job_log(record, run.run_id, job_type, attempt)
            tail, note = text.splitlines()[-lines:], ""
        except SweepwiseError as exc:
            tail, note = [], str(exc)
        tails.append({"job": short, "attempt": attempt, "lines": tail, "note": note})
    return tails


def run_view(reader: RunReader, run_id: str) -> dict[str, Any]:
    """Everything the run page shows.

    Raises:
        SweepwiseError: there is no run `run_id`, or its experiment is gone.
    """
    found = reader.fetch_runs({"run_id": run_id})
    if not found:
        raise SweepwiseError(
            f"no run {run_id!r} in {reader.url}; see the experiment's runs table for run ids"
        )
    run = found[0]
    record = experiment_record(reader, run.group or "")
    fetch_events = getattr(reader, "fetch_job_events", None)
    events = fetch_events(run_id) if fetch_events is not None else []
    entries = timeline(record, run, events)
    summary = {key: value for key, value in run.summary.items() if key != keys.OBSERVATION_SUGGESTION}
    return {
        "experiment": record.name,
        "row": run_row(run),
        "parameters": run.suggestion,
        "summary": summary,
        "timeline": entries,
        "logs": log_tails(record, run),
        "figures": {
            "plot-jobs": job_bars(entries),
            **({"plot-curves": curves} if (curves := metric_curves(record, run)) is not None else {}),
        },
    }


__all__ = [
    "CURVE_POINTS",
    "LOG_TAIL_LINES",
    "job_bars",
    "log_tails",
    "metric_curves",
    "run_view",
    "timeline",
    "when",
]
