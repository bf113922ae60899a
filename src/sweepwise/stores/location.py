"""Where the store is and what opens it.

The URL: `--store`, else `$SWEEPWISE_STORE`, else the spec's, else ./sweepwise.db. The
URL's scheme picks the store from a registry (`sweepwise.core.registry.Registry`):
`sqlite`, `postgresql` and `mysql` (with any `+driver`) are `SQLStore`, as is any other
URL SQLAlchemy knows; `wandb://ENTITY/PROJECT` is `WandbStore` (docs/stores.md,
"WandbStore"); `register_store("myscheme")` or an entry point in the group
`sweepwise.stores` adds another (docs/backends.md, "Plug-in door").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sweepwise.core.registry import Registry, qualified_name

if TYPE_CHECKING:
    from sweepwise.stores.sql import SQLStore
    from sweepwise.stores.sqlite_reader import LeanReader

DEFAULT_STORE = "sqlite:///sweepwise.db"

StoreFactory = Callable[[str], Any]
"""Builds a store from its URL: `factory(url)`."""

_F = TypeVar("_F", bound=StoreFactory)
_SQL_STORE = "sweepwise.stores.sql.SQLStore"

STORES: Registry[StoreFactory] = Registry(
    "store",
    field="store",
    group="sweepwise.stores",
    builtins={
        **{scheme: "sweepwise.stores.sql" for scheme in ("mysql", "postgresql", "sqlite")},
        "wandb": "sweepwise.stores.wandb_store",  # docs/stores.md, "WandbStore"
    },
)
"""The store registry, by URL scheme."""


def register_store(scheme: str, *, replace: bool = False) -> Callable[[_F], _F]:
    """Register a store class (or factory) for URLs `scheme://...`.

    It is built as `factory(url)` with the whole URL. The CLI uses it as it uses
    `SQLStore`: it must offer the same methods (`ExperimentStore`, plus `exists`,
    `ensure_experiment`, `list_experiments`, `close` and `url`).

    Example:
        >>> @register_store("memo")
        ... class MemoStore: ...

    Args:
        scheme: the URL scheme, without `://` (`memo` for `memo://...`).
        replace: replace a built-in or an already registered store of that scheme.

    Raises:
        ValueError: the scheme is taken and `replace` is False.
    """
    return STORES.decorator(scheme, replace=replace)


def available_stores() -> list[str]:
    """The URL schemes with a registered store (built-in, registered and entry points), sorted."""
    return STORES.names()


def store_factory(url: str) -> StoreFactory | None:
    """The store registered for `url`'s scheme (`postgresql+psycopg` falls back to `postgresql`).

    Returns None when no store is registered for it: `SQLStore` then opens any URL SQLAlchemy knows.
    """
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        return None
    for name in dict.fromkeys((scheme, scheme.split("+", 1)[0])):
        factory = STORES.find(name)
        if factory is not None:
            return factory
    return None


def _is_sql_store(factory: StoreFactory | None) -> bool:
    return factory is None or qualified_name(factory) == _SQL_STORE


def open_store(url: str) -> SQLStore:
    """The store at `url`, built by the store registered for its scheme (else `SQLStore`).

    Nothing is created or connected to until the store's first operation.
    """
    factory = store_factory(url)
    if factory is None or _is_sql_store(factory):
        from sweepwise.stores.sql import SQLStore

        return SQLStore(url)
    return cast("SQLStore", factory(url))


def resolve_store_url(cli_value: str | None, spec_value: str | None = None) -> str:
    """The store URL: `--store`, else `$SWEEPWISE_STORE`, else the spec's, else ./sweepwise.db."""
    return cli_value or os.environ.get("SWEEPWISE_STORE") or spec_value or DEFAULT_STORE


# A driver module -> what to install for it (the pip name differs from the module's).
_DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "sweepwise[postgres]",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
    "asyncpg": "asyncpg",
}


def check_store_url(url: str) -> None:
    """Check, without connecting or creating anything, that the store at `url` can be opened.

    The URL must parse, its database driver must be installed and, for a SQLite file,
    the file's directory must exist.

    Raises:
        ConfigError: one of these fails; the message says what to fix (or install).
    """
    factory = store_factory(url)
    if not _is_sql_store(factory):
        check = getattr(factory, "check_url", None)  # else a plug-in store checks its URL when it opens
        if check is not None:
            check(url)
        return
    from sqlalchemy.exc import NoSuchModuleError

    from sweepwise.core.errors import ConfigError
    from sweepwise.stores._engine import parse_url, sqlite_file

    parsed = parse_url(url)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            "store",
            f"{parsed.drivername!r} is neither a database SQLAlchemy knows nor a registered store "
            f"({', '.join(available_stores())}); e.g. sqlite:///sweepwise.db",
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = (exc.name or parsed.get_driver_name()).split(".")[0]
        package = _DRIVER_PACKAGES.get(module, module)
        raise ConfigError(
            "store",
            f"the {parsed.get_backend_name()} driver {module} is not installed; run pip install '{package}'",
        ) from None
    path = sqlite_file(parsed)
    if path is not None:
        directory = path.absolute().parent
        if not directory.is_dir():
            raise ConfigError(
                "store", f"directory {directory} does not exist; create it or fix the store URL"
            )
        if path.exists() and not path.is_file():
            raise ConfigError("store", f"{path} is not a file; give the path of a SQLite database file")


def open_reader(url: str) -> LeanReader | SQLStore:
    """Something to read runs from: the bare driver for a SQLite file or PostgreSQL, else the full store.

    A store whose schema is not at the head revision is read through the full store,
    which upgrades it first (docs/stores.md, "Upgrades").
    """
    from sweepwise.stores.sqlite_reader import PostgresReader, SQLiteReader, postgres_conninfo, sqlite_path

    reader: LeanReader | None = None
    path = sqlite_path(url)
    conninfo = postgres_conninfo(url)
    if path is not None and _is_sql_store(STORES.registered("sqlite")):  # importing nothing
        reader = SQLiteReader(path.absolute())
        if not path.is_file():
            return reader
    elif conninfo is not None and _is_sql_store(STORES.registered("postgresql")) and _has_module("psycopg"):
        reader = PostgresReader(conninfo)
    if reader is not None:
        if not reader.exists() or reader.at_head():
            return reader
        reader.close()
    return open_store(url)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


__all__ = [
    "DEFAULT_STORE",
    "STORES",
    "StoreFactory",
    "available_stores",
    "check_store_url",
    "open_reader",
    "open_store",
    "register_store",
    "resolve_store_url",
    "store_factory",
]
