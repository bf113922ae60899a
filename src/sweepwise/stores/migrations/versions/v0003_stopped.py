"""Early stopping: a run's `is_stopped` flag (its stopper ended it; its status is STOPPED).

Revision ID: 0003_stopped
Revises: 0002_attempts
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_stopped"
down_revision = "0002_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("is_stopped", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("is_stopped")
