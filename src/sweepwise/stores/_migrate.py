"""Bring a database's schema to `HEAD_REVISION`, importing Alembic only when there is work to do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from sweepwise.core.errors import StoreError
from sweepwise.stores._engine import begin
from sweepwise.stores.schema import HEAD_REVISION

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def current_revision(connection: Connection) -> str | None:
    """The schema revision recorded in `alembic_version`; None when there is no schema yet."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic `Config` for the store's migrations, bound to `connection` if given."""
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates '%': escape it in the path.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


_MIGRATION_LOCK = 0x5357_4545_5057_4953  # PostgreSQL advisory lock key of schema migrations ("SWEEPWIS")


def ensure_schema(engine: Engine, where: str) -> None:
    """Create or upgrade the schema unless it is already at `HEAD_REVISION`.

    The upgrade runs in one write transaction (`BEGIN IMMEDIATE` on SQLite; on PostgreSQL,
    one that first takes a transaction-level advisory lock), so two processes starting
    together on an empty database migrate one after the other: the second finds the
    schema at its head and does nothing.

    Args:
        engine: the store's engine.
        where: the store's URL, for error messages.

    Raises:
        StoreError: the database has a revision this version of sweepwise does not know.
    """
    with engine.connect() as connection:
        if current_revision(connection) == HEAD_REVISION:
            return
        connection.rollback()  # end the check's implicit transaction
        from alembic import command
        from alembic.util import CommandError

        transaction = begin(connection, write=True)
        try:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            command.upgrade(alembic_config(connection), "head")
        except CommandError as exc:
            transaction.rollback()
            raise StoreError(
                f"cannot upgrade the schema of {where}: {exc} (written by a newer sweepwise?)"
            ) from None
        except BaseException:
            transaction.rollback()
            raise
        transaction.commit()


__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "ensure_schema"]
