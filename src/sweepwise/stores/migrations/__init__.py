"""Alembic migrations of the SQL store (run by `sweepwise.stores._migrate`, not imported otherwise)."""
