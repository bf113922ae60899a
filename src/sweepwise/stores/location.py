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


def open_reader(url: str) -> SQLiteReader | SQLStore:
    """Something to read runs from: `sqlite3` directly for a SQLite file, else the full store."""
    from sweepwise.stores.sqlite_reader import SQLiteReader, sqlite_path

    path = sqlite_path(url)
    if path is not None:
        return SQLiteReader(path.absolute())
    from sweepwise.stores.sql import SQLStore

    return SQLStore(url)


__all__ = ["DEFAULT_STORE", "open_reader", "resolve_store_url"]
