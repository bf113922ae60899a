"""Alembic environment of the SQL store.

`sweepwise.stores._migrate` runs it with the store's own connection in
`config.attributes["connection"]`; with `alembic -x url=...` or a
`sqlalchemy.url` option it opens its own (for generating new revisions).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sweepwise.stores.schema import Base

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass -x url=sqlite:///sweepwise.db")
    return url


def _run_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # The caller owns the connection and its transaction: it commits.
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url())
    try:
        with engine.begin() as own:
            context.configure(connection=own, target_metadata=Base.metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
