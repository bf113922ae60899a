"""Attempts and incarnations: a run's train / eval attempt numbers, an experiment's incarnation id.

Revision ID: 0002_attempts
Revises: 0001_initial
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_attempts"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("train_attempt", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("eval_attempt", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("incarnation", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("incarnation")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("eval_attempt")
        batch.drop_column("train_attempt")
