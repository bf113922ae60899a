"""`SQLStore`: runs, experiments, job events, scheduler state and leases in a SQL database.

A SQLite file by default (WAL), any SQLAlchemy URL otherwise. Nothing is
created until the first operation: `SQLStore(url)` alone writes nothing, and
`exists()` answers without creating a file. On first use the schema is created
or upgraded by the package's Alembic migrations (skipped, without importing
Alembic, when the database is already at the head revision).

Every public method is one transaction, retried on transient driver errors
(a locked SQLite file, a dropped connection); what still fails becomes a
`StoreError` with a one-line message naming the operation, the driver's reason
and, when known, the fix. `transaction()` groups several operations into one.
A SQLite store also stops writing once its file was deleted or replaced, and
checkpoints its write-ahead log when it opens and closes (docs/design.md, "Faults").
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from sweepwise.core.errors import StoreError, StoreUnavailableError
from sweepwise.core.lifecycle import DEFAULT_RETRIES, RetryPolicy
from sweepwise.core.models import JobDefinition, JobEvent, JobTypes, RunInfo
from sweepwise.core.private import create_private_file, make_private_dirs
from sweepwise.stores._codec import ExperimentRecord
from sweepwise.stores._connections import ThreadConnections
from sweepwise.stores._engine import (
    check_synchronous,
    checkpoint,
    create_store_engine,
    failure_hint,
    is_outage,
    is_transient,
    one_line,
    parse_url,
    sqlite_file,
)
from sweepwise.stores._file_watch import FileWatch
from sweepwise.stores._migrate import current_revision, ensure_schema
from sweepwise.stores._reads import parse_filters
from sweepwise.stores._transaction import StoreTransaction, describe
from sweepwise.stores.location import register_store

T = TypeVar("T")

DEFAULT_URL = "sqlite:///sweepwise.db"
ENV_VAR = "SWEEPWISE_STORE"
ATTEMPTS = 5
RECONNECT_SECONDS = 60.0
"""How long a transient failure is retried at least: a database server restarting (docs/stores.md)."""
_log = logging.getLogger(__name__)


def _pause_before_first_retry(state: RetryCallState) -> None:
    if state.attempt_number == 1:
        time.sleep(0.05)


class SQLStore:
    """The single source of truth of sweepwise's experiments, on SQLAlchemy 2.

    Implements `sweepwise.core.protocols.Store` and `sweepwise.core.protocols.StateStore`.

    Args:
        url: a SQLAlchemy URL; default `$SWEEPWISE_STORE`, else `sqlite:///sweepwise.db`
            (a relative SQLite path is taken from the current directory, now).
        sqlite_synchronous: SQLite's `synchronous` pragma: NORMAL (default; with WAL,
            a power cut may lose the last transactions but never corrupts the file)
            or FULL (every commit reaches the disk), OFF or EXTRA; default
            `$SWEEPWISE_SQLITE_SYNCHRONOUS`, else NORMAL.

    Raises:
        ConfigError: the URL cannot be parsed or `sqlite_synchronous` is unknown.
    """

    def __init__(self, url: str | None = None, *, sqlite_synchronous: str | None = None) -> None:
        sqlite_synchronous = sqlite_synchronous or os.environ.get("SWEEPWISE_SQLITE_SYNCHRONOUS", "NORMAL")
        parsed = parse_url(url or os.environ.get(ENV_VAR) or DEFAULT_URL)
        path = sqlite_file(parsed)
        if path is not None and not path.is_absolute():
            parsed = parsed.set(database=str(path.absolute()))
        self._url = parsed
        self._file = FileWatch(path.absolute()) if path is not None else None
        self._engine = create_store_engine(parsed, check_synchronous(sqlite_synchronous))
        self._connections = ThreadConnections(self._engine)
        self._retrying = Retrying(  # after a first attempt failed with a transient error
            stop=stop_after_attempt(ATTEMPTS - 1) & stop_after_delay(RECONNECT_SECONDS),
            wait=wait_exponential(multiplier=0.05, max=2.0),
            retry=retry_if_exception(is_transient),
            before=_pause_before_first_retry,
            reraise=True,
        )
        self._ready = False
        self._lock = threading.Lock()
        self._said_waiting = False

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"SQLStore({self.url!r})"

    def exists(self) -> bool:
        """True if the database exists and holds a sweepwise schema; creates nothing.

        Raises:
            StoreError: the database could not be read.
        """
        path = sqlite_file(self._url)
        if path is not None and not path.is_file():
            return False
        if self._ready:
            return True
        try:
            with self._engine.connect() as connection:
                return current_revision(connection) is not None
        except SQLAlchemyError as exc:
            raise self._error("read the schema", exc) from exc

    def close(self) -> None:
        """Close every connection (the store opens new ones if used again).

        A SQLite store first copies its write-ahead log into the database file and
        empties it; if that fails (a full disk), the log stays for the next run to replay.
        """
        self._connections.close()
        if self._ready and self._file is not None and not self._file.vanished():
            checkpoint(self._engine, "TRUNCATE")
        self._engine.dispose()

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """Group several operations into one transaction.

        Yields a `StoreTransaction` with this store's methods bound to one connection;
        commits when the block ends, rolls everything back if it raises. Starting the
        transaction is retried like any call; its body is not (it runs once). Use the
        yielded object, not the store, inside the block: on SQLite a second writer
        would wait for this transaction's lock.

        Raises:
            StoreError: the database failed (the transaction was rolled back).
        """
        self._ensure_ready()
        if self._file is not None:
            self._file.check()
        try:
            opened = self._retried(self._connections.begin, True)
        except SQLAlchemyError as exc:
            raise self._error("start a transaction", exc) from exc
        tx = StoreTransaction(opened.connection)
        try:
            yield tx
        except BaseException as exc:
            opened.finish(exc)
            if isinstance(exc, SQLAlchemyError):
                raise self._error(describe(tx.operations), exc, retried=False) from exc
            raise
        try:
            opened.finish(None)
        except SQLAlchemyError as exc:  # the commit's outcome may be unknown: the caller reads back
            raise self._error(describe(tx.operations), exc, retried=False) from exc

    # -- runs (the seed API) ------------------------------------------------------------

    def init_run(
        self,
        run_id: str,
        group: str | None = None,
        tags: list[str] | None = None,
        initial_summary: dict[str, Any] | None = None,
    ) -> None:
        """Create a PENDING run in experiment `group` (created if missing); no-op if the run exists.

        The run gets the experiment's next trial index.

        Raises:
            ValueError: `group` is None (the SQL store files every run under an experiment).
            TypeError: `initial_summary` or `tags` is not JSON-serialisable.
        """
        if group is None:
            raise ValueError(f"run {run_id!r}: group (the experiment name) is required by the SQL store")
        self._call("init_run", lambda tx: tx.init_run(run_id, group, tags, initial_summary))

    def fetch_runs(self, filters: dict[str, Any]) -> list[RunInfo]:
        """Runs matching every filter, by trial index then creation time.

        Args:
            filters: any of `group` (experiment name), `run_id` (one id or a list),
                `status` (a `JobStatus` or its value, or a list of them) and
                `since_seq` (only runs changed after this update sequence number).

        Raises:
            ValueError: an unknown filter key or status.
        """
        parse_filters(filters)
        return self._call("fetch_runs", lambda tx: tx.fetch_runs(filters), write=False)

    def update_run_summary(self, run_id: str, summary_update: dict[str, Any]) -> bool:
        """Merge `summary_update` into the run's summary; False if there is no such run.

        A numeric `observation/cost` also becomes the run's `cost`.

        Raises:
            TypeError: a value is not JSON-serialisable.
        """
        return self._call("update_run_summary", lambda tx: tx.update_run_summary(run_id, summary_update))

    # -- experiments ----------------------------------------------------------------------

    def ensure_experiment(self, name: str, spec: dict[str, Any]) -> ExperimentRecord:
        """Create experiment `name` with `spec` (status `running`), or return it unchanged if it exists."""
        return self._call("ensure_experiment", lambda tx: tx.ensure_experiment(name, spec))

    def get_experiment(self, name: str) -> ExperimentRecord | None:
        """The experiment called `name`, or None."""
        return self._call("get_experiment", lambda tx: tx.get_experiment(name), write=False)

    def list_experiments(self) -> list[ExperimentRecord]:
        """Every experiment, oldest first."""
        return self._call("list_experiments", lambda tx: tx.list_experiments(), write=False)

    def set_experiment_status(self, name: str, status: str) -> None:
        """Set the status of experiment `name` (`running`, `complete`, `cancelled`, ...).

        Raises:
            ValueError: there is no such experiment.
        """
        self._call("set_experiment_status", lambda tx: tx.set_experiment_status(name, status))

    # -- the controller's writes ------------------------------------------------------------

    def record_training_intent(
        self, experiment: str, job: JobDefinition, suggestion: dict[str, Any], trial_index: int
    ) -> None:
        """docs/design.md, crash safety: commit the PENDING run before its training job is dispatched.

        The run gets `job` as its training job, `{"observation/suggestion": suggestion}`
        as its summary and no dispatch id. A no-op if the run exists.

        Raises:
            ValueError: `job` is not a training job.
        """
        self._call(
            "record_training_intent",
            lambda tx: tx.record_training_intent(experiment, job, suggestion, trial_index),
        )

    def record_eval_intent(self, job: JobDefinition) -> None:
        """Mark the run's eval as started with `job` and no dispatch id (no-op once started or finished).

        Raises:
            ValueError: `job` is not an eval job, or its run does not exist.
        """
        self._call("record_eval_intent", lambda tx: tx.record_eval_intent(job))

    def record_dispatch_id(self, run_id: str, job_type: JobTypes, dispatch_id: str) -> None:
        """docs/design.md, crash safety: remember the dispatch id of the run's job of `job_type`.

        Raises:
            ValueError: the run does not exist.
        """
        self._call("record_dispatch_id", lambda tx: tx.record_dispatch_id(run_id, job_type, dispatch_id))

    def apply_events(
        self,
        events: list[JobEvent],
        summary_updates: Mapping[str, dict[str, Any]] | None = None,
        policy: RetryPolicy = DEFAULT_RETRIES,
    ) -> list[str]:
        """Apply job events to their runs in one transaction; return the ids of the runs changed.

        Idempotent: events for jobs (or runs) that have finished change nothing.
        STARTED, FINISHED and LOST events are also kept in `job_events`.
        `summary_updates` (run id -> update) are merged into the runs' summaries after
        the events, as `update_run_summary` would, in the same write of each run. A job
        that is lost, fails or times out is retried as `policy` allows (`sweepwise.core.lifecycle`).
        """
        return self._call("apply_events", lambda tx: tx.apply_events(events, summary_updates, policy))

    def mark_stale(self, run_id: str, reason: str) -> bool:
        """Mark an unfinished run STALE with `reason` as its error; False if finished or unknown."""
        return self._call("mark_stale", lambda tx: tx.mark_stale(run_id, reason))

    def cancel_run(self, run_id: str) -> bool:
        """Mark an unfinished run CANCELLED; False if finished or unknown."""
        return self._call("cancel_run", lambda tx: tx.cancel_run(run_id))

    def mark_failed(self, run_id: str, reason: str) -> bool:
        """Mark a run FAILED with `reason`, a COMPLETED one too (its result was rejected).

        Returns False if the run is already FAILED or CANCELLED, or unknown.
        """
        return self._call("mark_failed", lambda tx: tx.mark_failed(run_id, reason))

    # -- the controller's reads ---------------------------------------------------------------

    def fetch_changed(self, experiment: str, since_seq: int) -> tuple[list[RunInfo], int]:
        """Runs of `experiment` changed after update sequence `since_seq`, and the current sequence.

        Pass the returned number as `since_seq` next time; start from 0.
        """
        return self._call("fetch_changed", lambda tx: tx.fetch_changed(experiment, since_seq), write=False)

    def count_by_status(self, experiment: str) -> dict[str, int]:
        """`{status value: number of runs}` for `experiment` (statuses without runs left out)."""
        return self._call("count_by_status", lambda tx: tx.count_by_status(experiment), write=False)

    def max_trial_index(self, experiment: str) -> int:
        """The largest trial index of `experiment`'s runs; -1 when it has none."""
        return self._call("max_trial_index", lambda tx: tx.max_trial_index(experiment), write=False)

    def fetch_job_events(self, run_id: str) -> list[dict[str, Any]]:
        """The run's recorded job events, oldest first.

        Returns:
            dicts with `id`, `run_id`, `job_type`, `kind`, `at` (epoch s), `exit_code`
            and `payload` (`dispatch_id`, `result`, `metrics`, `error`, `started_at` when set).
        """
        return self._call("fetch_job_events", lambda tx: tx.fetch_job_events(run_id), write=False)

    # -- scheduler state ------------------------------------------------------------------------

    def save_state(self, experiment: str, state: dict[str, Any]) -> None:
        """Persist the scheduler state of `experiment` (JSON; datetimes become ISO strings)."""
        self._call("save_state", lambda tx: tx.save_state(experiment, state))

    def load_state(self, experiment: str) -> dict[str, Any] | None:
        """The last saved scheduler state of `experiment`, or None."""
        return self._call("load_state", lambda tx: tx.load_state(experiment), write=False)

    # -- lease (docs/design.md, crash safety) ----------------------------------------------------------------

    def acquire_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """Take the experiment's lease until `now + ttl` (s) if it is free, expired or `owner`'s.

        Race-free between processes: of two owners trying at once, exactly one gets True.
        """
        return self._call("acquire_lease", lambda tx: tx.acquire_lease(experiment, owner, ttl, now))

    def renew_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """Extend the lease to `now + ttl` if `owner` still holds it; False otherwise."""
        return self._call("renew_lease", lambda tx: tx.renew_lease(experiment, owner, ttl, now))

    def release_lease(self, experiment: str, owner: str) -> None:
        """Give the lease up if `owner` holds it."""
        self._call("release_lease", lambda tx: tx.release_lease(experiment, owner))

    def lease_holder(self, experiment: str) -> tuple[str, float] | None:
        """`(owner, expires_at)` of the lease, expired or not; None if nobody holds it."""
        return self._call("lease_holder", lambda tx: tx.lease_holder(experiment), write=False)

    # -- plumbing ----------------------------------------------------------------------------------

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            path = sqlite_file(self._url)
            if path is not None:  # private to the user, whatever the umask (README, `train`)
                make_private_dirs(path.parent)
                create_private_file(path)  # SQLite gives its -wal and -shm files the same mode
            try:
                self._retried(ensure_schema, self._engine, self.url)
            except SQLAlchemyError as exc:
                raise self._error("create the schema", exc) from exc
            if self._file is not None:
                self._file.remember()
                checkpoint(self._engine, "PASSIVE")  # a log an earlier run could not checkpoint
            self._ready = True

    def _attempt(self, fn: Callable[[StoreTransaction], T], write: bool) -> T:
        opened = self._connections.begin(write)
        try:
            result = fn(StoreTransaction(opened.connection))
        except BaseException as exc:
            opened.finish(exc)
            raise
        opened.finish(None)
        return result

    def _call(self, what: str, fn: Callable[[StoreTransaction], T], *, write: bool = True) -> T:
        self._ensure_ready()
        if write and self._file is not None:
            self._file.check()
        try:
            result: T = self._retried(self._attempt, fn, write)
        except SQLAlchemyError as exc:
            raise self._error(describe((what,)), exc) from exc
        return result

    def _retried(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, retried with backoff while it fails with a transient error (a locked database)."""
        try:
            return fn(*args)  # the common case, without the retry machinery's overhead
        except SQLAlchemyError as exc:
            if not is_transient(exc):
                raise
            if not self._said_waiting:  # the first attempt already waited out the busy timeout
                self._said_waiting = True
                why = "another process holds it" if self._file is not None else "retrying"
                _log.warning("waiting for %s: %s (%s)", self.url, one_line(exc), why)
        result: T = self._retrying(fn, *args)
        return result

    def _error(self, what: str, exc: SQLAlchemyError, *, retried: bool = True) -> StoreError:
        """One line: what could not be done, where, the driver's reason and what to do about it.

        Args:
            what: the operation, as words that end "could not ..." ("record job events").
            exc: the driver's error.
            retried: whether the operation was retried (a transaction's body is not).
        """
        if self._file is not None and self._file.vanished():
            return self._file.error()  # the driver's words ("disk I/O error") would hide the cause
        tries = " after retrying" if retried and is_transient(exc) else ""
        hint = failure_hint(exc)
        fix = f"; {hint}" if hint else ""
        kind = StoreUnavailableError if is_outage(exc) else StoreError
        return kind(f"could not {what} in the store {self.url}{tries}: {one_line(exc)}{fix}")


for _scheme in ("mysql", "postgresql", "sqlite"):  # and their `+driver` variants (see `store_factory`)
    register_store(_scheme)(SQLStore)


__all__ = ["DEFAULT_URL", "ENV_VAR", "SQLStore"]
