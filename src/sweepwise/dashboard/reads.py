"""The dashboard's reads: the CLI's reader, wrapped to read an experiment's runs once per view,
and the views of each experiment kept until its runs change.

Both are wrappers around the `RunReader` that `sweepwise status` uses (docs/dashboard.md, "Reads"):
no query of their own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sweepwise.app.views import RunReader
from sweepwise.core.records import RunInfo
from sweepwise.core.status import JobStatus


class RunsReadOnce:
    """A `RunReader` that reads each experiment's runs from the store once, then answers from them.

    `status_payload` and `best_payload` each ask for the runs (all of them, then the completed
    ones); on a 10,000-run experiment each read is a third of a second. Through this wrapper the
    second is a filter of the first.

    Args:
        reader: the reader to wrap.
    """

    def __init__(self, reader: RunReader) -> None:
        self._reader = reader
        self._runs: dict[str, list[RunInfo]] = {}

    @property
    def url(self) -> Any:
        """The wrapped reader's URL."""
        return self._reader.url

    def exists(self) -> bool:
        """See `RunReader.exists`."""
        return self._reader.exists()

    def get_experiment(self, name: str) -> Any:
        """See `RunReader.get_experiment`."""
        return self._reader.get_experiment(name)

    def list_experiments(self) -> list[Any]:
        """See `RunReader.list_experiments`."""
        return self._reader.list_experiments()

    def count_by_status(self, experiment: str) -> dict[str, int]:
        """See `RunReader.count_by_status`."""
        return self._reader.count_by_status(experiment)

    def load_state(self, experiment: str) -> Any:
        """The wrapped reader's `load_state` (mirrors' markers), or None when it has none."""
        load = getattr(self._reader, "load_state", None)
        return load(experiment) if load is not None else None

    def fetch_runs(self, filters: dict[str, Any]) -> list[RunInfo]:
        """See `RunReader.fetch_runs`: an experiment's runs are read once, a status is filtered here."""
        group = filters.get("group")
        if group is None or set(filters) - {"group", "status"}:
            return self._reader.fetch_runs(filters)
        if group not in self._runs:
            self._runs[group] = self._reader.fetch_runs({"group": group})
        runs = self._runs[group]
        if "status" in filters:
            wanted = JobStatus(filters["status"])
            runs = [run for run in runs if run.status is wanted]
        return list(runs)


class ViewCache:
    """What was built for each experiment, kept while the experiment's runs stay as they were.

    An entry is stamped with the experiment's update sequence (`last_seq`), status and last
    update: any change to a run or to the experiment gives a new stamp, and the entry is built again.

    Args:
        size: how many experiments' entries to keep (the least recently used goes first).
    """

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str], tuple[Any, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, key: tuple[str, str], stamp: Any) -> dict[str, Any]:
        """The entry of `key` (store URL, experiment) for `stamp`: a dict to keep built things in."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] != stamp:
                found = (stamp, {"lock": threading.Lock()})
                self._entries[key] = found
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
            return found[1]

    @staticmethod
    def get(entry: dict[str, Any], name: str, build: Callable[[], Any]) -> Any:
        """`entry[name]`, built with `build()` the first time it is asked for (once, across threads)."""
        with entry["lock"]:
            if name not in entry:
                entry[name] = build()
            return entry[name]


def stamp_of(record: Any) -> tuple[Any, ...]:
    """What changes whenever an experiment or one of its runs does."""
    return (record.last_seq, record.status, record.updated_at)


__all__ = ["RunsReadOnce", "ViewCache", "stamp_of"]
