"""Where the store is: `--store`, else `$SWEEPWISE_STORE`, else the spec's, else ./sweepwise.db."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweepwise.stores.sql import SQLStore
    from sweepwise.stores.sqlite_reader import SQLiteReader

DEFAULT_STORE = "sqlite:///sweepwise.db"


def resolve_store_url(cli_value: str | None, spec_value: str | None = None) -> str:
    """The store URL: `--store`, else `$SWEEPWISE_STORE`, else the spec's, else ./sweepwise.db."""
    return cli_value or os.environ.get("SWEEPWISE_STORE") or spec_value or DEFAULT_STORE


# A driver module -> what to install for it (the pip name differs from the module's).
_DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "psycopg[binary]",
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
    from sqlalchemy.exc import NoSuchModuleError

    from sweepwise.core.errors import ConfigError
    from sweepwise.stores._engine import parse_url, sqlite_file

    parsed = parse_url(url)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            "store", f"{parsed.drivername!r} is not a database SQLAlchemy knows; e.g. sqlite:///sweepwise.db"
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


def open_reader(url: str) -> SQLiteReader | SQLStore:
    """Something to read runs from: `sqlite3` directly for a SQLite file, else the full store."""
    from sweepwise.stores.sqlite_reader import SQLiteReader, sqlite_path

    path = sqlite_path(url)
    if path is not None:
        return SQLiteReader(path.absolute())
    from sweepwise.stores.sql import SQLStore

    return SQLStore(url)


__all__ = ["DEFAULT_STORE", "check_store_url", "open_reader", "resolve_store_url"]
