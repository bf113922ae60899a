"""Rich output for the CLI: the live table while a sweep runs, and the status/best tables."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from sweepwise.app.views import best_row, best_run, run_row
from sweepwise.core.runs import FINISHED
from sweepwise.core.status import JobStatus

if TYPE_CHECKING:
    from sweepwise.app.experiment import Experiment
    from sweepwise.core.models import RunInfo
    from sweepwise.engine.controller import AdaptiveController, TickReport

logger = logging.getLogger(__name__)

_UNBOUNDED = 100_000
"""A width no table reaches: piped, a table is as wide as its own rows."""

_STYLES = {
    JobStatus.COMPLETED.key: "green",
    JobStatus.FAILED.key: "red",
    JobStatus.STALE.key: "red",
    JobStatus.CANCELLED.key: "yellow",
    JobStatus.STOPPED.key: "blue",
    JobStatus.IN_TRAINING.key: "cyan",
    JobStatus.IN_EVAL.key: "magenta",
}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return printable(str(value))


def printable(text: str) -> str:
    """`text` with each control character shown as its escape (`\\x1b`): a job's output or a
    value it reported never moves the cursor, clears the screen or retitles the terminal."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


# How a status reads in a table, where it differs from its label; JSON keeps key and label.
_LABELS = {JobStatus.TRAINING_DONE_NO_EVAL.key: "TRAINED (eval queued)"}


def _label(key: str) -> str:
    """The human label of the status whose machine name is `key` (`key` itself if none is)."""
    try:
        return JobStatus.from_key(key).label
    except ValueError:
        return key


def _counts_line(counts: dict[str, int]) -> str:
    """`3 completed, 1 in training`: the nonzero counts, labels in lower case."""
    return ", ".join(f"{n} {_label(key).lower()}" for key, n in counts.items() if n)


def _status_cell(row: dict[str, Any]) -> str:
    """The run's status, with its attempt once a job of it has been run again, and the step
    it was stopped at."""
    attempt = row.get("attempt", 1)
    key = str(row["status"])
    label = _LABELS.get(key, row.get("status_label") or _label(key))
    stopped_at = row.get("stopped_at")
    if key == JobStatus.STOPPED.key and isinstance(stopped_at, dict) and stopped_at.get("step") is not None:
        label = f"{label} at step {stopped_at['step']}"
    return f"{label} (attempt {attempt})" if attempt and attempt > 1 else label


def _runs_table(rows: list[dict[str, Any]], title: str | None = None, *, width: int = _UNBOUNDED) -> Table:
    """`status`'s table for a console `width` wide: run ids, statuses and numbers whole on one
    line (a word cut in two reads as two: `COMPLETE` `D`); the parameters wrap between
    parameters. Below 100 columns the progress column is left out, as in the live view."""
    wide = width >= 100
    heading = Text(printable(title)) if title is not None else None
    table = (
        Table(title=heading, expand=False)
        if wide
        else Table(title=heading, box=box.SIMPLE_HEAD, expand=False, padding=(0, 1), pad_edge=False)
    )
    table.add_column("run", no_wrap=True)  # a run id split over two lines cannot be copied
    for column in ("status", *(["progress"] if wide else []), "score", "cost"):
        table.add_column(column, no_wrap=True)
    table.add_column("parameters", overflow="fold", min_width=12)
    for row in rows:
        params = (", " if wide else " ").join(f"{k}={_fmt(v)}" for k, v in sorted(row["suggestion"].items()))
        progress = row.get("progress")
        table.add_row(
            Text(printable(row["run_id"])),
            Text(_status_cell(row), style=_STYLES.get(row["status"], "")),
            *([f"{progress:.0%}" if isinstance(progress, int | float) else "-"] if wide else []),
            _fmt(row["score"]),
            _fmt(row["cost"]),
            Text(params or "-"),
        )
    return table


_FRAME_LINES = 6
"""Lines of the live view that are not run rows: title, header, rule, progress line, a spare."""


