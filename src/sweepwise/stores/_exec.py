"""Prebuilt statements run straight on the driver's cursor.

The store runs a handful of fixed statements thousands of times per experiment,
one or two rows at a time. Through `Connection.execute` each costs 10-20 µs of
SQLAlchemy bookkeeping against 2-5 µs in SQLite itself, so the controller's tick
paid mostly for the bookkeeping. A `Prepared` statement is still built with
SQLAlchemy (`select()`, `update()`, ...) and compiled by SQLAlchemy for the
connection's dialect, once per dialect and set of parameter names; it is then
executed on the DBAPI cursor of the same connection, inside the transaction
that SQLAlchemy begins and commits. Driver errors are wrapped as SQLAlchemy
would wrap them (and a lost connection is invalidated), so retries and the
mapping to `StoreError` see the same exceptions.

What this skips is type processing, which the store's column types do not need:
its values are str, int, float, bool and None, which every driver binds as they
are; booleans read back from SQLite as 0/1 are converted by the callers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.exc import DBAPIError, ResourceClosedError
from sqlalchemy.sql.expression import ClauseElement


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # parameter names in order, for positional paramstyles
    defaults: dict[str, Any]  # values SQLAlchemy bound itself (literals inside the statement)

    def arguments(self, params: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        if self.positions is None:
            return {**self.defaults, **params} if self.defaults else params
        if self.defaults:
            params = {**self.defaults, **params}
        return tuple([params[name] for name in self.positions])


class Prepared:
    """A statement compiled once per dialect and parameter shape, run on the driver's cursor.

    Args:
        statement: a Core statement whose parameters are `bindparam()`s; for
            INSERT and UPDATE, keys of the parameters that name columns become
            the VALUES / SET clause (as with `Connection.execute`).
    """

    __slots__ = ("_compiled", "_options", "statement")

    def __init__(self, statement: ClauseElement, *, custom_plan: bool = False) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}
        # psycopg prepares a statement on the server after its fifth run, and PostgreSQL may
        # then keep one generic plan for any value: for a range (`seq > $1`) or a list
        # (`= ANY($1)`) that plan scans every run, so a tick would cost more as the table
        # grows. `custom_plan` statements are never prepared: each is planned for its values.
        self._options: dict[str, Any] = {"prepare": False} if custom_plan else {}

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        cache_key = (dialect.name, keys)
        found = self._compiled.get(cache_key)
        if found is None:
            compiled: Any = self.statement.compile(dialect=dialect, column_keys=list(keys))
            defaults = {
                name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
            }
            positions = tuple(compiled.positiontup) if dialect.positional else None
            found = self._compiled[cache_key] = _Compiled(compiled.string, positions, defaults)
        return found

    def _cursor(self, conn: Connection, params: Mapping[str, Any]) -> DBAPICursor | _Rows:
        compiled = self._compile(conn.dialect, tuple(params))
        arguments = compiled.arguments(params)
        cursor: DBAPICursor = _dbapi_connection(conn).cursor()
        pending = conn.info.pop(PENDING, None)
        try:
            if pending:  # the writes waiting, then this statement, in one round trip
                with _pipeline(conn):
                    _send(cursor, pending)
                    cursor.execute(compiled.sql, arguments, **self._driver_options(conn))
                    if cursor.description is not None:
                        rows = list(cursor.fetchall())
                        return _Rows(rows, cursor.rowcount)
            else:
                cursor.execute(compiled.sql, arguments, **self._driver_options(conn))
        except Exception as exc:
            cursor.close()
            _reraise(conn, compiled.sql, arguments, exc)
        return cursor

    def _driver_options(self, conn: Connection) -> dict[str, Any]:
        return self._options if self._options and conn.dialect.driver == "psycopg" else {}

    def later(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Execute a write whose outcome the caller does not read, with the next statement or commit.

        On a server that saves a round trip each (`flush_pending`); SQLite runs it at once.
        """
        if conn.dialect.name == "sqlite":
            self.run(conn, params)
            return
        compiled = self._compile(conn.dialect, tuple(params))
        conn.info.setdefault(PENDING, []).append((compiled.sql, compiled.arguments(params), False))

    def later_many(self, conn: Connection, params: Sequence[Mapping[str, Any]]) -> None:
        """`run_many`, sent as `later` sends one write."""
        if not params:
            return
        if conn.dialect.name == "sqlite":
            self.run_many(conn, params)
            return
        compiled = self._compile(conn.dialect, tuple(params[0]))
        arguments = [compiled.arguments(one) for one in params]
        conn.info.setdefault(PENDING, []).append((compiled.sql, arguments, True))

    def rows(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row (tuples, in the statement's column order)."""
        cursor = self._cursor(conn, params or {})
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row, or None (all rows are read, which SQLite's RETURNING needs)."""
        rows = self.rows(conn, params)
        return rows[0] if rows else None

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Execute a statement without result rows; return the number of rows it matched."""
        cursor = self._cursor(conn, params or {})
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def run_many(self, conn: Connection, params: Sequence[Mapping[str, Any]]) -> None:
        """Execute the statement once per parameter set (all sets share their keys)."""
        if not params:
            return
        compiled = self._compile(conn.dialect, tuple(params[0]))
        arguments: Any = [compiled.arguments(one) for one in params]
        flush_pending(conn)
        cursor = _dbapi_connection(conn).cursor()
        try:
            cursor.executemany(compiled.sql, arguments)
        except Exception as exc:
            _reraise(conn, compiled.sql, arguments, exc)
        finally:
            cursor.close()


class RunLookup:
    """Columns of runs read by id: one run, or many (docs/stores.md, "What keeps a tick cheap on a server").

    SQLite reads in-process, where one primary-key lookup per run beats rendering a list; on
    a server each statement costs a round trip, so many runs are read in one `= ANY(...)`.

    Args:
        columns: the `runs` columns to read, in the order the rows give them.
    """

    __slots__ = ("_many", "_one")

    def __init__(self, columns: Sequence[Any]) -> None:
        from sqlalchemy import String, any_, bindparam, select
        from sqlalchemy.dialects.postgresql import ARRAY

        run_id = columns[0].table.c.run_id
        self._one = Prepared(select(*columns).where(run_id == bindparam("b_run_id")))
        ids = bindparam("b_run_ids", type_=ARRAY(String))
        self._many = Prepared(select(run_id, *columns).where(run_id == any_(ids)), custom_plan=True)

    def one(self, conn: Connection, run_id: str) -> Any:
        """The row of `run_id`, or None."""
        return self._one.first(conn, {"b_run_id": run_id})

    def many(self, conn: Connection, run_ids: Sequence[str]) -> dict[str, Any]:
        """The rows of the runs of `run_ids` that exist, by run id, in the order asked."""
        unique = list(dict.fromkeys(run_ids))
        if conn.dialect.name != "postgresql" or len(unique) < 2:
            found = {run_id: self.one(conn, run_id) for run_id in unique}
        else:
            found = {row[0]: tuple(row[1:]) for row in self._many.rows(conn, {"b_run_ids": unique})}
        return {run_id: found[run_id] for run_id in unique if found.get(run_id) is not None}


PENDING = "sweepwise.pending"
"""Key in `Connection.info` of the writes `Prepared.later` holds for the next round trip."""


class _Rows:
    """A cursor's rows read inside a pipeline, served as the cursor would serve them."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchall(self) -> list[Any]:
        return self._rows

    def close(self) -> None:
        pass


def _pipeline(conn: Connection) -> Any:
    return _dbapi_connection(conn).pipeline()  # psycopg 3


def _send(cursor: DBAPICursor, pending: list[tuple[str, Any, bool]]) -> None:
    for sql, arguments, many in pending:
        if many:
            cursor.executemany(sql, arguments)
        else:
            cursor.execute(sql, arguments)


def flush_pending(conn: Connection, then: Callable[[], object] | None = None) -> None:
    """Send the writes `Prepared.later` holds, and `then()` (the commit), in one round trip.

    Raises:
        sqlalchemy.exc.DBAPIError: a write failed (the transaction is then aborted).
    """
    pending = conn.info.pop(PENDING, None)
    if not pending:
        if then is not None:
            then()
        return
    cursor = _dbapi_connection(conn).cursor()
    try:
        with _pipeline(conn):
            _send(cursor, pending)
            if then is not None:
                then()
    except Exception as exc:
        _reraise(conn, pending[0][0], pending[0][1], exc)
    finally:
        cursor.close()


def discard_pending(conn: Connection) -> None:
    """Forget the writes `later` holds (the transaction rolls back)."""
    conn.info.pop(PENDING, None)


def _dbapi_connection(conn: Connection) -> DBAPIConnection:
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is None:  # only after invalidation, which discards the connection
        raise ResourceClosedError("the connection was invalidated")
    return dbapi_connection


def _reraise(conn: Connection, sql: str, arguments: Any, exc: Exception) -> NoReturn:
    """Raise `exc` as SQLAlchemy would have; a lost connection is invalidated."""
    dialect = conn.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    if not isinstance(exc, dbapi_error):
        raise exc
    lost = dialect.is_disconnect(exc, _dbapi_connection(conn), None)
    if lost:
        conn.invalidate(exc)
    raise DBAPIError.instance(
        sql, arguments, exc, dbapi_error, connection_invalidated=lost, dialect=dialect
    ) from exc


__all__ = ["PENDING", "Prepared", "RunLookup", "discard_pending", "flush_pending"]
