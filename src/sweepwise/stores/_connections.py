"""The store's connections: one per thread, kept between transactions.

Checking a connection out of SQLAlchemy's pool and back costs about 25 µs, more
than most of the store's transactions themselves, so each thread keeps its own
connection open. A thread that calls the store while it is inside
`SQLStore.transaction()` gets a spare connection for that call. A connection
that failed is discarded (a retry starts on a fresh one), and a forked child
never touches its parent's connections.
"""

from __future__ import annotations

import os
import threading

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import SQLAlchemyError

from sweepwise.stores._engine import begin
from sweepwise.stores._exec import discard_pending, flush_pending
from sweepwise.stores._runs import TX_CACHE


class OpenTransaction:
    """A transaction begun by `ThreadConnections.begin`; `finish` ends it."""

    __slots__ = ("_owner", "_spare", "_transaction", "connection")

    def __init__(
        self, owner: ThreadConnections, connection: Connection, transaction: RootTransaction, spare: bool
    ) -> None:
        self._owner = owner
        self.connection = connection
        self._transaction = transaction
        self._spare = spare

    def finish(self, error: BaseException | None) -> None:
        """Commit (no `error`) or roll back, then give the connection back.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the commit failed (the transaction was rolled back).
        """
        if error is None:
            try:  # the writes held back (`Prepared.later`) go with the commit, in one round trip
                flush_pending(self.connection, then=self._transaction.commit)
            except SQLAlchemyError as exc:
                self._end(exc)
                raise
        self._end(error)

    def _end(self, error: BaseException | None) -> None:
        connection = self.connection
        if not connection.closed and not connection.invalidated:
            connection.info.pop(TX_CACHE, None)
            discard_pending(connection)
        if error is not None:
            try:
                self._transaction.rollback()
            except SQLAlchemyError:
                pass
            if isinstance(error, SQLAlchemyError):  # a retry starts on a fresh connection
                self._owner.discard(connection)
                return
        if self._spare:
            _close_quietly(connection)


class ThreadConnections:
    """One connection per thread of the store's engine.

    Args:
        engine: the store's engine.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._open: set[Connection] = set()
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def begin(self, write: bool) -> OpenTransaction:
        """Begin a transaction (`BEGIN IMMEDIATE` on SQLite when `write`) on this thread's connection.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the connection or the BEGIN failed.
        """
        connection, spare = self._connection()
        connection.info[TX_CACHE] = {}
        discard_pending(connection)
        try:
            transaction = begin(connection, write=write)
        except BaseException:
            self.discard(connection)
            raise
        return OpenTransaction(self, connection, transaction, spare)

    def discard(self, connection: Connection) -> None:
        """Close `connection` and forget it (the thread opens a new one next time)."""
        with self._lock:
            self._open.discard(connection)
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        _close_quietly(connection)

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            _close_quietly(connection)

    def _connection(self) -> tuple[Connection, bool]:
        if os.getpid() != self._pid:  # forked: the parent's connections are not ours to use
            self._engine.dispose(close=False)
            self._open, self._local, self._pid = set(), threading.local(), os.getpid()
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is not None and not connection.closed and not connection.invalidated:
            if connection.in_transaction():  # a call from inside `SQLStore.transaction()`
                return self._engine.connect(), True
            return connection, False
        connection = self._engine.connect()
        self._local.connection = connection
        with self._lock:
            self._open.add(connection)
        return connection, False


def _close_quietly(connection: Connection) -> None:
    try:
        connection.close()
    except SQLAlchemyError:
        pass


__all__ = ["OpenTransaction", "ThreadConnections"]
