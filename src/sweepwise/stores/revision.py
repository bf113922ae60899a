"""The store's newest schema revision, importable without SQLAlchemy (the lean read path needs it)."""

from __future__ import annotations

HEAD_REVISION = "0003_stopped"
"""The newest schema revision; a database already at it skips Alembic entirely."""

__all__ = ["HEAD_REVISION"]
