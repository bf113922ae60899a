"""Read-only views of a store through a bare DB-API driver: `sqlite3`, or psycopg for PostgreSQL.

`sweepwise status` and `best` are typed by people and run by scripts, often while a
sweep writes the same store. Reading with the driver directly skips importing SQLAlchemy
and validating job definitions, which on a 10,000-run experiment is most of the
command's time. A reader never creates or migrates anything: a store of an older (or
newer) schema revision is read through `SQLStore` instead (`at_head`), which upgrades it
(docs/stores.md, "Upgrades"). Both readers run the same queries through `LeanReader`;
only connecting, and the driver's parameter style, differ.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from sweepwise.core.errors import StoreError
from sweepwise.core.records import JobStatus, RunInfo
from sweepwise.stores._codec import (
    EXPERIMENT_FIELDS,
    RUN_FIELDS,
    ExperimentRecord,
    experiment_from_row,
    run_from_row,
)
from sweepwise.stores.revision import HEAD_REVISION

# Readers never use the runs' job definitions (`run_from_row(..., with_jobs=False)`): not read.
_RUNS = "SELECT {} FROM runs".format(
    ", ".join("NULL" if field in ("train_job", "eval_job") else field for field in RUN_FIELDS)
)
_EXPERIMENTS = f"SELECT {', '.join(EXPERIMENT_FIELDS)} FROM experiments"
_EVENT_FIELDS = ("id", "run_id", "job_type", "kind", "at", "exit_code", "payload")  # as SQLStore's


def sqlite_path(url: str) -> Path | None:
    """The file of a plain `sqlite:///PATH` URL, or None for any other URL."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = unquote(url[len("sqlite:///") :])
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    return Path(path)


