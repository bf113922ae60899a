"""A read-only view of a SQLite store through the standard library's `sqlite3`.

`sweepwise status` and `best` are typed by people and run by scripts, often while a
sweep writes the same file. Reading with `sqlite3` directly skips importing SQLAlchemy
and validating job definitions, which on a 10,000-run experiment is most of the
command's time. It opens the file read-only and never creates or migrates anything:
a file of an older (or newer) schema revision is read through `SQLStore` instead
(`at_head`), which upgrades it (docs/stores.md, "Upgrades").
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sweepwise.core.models import JobStatus, RunInfo
from sweepwise.stores._codec import (
    EXPERIMENT_FIELDS,
    RUN_FIELDS,
    ExperimentRecord,
    experiment_from_row,
    run_from_row,
)
from sweepwise.stores.revision import HEAD_REVISION

_RUNS = f"SELECT {', '.join(RUN_FIELDS)} FROM runs"
_EXPERIMENTS = f"SELECT {', '.join(EXPERIMENT_FIELDS)} FROM experiments"


def sqlite_path(url: str) -> Path | None:
    """The file of a plain `sqlite:///PATH` URL, or None for any other URL."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = unquote(url[len("sqlite:///") :])
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    return Path(path)


class SQLiteReader:
    """Read-only access to a SQLite store, with the read methods of `SQLStore`.

    Args:
        path: the database file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._connection: sqlite3.Connection | None = None

    def exists(self) -> bool:
        """True if the file exists and holds a sweepwise schema."""
        if not self.path.is_file():
            return False
        try:
            row = (
                self._db()
                .execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'")
                .fetchone()
            )
        except sqlite3.DatabaseError:
            return False
        return row is not None

    def at_head(self) -> bool:
        """True if the file's schema is at `HEAD_REVISION`, the columns this reader reads."""
        try:
            row = self._db().execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            return False
        return row is not None and row[0] == HEAD_REVISION

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10.0)
        return self._connection

    def get_experiment(self, name: str) -> ExperimentRecord | None:
        """The experiment called `name`, or None."""
        row = self._db().execute(f"{_EXPERIMENTS} WHERE name = ?", (name,)).fetchone()
        return None if row is None else experiment_from_row(row)

    def list_experiments(self) -> list[ExperimentRecord]:
        """Every experiment, oldest first."""
        return [experiment_from_row(row) for row in self._db().execute(f"{_EXPERIMENTS} ORDER BY created_at")]

    def fetch_runs(self, filters: dict[str, Any]) -> list[RunInfo]:
        """Runs of `filters["group"]` (optionally only those of `filters["status"]`), or of one `run_id`."""
        clauses, params = [], []
        if "group" in filters:
            clauses.append("experiment = ?")
            params.append(filters["group"])
        if "run_id" in filters:
            clauses.append("run_id = ?")
            params.append(filters["run_id"])
        if "status" in filters:
            clauses.append("status = ?")
            params.append(JobStatus(filters["status"]).value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db().execute(f"{_RUNS}{where} ORDER BY trial_index, created_at", params)
        return [run_from_row(row, with_jobs=False) for row in rows]

    def count_by_status(self, experiment: str) -> dict[str, int]:
        """How many runs of `experiment` are in each status (statuses with runs only)."""
        rows = self._db().execute(
            "SELECT status, COUNT(*) FROM runs WHERE experiment = ? GROUP BY status", (experiment,)
        )
        return {status: count for status, count in rows}

    def load_state(self, experiment: str) -> dict[str, Any] | None:
        """The state saved under `experiment` (a scheduler's, or its mirrors' markers), or None."""
        import json

        row = (
            self._db()
            .execute("SELECT state FROM scheduler_state WHERE experiment = ?", (experiment,))
            .fetchone()
        )
        value = json.loads(row[0]) if row is not None else None
        return value if isinstance(value, dict) else None

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


__all__ = ["SQLiteReader", "sqlite_path"]
