"""Stores: where runs, experiments, scheduler state and leases live.

Names load lazily, so `import sweepwise.stores` imports neither SQLAlchemy nor Alembic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweepwise.stores._codec import ExperimentRecord
    from sweepwise.stores._transaction import StoreTransaction
    from sweepwise.stores.file_state import FileStateStore
    from sweepwise.stores.mirrors import MirroredStore
    from sweepwise.stores.sql import SQLStore
    from sweepwise.stores.wandb_store import WandbStore

_EXPORTS: dict[str, str] = {
    "ExperimentRecord": "sweepwise.stores._codec",
    "FileStateStore": "sweepwise.stores.file_state",
    "MirroredStore": "sweepwise.stores.mirrors",
    "SQLStore": "sweepwise.stores.sql",
    "StoreTransaction": "sweepwise.stores._transaction",
    "WandbStore": "sweepwise.stores.wandb_store",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sweepwise.stores' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "ExperimentRecord",
    "FileStateStore",
    "MirroredStore",
    "SQLStore",
    "StoreTransaction",
    "WandbStore",
]
