"""Engine set-up and driver-error handling for the SQL store.

SQLite gets WAL, a configurable `synchronous`, a 10 s busy timeout and foreign
keys on every new connection. pysqlite's own transaction handling is switched
off so that we emit `BEGIN` ourselves (`begin`): write transactions start with
`BEGIN IMMEDIATE`, taking the write lock up front (a deferred transaction that
reads and then writes cannot wait for the lock and fails at once), read ones
with a plain `BEGIN`, which gives them one consistent snapshot.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, RootTransaction, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from sweepwise.core.errors import ConfigError

logger = logging.getLogger(__name__)

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
IDLE_CHECK_SECONDS = 0.5
"""A server connection idle longer than this is tested (`SELECT 1`) when a transaction begins."""
_LAST_BEGUN = "sweepwise_last_begun"
BUSY_TIMEOUT_MS = 10_000

# Words of SQLite errors that go away when tried again (another writer held the lock).
_SQLITE_TRANSIENT = ("locked", "busy")

# Words of driver messages (SQLite's and PostgreSQL's) -> what the user can do about them.
_HINTS = (
    (
        ("database or disk is full", "no space left", "disk full", "could not extend file", "quota"),
        "free some space and run the same command again",
    ),
    (
        ("readonly database", "read-only", "read only"),
        "make the database file and its directory writable, then run the same command again",
    ),
    (
        ("disk i/o error", "input/output error"),
        "check the disk and that the database file is still there, then run the same command again",
    ),
    (
        ("unable to open database file",),
        "check that the database's directory exists and is writable, then run the same command again",
    ),
)


def parse_url(url: str) -> URL:
    """Parse a SQLAlchemy URL; `postgresql://` without a driver means psycopg 3 (`sweepwise[postgres]`).

    SQLAlchemy's own default for `postgresql://` is psycopg2; sweepwise is tested on psycopg 3
    (docs/stores.md), so a URL that names no driver gets that one.

    Raises:
        ConfigError: the URL cannot be parsed.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(
            "store", f"{url!r} is not a database URL ({exc}); e.g. sqlite:///sweepwise.db"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def check_synchronous(mode: str) -> str:
    """Validate SQLite's `synchronous` setting.

    Raises:
        ConfigError: not one of OFF, NORMAL, FULL, EXTRA.
    """
    upper = mode.upper()
    if upper not in SYNCHRONOUS_MODES:
        raise ConfigError("sqlite_synchronous", f"{mode!r} is not one of {', '.join(SYNCHRONOUS_MODES)}")
    return upper


def is_sqlite(url: URL) -> bool:
    """True for SQLite URLs, whatever the driver."""
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for in-memory databases and other backends."""
    if not is_sqlite(url) or url.database in (None, "", ":memory:"):
        return None
    database = str(url.database)
    if database.startswith("file:"):  # URI filename: sqlite:///file:path?uri=true
        database = database[len("file:") :]
    return Path(database)


def create_store_engine(url: URL, synchronous: str) -> Engine:
    """An engine for `url` (no connection is opened yet)."""
    if is_sqlite(url):
        engine = create_engine(url)
        _configure_sqlite(engine, synchronous)
        return engine
    # A server's connections die when it restarts: test each one as it leaves the pool.
    return create_engine(url, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()


def begin(connection: Connection, *, write: bool) -> RootTransaction:
    """Begin a transaction on `connection`; on SQLite, `BEGIN IMMEDIATE` when `write`; on a server, checked.

    Raises:
        sqlalchemy.exc.DBAPIError: the database refused (e.g. locked past the busy timeout).
    """
    transaction = connection.begin()
    if connection.dialect.name != "sqlite":
        # A kept connection the server dropped while it was idle (a restart) fails here, where
        # the call is retried on a fresh one, rather than in the transaction's body
        # (docs/stores.md, "Outages"). One in use moments ago is not tested: a round trip
        # each time would cost more than all of a busy tick's statements.
        now = time.monotonic()
        if now - connection.info.get(_LAST_BEGUN, -math.inf) > IDLE_CHECK_SECONDS:
            try:
                connection.exec_driver_sql("SELECT 1")
            except BaseException:
                transaction.rollback()
                raise
        connection.info[_LAST_BEGUN] = now
        return transaction
    statement = "BEGIN IMMEDIATE" if write else "BEGIN"
    try:
        # Straight to the driver: SQLAlchemy's bookkeeping is done and this runs on every call.
        connection.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
    except Exception as exc:
        transaction.rollback()
        dbapi = connection.dialect.loaded_dbapi
        raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
    return transaction


def is_transient(exc: BaseException) -> bool:
    """True for driver errors worth another attempt: locks, busy servers, lost connections."""
    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    module = type(exc.orig).__module__ if exc.orig is not None else ""
    if "sqlite" in module:
        message = str(exc.orig).lower()
        return any(word in message for word in _SQLITE_TRANSIENT)
    return True  # PostgreSQL & co. raise OperationalError for connection-level trouble


# SQLSTATE classes of a server that cannot be reached or is going away: 08 connection exception,
# 57P01-57P03 the server shutting down, crashed or starting (PostgreSQL's codes).
_OUTAGE_STATES = ("08", "57P01", "57P02", "57P03")


def is_outage(exc: BaseException) -> bool:
    """True when a database server cannot be reached or cut the connection (not SQLite, not a full disk)."""
    if not isinstance(exc, DBAPIError) or "sqlite" in type(exc.orig).__module__:
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state is None or str(state).startswith(_OUTAGE_STATES)  # no state: the connection failed


def failure_hint(exc: SQLAlchemyError) -> str | None:
    """What the user can do about a driver error that retrying did not fix; None if we cannot tell."""
    orig = getattr(exc, "orig", None)
    if "53100" in (getattr(orig, "sqlstate", None), getattr(orig, "pgcode", None)):  # PostgreSQL's disk_full
        return _HINTS[0][1]
    message = str(orig if orig is not None else exc).lower()
    for words, hint in _HINTS:
        if any(word in message for word in words):
            return hint
    return None


def checkpoint(engine: Engine, mode: str) -> None:
    """Copy SQLite's write-ahead log into the database file (`PRAGMA wal_checkpoint(MODE)`).

    Quiet: a checkpoint that fails (a full disk, another process reading) leaves the log
    in place, and the next connection replays it.
    """
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})").close()
    except SQLAlchemyError as exc:
        logger.debug("checkpoint(%s) of %s failed: %s", mode, engine.url, one_line(exc))


def one_line(exc: SQLAlchemyError) -> str:
    """The driver's message of `exc`, on one line, without SQLAlchemy's statement dump."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


__all__ = [
    "BUSY_TIMEOUT_MS",
    "SYNCHRONOUS_MODES",
    "begin",
    "check_synchronous",
    "checkpoint",
    "create_store_engine",
    "failure_hint",
    "is_outage",
    "is_sqlite",
    "is_transient",
    "one_line",
    "parse_url",
    "sqlite_file",
]
