"""`RunList`: all runs of an experiment, indexed by status, kept current tick by tick.

Schedulers take `runs: Sequence[RunInfo]` (the seeds' `list[RunInfo]`, read-only). The
controller passes a `RunList`, a read-only sequence (not a `list`: nothing may append to it
but the controller) that also knows which runs are in which status, so the questions
a scheduler asks every tick ("which runs are trained but not evaluated?", "how many
have finished?") cost the size of the answer, not the size of the experiment.
Schedulers ask through `with_status` / `count_status` / `changed_since`, which fall
back to a scan for a plain list.

A `RunList` given a `load` function keeps only the newest `keep_finished` finished
runs in memory; older ones are dropped and read back from the store when asked for,
so a long sweep's memory stays flat. Asking for one run (`runs[i]`, `get`) or for the
runs changed since a version reads just those. Reading all of them (iterating,
slicing, `in_status` of a finished status, comparing) brings every run back and
keeps them all from then on: a scheduler that reads old runs every tick pays for it
once, not every tick.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import cast, overload

from sweepwise.core.models import JobStatus, RunInfo

logger = logging.getLogger(__name__)

FINISHED = tuple(status for status in JobStatus if status.is_finished())
UNFINISHED = tuple(status for status in JobStatus if status not in FINISHED)
KEEP_FINISHED = 1000
"""How many finished runs a `RunList` with a `load` function keeps in memory."""

RunLoader = Callable[[list[str]], list[RunInfo]]
"""Reads runs by id from the store (in any order)."""


class RunList(Sequence[RunInfo]):
    """A read-only sequence of runs in creation order, plus an index from status to runs.

    Args:
        runs: the runs to start with.
        load: reads runs by id from the store; without it every run stays in memory.
        keep_finished: how many finished runs to keep in memory when `load` is given.
    """

    def __init__(
        self,
        runs: Iterable[RunInfo] = (),
        *,
        load: RunLoader | None = None,
        keep_finished: int = KEEP_FINISHED,
    ) -> None:
        self._items: list[RunInfo | str] = []  # a run, or the id of a run dropped from memory
        self._log = array("i")  # positions of the runs, in the order they changed
        self._position: dict[str, int] = {}
        self._by_status: dict[JobStatus, dict[str, RunInfo]] = {status: {} for status in JobStatus}
        self._load = load
        self._keep_finished = keep_finished
        self._finished_in_memory: dict[str, None] = {}  # oldest-finished first
        self._dropped_by_status = dict.fromkeys(FINISHED, 0)
        self._dropped_status = bytearray()  # by position: the status a run was dropped in
        for run in runs:
            self.upsert(run)

    # -- the stored items: a run, or the id of a run dropped from memory ------------------

    def _item(self, index: int) -> RunInfo | str:
        return self._items[index]

    def _set_item(self, index: int, item: RunInfo | str) -> None:
        self._items[index] = item

    # -- changing ------------------------------------------------------------------------

    def upsert(self, run: RunInfo) -> None:
        """Add a new run at the end, or replace the stored snapshot of a known one."""
        run_id = run.run_id
        index = self._position.get(run_id)
        if index is None:
            index = self._position[run_id] = len(self._items)
            self._items.append(run)
            self._dropped_status.append(0)
        else:
            old = self._item(index)
            if isinstance(old, str):  # a dropped (finished) run
                self._forget_dropped(index)
            else:
                del self._by_status[old.status][run_id]
            self._set_item(index, run)
        self._by_status[run.status][run_id] = run
        self._log.append(index)
        kept = self._finished_in_memory
        kept.pop(run_id, None)
        if run.status.is_finished() and self._load is not None:
            kept[run_id] = None
            if len(kept) > self._keep_finished:
                self._drop(next(iter(kept)))

    def _drop(self, run_id: str) -> None:
        del self._finished_in_memory[run_id]
        index = self._position[run_id]
        run = self._item(index)
        assert isinstance(run, RunInfo)
        del self._by_status[run.status][run_id]
        self._dropped_status[index] = FINISHED.index(run.status)
        self._dropped_by_status[run.status] += 1
        self._set_item(index, run_id)

    def _forget_dropped(self, index: int) -> None:
        """The dropped run at `index` is about to be replaced by a run in memory."""
        self._dropped_by_status[FINISHED[self._dropped_status[index]]] -= 1

    # -- reading -------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Grows by one with every `upsert`."""
        return len(self._log)

    @property
    def in_memory(self) -> int:
        """How many runs are held in memory (the others are read from the store when asked for)."""
        return len(self) - self._dropped

    @property
    def _dropped(self) -> int:
        """How many runs are held as their id only."""
        return sum(self._dropped_by_status.values())

    def changed_since(self, version: int) -> list[RunInfo]:
        """The current snapshot of every run changed after `version` (each once)."""
        positions = dict.fromkeys(self._log[version:])
        return self._read([self._item(index) for index in positions])

    def get(self, run_id: str) -> RunInfo | None:
        """The run with this id, or None."""
        index = self._position.get(run_id)
        return None if index is None else self._read([self._item(index)])[0]

    def in_status(self, *statuses: JobStatus) -> list[RunInfo]:
        """Runs in any of `statuses`, oldest first within each status."""
        if any(self._dropped_by_status.get(status) for status in statuses):
            self._bring_all_back()
        out: list[RunInfo] = []
        for status in statuses:
            out.extend(self._by_status[status].values())
        return out

    def how_many(self, *statuses: JobStatus) -> int:
        """How many runs are in any of `statuses`."""
        dropped = self._dropped_by_status
        return sum(len(self._by_status[status]) + dropped.get(status, 0) for status in statuses)

    def recently_finished(self, n: int) -> list[RunInfo]:
        """Up to `n` of the runs that finished last, in the order they finished."""
        ids = list(self._finished_in_memory)[-n:] if n > 0 else []
        if self._load is None:  # no record of the order: creation order
            finished = self.in_status(*FINISHED)
            finished.sort(key=lambda run: self._position[run.run_id])
            return finished[-n:] if n > 0 else []
        return self._read([self._item(self._position[run_id]) for run_id in ids])

    # -- reading dropped runs ------------------------------------------------------------

    def _read(self, items: list[RunInfo | str]) -> list[RunInfo]:
        """`items` with each dropped run (its id) read from the store, not kept in memory."""
        dropped = [item for item in items if isinstance(item, str)]
        if not dropped:
            return cast(list[RunInfo], items)
        loaded = {run.run_id: run for run in self._fetch(dropped)}
        return [loaded[item] if isinstance(item, str) else item for item in items]

    def _fetch(self, run_ids: list[str]) -> list[RunInfo]:
        assert self._load is not None  # runs are dropped only when they can be loaded
        runs = self._load(run_ids)
        missing = set(run_ids) - {run.run_id for run in runs}
        if missing:
            raise LookupError(f"runs {sorted(missing)[:5]} are no longer in the store")
        return runs

    def _bring_all_back(self) -> None:
        """Read every dropped run back and keep all runs in memory from now on."""
        if not self._dropped:
            return
        dropped = [item for item in map(self._item, range(len(self))) if isinstance(item, str)]
        logger.debug("a scheduler reads old runs: keeping all %d runs in memory", len(self))
        self._keep_finished = 1 << 62
        for run in self._fetch(dropped):
            index = self._position[run.run_id]
            self._forget_dropped(index)
            self._set_item(index, run)
            self._by_status[run.status][run.run_id] = run

    # -- the sequence --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> RunInfo: ...

    @overload
    def __getitem__(self, index: slice) -> list[RunInfo]: ...

    def __getitem__(self, index: int | slice) -> RunInfo | list[RunInfo]:
        if isinstance(index, slice):
            self._bring_all_back()
            return cast(list[RunInfo], self._items[index])
        return self._read([self._items[index]])[0]

    def __iter__(self) -> Iterator[RunInfo]:
        self._bring_all_back()
        return iter(cast(list[RunInfo], self._items))

    def __contains__(self, run: object) -> bool:
        return isinstance(run, RunInfo) and self.get(run.run_id) == run

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable (by `upsert`): not hashable

    def __repr__(self) -> str:
        return f"RunList({len(self)} runs, {self.in_memory} in memory)"


def with_status(runs: Sequence[RunInfo], *statuses: JobStatus) -> list[RunInfo]:
    """Runs in any of `statuses` (indexed for a `RunList`, a scan otherwise)."""
    if isinstance(runs, RunList):
        return runs.in_status(*statuses)
    wanted = set(statuses)
    return [run for run in runs if run.status in wanted]


def changed_since(runs: Sequence[RunInfo], version: int) -> tuple[list[RunInfo], int]:
    """Runs changed after `version` and the version to ask from next time.

    For a plain list (no change log) every run counts as changed.
    """
    if isinstance(runs, RunList):
        return runs.changed_since(version), runs.version
    return list(runs), 0


def count_status(runs: Sequence[RunInfo], *statuses: JobStatus) -> int:
    """How many runs are in any of `statuses`."""
    if isinstance(runs, RunList):
        return runs.how_many(*statuses)
    wanted = set(statuses)
    return sum(1 for run in runs if run.status in wanted)


__all__ = [
    "FINISHED",
    "KEEP_FINISHED",
    "UNFINISHED",
    "RunList",
    "RunLoader",
    "changed_since",
    "count_status",
    "with_status",
]