def postgres_conninfo(url: str) -> str | None:
    """The libpq URI of a plain `postgresql[+psycopg]://` URL, or None for any other URL.

    A URL with query parameters (SQLAlchemy's or libpq's) is left to the full store.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgresql+psycopg", "postgres") or "?" in rest:
        return None
    return f"postgresql://{rest}"


class LeanReader:
    """The read methods of `SQLStore`, as plain queries on one DB-API connection."""

    url: str
    _mark = "?"  # the driver's parameter placeholder

    _found = False

    def exists(self) -> bool:
        """True if the store holds a sweepwise schema (a yes is remembered: callers ask twice)."""
        self._found = self._found or self._exists()
        return self._found

    def _exists(self) -> bool:
        raise NotImplementedError

    def at_head(self) -> bool:
        """True if the store's schema is at `HEAD_REVISION`, the columns this reader reads."""
        try:
            rows = self._rows("SELECT version_num FROM alembic_version")
        except StoreError:
            raise
        except Exception:  # no such table: the driver's own error class
            return False
        return bool(rows) and rows[0][0] == HEAD_REVISION

    def _db(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection."""
        raise NotImplementedError

    def _rows(self, query: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        return list(self._db().execute(query.replace("?", self._mark), params).fetchall())

    def get_experiment(self, name: str) -> ExperimentRecord | None:
        """The experiment called `name`, or None."""
        rows = self._rows(f"{_EXPERIMENTS} WHERE name = ?", (name,))
        return experiment_from_row(rows[0]) if rows else None

    def list_experiments(self) -> list[ExperimentRecord]:
        """Every experiment, oldest first."""
        return [experiment_from_row(row) for row in self._rows(f"{_EXPERIMENTS} ORDER BY created_at")]

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
        rows = self._rows(f"{_RUNS}{where} ORDER BY trial_index, created_at", params)
        return [run_from_row(row, with_jobs=False) for row in rows]

    def count_by_status(self, experiment: str) -> dict[str, int]:
        """How many runs of `experiment` are in each status (statuses with runs only)."""
        rows = self._rows(
            "SELECT status, COUNT(*) FROM runs WHERE experiment = ? GROUP BY status", (experiment,)
        )
        return {status: int(count) for status, count in rows}

    def fetch_job_events(self, run_id: str) -> list[dict[str, Any]]:
        """The recorded events of a run, oldest first (as `SQLStore.fetch_job_events`)."""
        rows = self._rows(
            f"SELECT {', '.join(_EVENT_FIELDS)} FROM job_events WHERE run_id = ? ORDER BY id", (run_id,)
        )
        events = [dict(zip(_EVENT_FIELDS, row, strict=True)) for row in rows]
        for event in events:
            event["payload"] = json.loads(event["payload"]) if event["payload"] else {}
        return events

    def load_state(self, experiment: str) -> dict[str, Any] | None:
        """The state saved under `experiment` (a scheduler's, or its mirrors' markers), or None."""
        rows = self._rows("SELECT state FROM scheduler_state WHERE experiment = ?", (experiment,))
        value = json.loads(rows[0][0]) if rows else None
        return value if isinstance(value, dict) else None


class SQLiteReader(LeanReader):
    """Read-only access to a SQLite store through `sqlite3` (the file opened read-only).

    Args:
        path: the database file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._connection: sqlite3.Connection | None = None

    def _exists(self) -> bool:
        if not self.path.is_file():
            return False
        try:
            rows = self._rows("SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'")
        except sqlite3.DatabaseError:
            return False
        return bool(rows)

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite3.connect(self._uri(), uri=True, timeout=10.0)
        return self._connection

    def _uri(self) -> str:
        """The file opened read-only; where its folder cannot be written and no one has it open, as immutable.

        A store in WAL mode is read through a `-shm` file made beside it, which a read-only
        file system (a snapshot, a read-only mount of a copy) cannot hold. There SQLite reads
        it as immutable, unlocked. Not when a `-shm` file is there (a controller has the store
        open, perhaps through another mount: an unlocked read could see a half-written page)
        or a `-wal` file with content (its last transactions would be missed): then it is
        opened as usual, and said to be unreadable here.
        """
        uri = f"{self.path.absolute().as_uri()}?mode=ro"
        if os.access(self.path.parent, os.W_OK) or self.in_use():
            return uri
        return uri + "&immutable=1"

    def unreadable_here(self) -> bool:
        """Whether a failed read may be this place's doing: a folder that cannot be written, and
        the store in use (so not read as immutable), where SQLite may not reach its WAL index."""
        return not os.access(self.path.parent, os.W_OK) and self.in_use()

    def in_use(self) -> bool:
        """Whether the store has a `-shm` file, or a `-wal` file with content, beside it."""
        shm, wal = (self.path.with_name(self.path.name + suffix) for suffix in ("-shm", "-wal"))
        try:
            return shm.exists() or (wal.exists() and wal.stat().st_size > 0)
        except OSError:
            return True

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresReader(LeanReader):
    """Read-only access to a PostgreSQL store through psycopg 3, in autocommit.

    Args:
        conninfo: the server's libpq URI (`postgres_conninfo`).
        connect_for: how long to keep trying to connect (s), for a server restarting.
    """

    _mark = "%s"

    def __init__(self, conninfo: str, *, connect_for: float = 10.0) -> None:
        self._conninfo = conninfo
        parts = urlsplit(conninfo)
        if parts.password is not None:
            parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1))
        self.url = urlunsplit(parts)
        self._connect_for = connect_for
        self._connection: Any = None

    def _exists(self) -> bool:
        return bool(self._rows("SELECT to_regclass('runs') IS NOT NULL")[0][0])

    def _db(self) -> Any:
        if self._connection is None:
            import psycopg

            deadline = time.monotonic() + self._connect_for
            pause = 0.1
            while True:
                try:
                    self._connection = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
                    break
                except psycopg.OperationalError as exc:
                    if time.monotonic() + pause > deadline:
                        reason = " ".join(str(exc).split())
                        raise StoreError(
                            f"could not read the store {self.url}: {reason}; "
                            "check that the server runs and the URL is right"
                        ) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 2.0)
        return self._connection

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


__all__ = ["LeanReader", "PostgresReader", "SQLiteReader", "postgres_conninfo", "sqlite_path"]
