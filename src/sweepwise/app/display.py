"""Rich output for the CLI: the live table while a sweep runs, and the status/best tables."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    return str(value)


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
    """The run's status, with its attempt once a job of it has been run again."""
    attempt = row.get("attempt", 1)
    key = str(row["status"])
    label = _LABELS.get(key, row.get("status_label") or _label(key))
    return f"{label} (attempt {attempt})" if attempt and attempt > 1 else label


def _runs_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, expand=False)
    table.add_column("run", no_wrap=True)  # a run id split over two lines cannot be copied
    for column in ("status", "progress", "score", "cost", "parameters"):
        table.add_column(column, overflow="fold")
    for row in rows:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(row["suggestion"].items()))
        progress = row.get("progress")
        table.add_row(
            row["run_id"],
            Text(_status_cell(row), style=_STYLES.get(row["status"], "")),
            f"{progress:.0%}" if isinstance(progress, int | float) else "-",
            _fmt(row["score"]),
            _fmt(row["cost"]),
            params or "-",
        )
    return table


class LiveDisplay:
    """The live table of a running sweep (no background thread: refreshed from the tick)."""

    def __init__(
        self, experiment: Experiment, *, enabled: bool = True, console: Console | None = None
    ) -> None:
        self.experiment = experiment
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.max_trials = int(getattr(experiment.scheduler_config, "max_trials", 0) or 0)
        self._live: Live | None = None
        self._last = 0.0

    def __enter__(self) -> LiveDisplay:
        if self.enabled:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        live, self._live = self._live, None
        if live is None:
            return
        try:
            live.__exit__(None, None, None)
            if not self.console.is_terminal:
                self.console.line()  # the last frame ends without a newline off a terminal
        except Exception as failure:  # stderr on a full disk, say
            if exc is None:
                raise
            logger.debug("could not close the live display: %s", failure)  # keep `exc` the one reported

    def update(self, controller: AdaptiveController, report: TickReport) -> None:
        """Redraw at most a few times a second, and always on the last tick."""
        if self._live is None:
            return
        now = time.monotonic()
        if now - self._last < 0.25 and not report.complete:
            return
        self._last = now
        runs = controller.runs
        active = controller.active_runs
        finished = runs.how_many(*FINISHED)
        shown = active + runs.recently_finished(12 - len(active))
        total = max(self.max_trials, len(runs), 1)
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=total, completed=finished, width=40),
            Text(f"{finished}/{total} trials finished, {len(active)} running"),
        )
        table = _runs_table([run_row(run) for run in shown], title=f"sweepwise · {self.experiment.name}")
        self._live.update(Group(table, bar), refresh=True)

    def print_summary(self, runs: Sequence[RunInfo]) -> None:
        """The closing lines: counts and the best trial (always printed, to stdout)."""
        out = Console()
        spec = self.experiment.spec
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.status.value] = counts.get(run.status.value, 0) + 1
        out.print(
            f"experiment {spec.name}: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        )
        best = best_run(runs, spec.goal)
        if best is None:
            out.print("no completed trial with a score")
            return
        print_best({"experiment": spec.name, **best_row(best, spec.metric, spec.goal)}, out)


def print_status(payload: dict[str, Any], *, limit: int | None = 30) -> None:
    """`status EXPERIMENT` as a table: the newest `limit` runs (all when None), then the failures."""
    console = Console()
    runs = payload["runs"]
    shown = runs if limit is None or len(runs) <= limit else runs[-limit:]
    title = f"{payload['experiment']} ({payload['status']})"
    if len(shown) < len(runs):
        title += f" — newest {len(shown)} of {len(runs)} runs (--all for every run)"
    console.print(_runs_table(shown, title=title))
    console.print(_counts_line(payload["counts"]) or "no runs yet")
    failed = [row for row in runs if row["error"]]
    for row in failed if limit is None else failed[-limit:]:
        console.print(f"[red]{row['run_id']}[/red]: {row['error']}")
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
        table.add_row(row["experiment"], row["status"], _counts_line(row["counts"]) or "-")
    Console().print(table)


def print_best(row: dict[str, Any], console: Console | None = None) -> None:
    """The best run and its parameters."""
    console = console or Console()
    console.print(
        f"best trial: [bold]{row['run_id']}[/bold]  {row['metric']}={_fmt(row['score'])}"
        f" ({row['goal']})  cost={_fmt(row['cost'])}"
    )
    for key, value in sorted(row["parameters"].items()):
        console.print(f"  {key} = {value}")


__all__ = ["LiveDisplay", "mirror_line", "print_best", "print_experiments", "print_status"]
