"""`RunList`: all runs of an experiment, indexed by status, kept current tick by tick.

Schedulers take `runs: list[RunInfo]` (the seeds' signature). The controller passes
a `RunList`, a list that also knows which runs are in which status, so the questions
a scheduler asks every tick ("which runs are trained but not evaluated?", "how many
have finished?") cost the size of the answer, not the size of the experiment.
Schedulers ask through `with_status` / `count_status`, which fall back to a scan for
a plain list.
"""

from __future__ import annotations

from collections.abc import Iterable

from sweepwise.models import JobStatus, RunInfo

FINISHED = (JobStatus.COMPLETED, JobStatus.STALE, JobStatus.FAILED, JobStatus.CANCELLED)
UNFINISHED = tuple(status for status in JobStatus if status not in FINISHED)


class RunList(list[RunInfo]):
    """A list of runs in creation order, plus an index from status to runs."""

    def __init__(self, runs: Iterable[RunInfo] = ()) -> None:
        super().__init__()
        self._log: list[str] = []  # run ids in the order they changed
        self._position: dict[str, int] = {}
        self._by_status: dict[JobStatus, dict[str, RunInfo]] = {status: {} for status in JobStatus}
        for run in runs:
            self.upsert(run)

    def upsert(self, run: RunInfo) -> None:
        """Add a new run at the end, or replace the stored snapshot of a known one."""
        index = self._position.get(run.run_id)
        if index is None:
            self._position[run.run_id] = len(self)
            self.append(run)
        else:
            old = self[index]
            del self._by_status[old.status][old.run_id]
            self[index] = run
        self._by_status[run.status][run.run_id] = run
        self._log.append(run.run_id)

    @property
    def version(self) -> int:
        """Grows by one with every `upsert`."""
        return len(self._log)

    def changed_since(self, version: int) -> list[RunInfo]:
        """The current snapshot of every run changed after `version` (each once)."""
        ids = dict.fromkeys(self._log[version:])
        return [self[self._position[run_id]] for run_id in ids]

    def get(self, run_id: str) -> RunInfo | None:
        """The run with this id, or None."""
        index = self._position.get(run_id)
        return None if index is None else self[index]

    def in_status(self, *statuses: JobStatus) -> list[RunInfo]:
        """Runs in any of `statuses`, oldest first within each status."""
        out: list[RunInfo] = []
        for status in statuses:
            out.extend(self._by_status[status].values())
        return out

    def how_many(self, *statuses: JobStatus) -> int:
        """How many runs are in any of `statuses`."""
        return sum(len(self._by_status[status]) for status in statuses)


def with_status(runs: list[RunInfo], *statuses: JobStatus) -> list[RunInfo]:
    """Runs in any of `statuses` (indexed for a `RunList`, a scan otherwise)."""
    if isinstance(runs, RunList):
        return runs.in_status(*statuses)
    wanted = set(statuses)
    return [run for run in runs if run.status in wanted]


def changed_since(runs: list[RunInfo], version: int) -> tuple[list[RunInfo], int]:
    """Runs changed after `version` and the version to ask from next time.

    For a plain list (no change log) every run counts as changed.
    """
    if isinstance(runs, RunList):
        return runs.changed_since(version), runs.version
    return list(runs), 0


def count_status(runs: list[RunInfo], *statuses: JobStatus) -> int:
    """How many runs are in any of `statuses`."""
    if isinstance(runs, RunList):
        return runs.how_many(*statuses)
    wanted = set(statuses)
    return sum(1 for run in runs if run.status in wanted)


__all__ = ["FINISHED", "UNFINISHED", "RunList", "changed_since", "count_status", "with_status"]