def _live_table(rows: list[dict[str, Any]], title: str, width: int) -> Table:
    """The live view's table: one line per run whatever the width. Run ids are never cut (they
    are copied into other commands); the parameters take what room is left, cut short with an
    ellipsis, each by its last name part."""
    wide = width >= 100
    cells = []
    for row in rows:
        progress = row.get("progress")
        cells.append(
            [
                row["run_id"],
                _status_cell(row),
                *([f"{progress:.0%}" if isinstance(progress, int | float) else "-"] if wide else []),
                _fmt(row["score"]),
                _fmt(row["cost"]),
            ]
        )
    names = ["run", "status", *(["progress"] if wide else []), "score", "cost"]
    widths = [max([len(name), *(len(str(c[k])) for c in cells)]) for k, name in enumerate(names)]
    room = max(10, width - sum(widths) - 2 * len(names) - 2)  # the edges and gaps take 2 each
    table = Table(title=Text(title), box=box.SIMPLE_HEAD, expand=False, padding=(0, 1), pad_edge=False)
    for name, size in zip(names, widths, strict=True):
        table.add_column(name, no_wrap=True, min_width=size, max_width=size)
    table.add_column("parameters", no_wrap=True, overflow="ellipsis", max_width=room)
    for row, cell in zip(rows, cells, strict=True):
        params = " ".join(f"{k.rsplit('.', 1)[-1]}={_fmt(v)}" for k, v in sorted(row["suggestion"].items()))
        if len(params) > room:
            params = params[: room - 1] + "…"
        status = Text(cell[1], style=_STYLES.get(row["status"], ""))
        table.add_row(Text(printable(cell[0])), status, *cell[2:], Text(params or "-"))
    return table


def _event_line(row: dict[str, Any], finished: int, total: int) -> str:
    """One line of piped output: a run that changed status, with the sweep's progress."""
    parts = [row["run_id"], _status_cell(row)]
    if row["score"] is not None:
        parts.append(f"score={_fmt(row['score'])}")
    if row["status"] in (JobStatus.FAILED.key, JobStatus.STALE.key) and row["error"]:
        parts.append(printable(str(row["error"])))
    return f"{' '.join(parts)} ({finished}/{total} trials finished)"


class LiveDisplay:
    """The live view of a running sweep (no background thread: refreshed from the tick).

    On a terminal: the progress line on top, then the running runs and the newest finished
    ones, as many as the terminal's height allows, one line each. Piped: one line per run
    that changes status.
    """

    def __init__(
        self, experiment: Experiment, *, enabled: bool = True, console: Console | None = None
    ) -> None:
        self.experiment = experiment
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.max_trials = int(getattr(experiment.scheduler_config, "max_trials", 0) or 0)
        self._live: Live | None = None
        self._last = 0.0
        self._said: dict[str, str] = {}  # piped: the status last printed for each run
        self._finished_seen: int | None = None  # piped: finished runs already looked at

    def __enter__(self) -> LiveDisplay:
        if self.enabled and self.console.is_terminal:
            self._live = Live(
                console=self.console, auto_refresh=False, transient=False, vertical_overflow="crop"
            )
            self._live.__enter__()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        live, self._live = self._live, None
        if live is None:
            return
        try:
            live.__exit__(None, None, None)
        except Exception as failure:  # stderr on a full disk, say
            if exc is None:
                raise
            logger.debug("could not close the live display: %s", failure)  # keep `exc` the one reported

    def update(self, controller: AdaptiveController, report: TickReport) -> None:
        """Redraw at most a few times a second, and always on the last tick."""
        if not self.enabled:
            return
        if self._live is None:
            self._print_events(controller)
            return
        now = time.monotonic()
        if now - self._last < 0.25 and not report.complete:
            return
        self._last = now
        runs = controller.runs
        active = controller.active_runs
        finished = runs.how_many(*FINISHED)
        total = max(self.max_trials, len(runs), 1)
        width, height = self.console.size
        room = max(1, height - _FRAME_LINES)
        recent = list(reversed(runs.recently_finished(max(0, room - len(active)))))
        # running runs first (newest first), then pending ones, then the newest finished
        waiting = [run for run in active if run.status is JobStatus.PENDING]
        running = [run for run in active if run.status is not JobStatus.PENDING]
        running.sort(key=lambda run: run.run_id, reverse=True)  # trial numbers grow: newest first
        shown = (running + waiting + recent)[:room]
        text = f"{finished}/{total} trials finished, {len(running)} running"
        if waiting:
            text += f", {len(waiting)} pending"
        if len(active) > room:
            text += f" ({len(active) - room} not shown)"
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=total, completed=finished, width=max(10, min(40, width - len(text) - 2))),
            Text(text, no_wrap=True, overflow="ellipsis"),
        )
        table = _live_table([run_row(run) for run in shown], f"sweepwise · {self.experiment.name}", width)
        self._live.update(Group(bar, table), refresh=True)

    def _print_events(self, controller: AdaptiveController) -> None:
        """Piped output: a line for each run whose status changed since the last tick (runs
        that had finished before this process started are not repeated)."""
        runs = controller.runs
        finished = runs.how_many(*FINISHED)
        if self._finished_seen is None:
            self._finished_seen = finished
        fresh = runs.recently_finished(finished - self._finished_seen)
        self._finished_seen = finished
        candidates = controller.active_runs + fresh
        changed = [run for run in candidates if self._said.get(run.run_id) != run.status.key]
        if not changed:
            return
        total = max(self.max_trials, len(runs), 1)
        for run in sorted(changed, key=lambda run: run.run_id):
            self._said[run.run_id] = run.status.key
            if run.status is JobStatus.PENDING:
                continue
            line = _event_line(run_row(run), finished, total)
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def print_summary(self, runs: Sequence[RunInfo]) -> None:
        """The closing lines: counts and the best trial (always printed, to stdout)."""
        out = Console()
        spec = self.experiment.spec
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.status.value] = counts.get(run.status.value, 0) + 1
        out.print(
            f"experiment {spec.name}: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())),
            markup=False,
        )
        best = best_run(runs, spec.goal)
        if best is None:
            out.print("no completed trial with a score")
            return
        print_best({"experiment": spec.name, **best_row(best, spec.metric, spec.goal)}, out)


def print_status(payload: dict[str, Any], *, limit: int | None = 30) -> None:
    """`status EXPERIMENT` as a table: the newest `limit` runs (all when None), then the failures."""
    runs = payload["runs"]
    shown = runs if limit is None or len(runs) <= limit else runs[-limit:]
    title = f"{payload['experiment']} ({payload['status']})"
    if len(shown) < len(runs):
        title += f" — newest {len(shown)} of {len(runs)} runs (--all for every run)"
    console = Console()
    if console.is_terminal or os.environ.get("COLUMNS"):
        table = _runs_table(shown, title=title, width=console.width)
    else:  # piped: one line per run, for grep and files (the table takes its own width)
        table = _runs_table(shown, title=title)
        console = Console(width=_UNBOUNDED)
    console.print(table)
    console.print(_counts_line(payload["counts"]) or "no runs yet")
    failed = [row for row in runs if row["error"]]
    for row in failed if limit is None else failed[-limit:]:
        console.print(
            Text.assemble((printable(row["run_id"]), "red"), f": {printable(row['error'])}"), soft_wrap=True
        )
    for mirror in payload.get("mirrors", []):
        console.print(mirror_line(mirror), markup=False, highlight=False)


def mirror_line(mirror: dict[str, Any]) -> str:
    """One mirror in one line: its target, how many runs it is behind, its last error."""
    behind = mirror["runs_behind"]
    lag = "up to date" if behind == 0 else f"{behind} run{'s' if behind != 1 else ''} not yet mirrored"
    error = f"; last error: {mirror['last_error']}" if mirror.get("last_error") else ""
    return f"mirror {mirror['target']}: {lag}{error}"


def print_experiments(rows: list[dict[str, Any]]) -> None:
    """`sweepwise status` (no experiment) as a table."""
    table = Table(title="experiments")
    for column in ("experiment", "status", "runs"):
        table.add_column(column)
    for row in rows:
        table.add_row(Text(printable(row["experiment"])), row["status"], _counts_line(row["counts"]) or "-")
    Console().print(table)


def print_best(row: dict[str, Any], console: Console | None = None) -> None:
    """The best run and its parameters."""
    console = console or Console()
    console.print(
        Text.assemble(
            "best trial: ",
            (printable(row["run_id"]), "bold"),
            f"  {row['metric']}={_fmt(row['score'])} ({row['goal']})  cost={_fmt(row['cost'])}",
        )
    )
    for key, value in sorted(row["parameters"].items()):
        console.print(f"  {key} = {printable(str(value))}", markup=False)


__all__ = ["LiveDisplay", "mirror_line", "print_best", "print_experiments", "print_status"]
