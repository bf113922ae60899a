"""The initial schema: experiments, runs, job events, scheduler state, leases.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_experiments"),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("experiment", sa.String(255), nullable=False),
        sa.Column("trial_index", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("has_started_training", sa.Boolean(), nullable=False),
        sa.Column("has_completed_training", sa.Boolean(), nullable=False),
        sa.Column("has_started_eval", sa.Boolean(), nullable=False),
        sa.Column("has_been_evaluated", sa.Boolean(), nullable=False),
        sa.Column("has_failed", sa.Boolean(), nullable=False),
        sa.Column("is_stale", sa.Boolean(), nullable=False),
        sa.Column("is_cancelled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("last_heartbeat_at", sa.Float(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("runtime", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("train_job", sa.Text(), nullable=True),
        sa.Column("eval_job", sa.Text(), nullable=True),
        sa.Column("train_dispatch_id", sa.String(255), nullable=True),
        sa.Column("eval_dispatch_id", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment"],
            ["experiments.name"],
            name="fk_runs_experiment_experiments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_experiment_seq", "runs", ["experiment", "seq"])
    op.create_index("ix_runs_experiment_status", "runs", ["experiment", "status"])
    op.create_index("ix_runs_experiment_trial_index", "runs", ["experiment", "trial_index"])
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("job_type", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_job_events_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_job_events"),
    )
    op.create_index("ix_job_events_run_id", "job_events", ["run_id"])
    op.create_table(
        "scheduler_state",
        sa.Column("experiment", sa.String(255), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("experiment", name="pk_scheduler_state"),
    )
    op.create_table(
        "leases",
        sa.Column("experiment", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("experiment", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("scheduler_state")
    op.drop_index("ix_job_events_run_id", table_name="job_events")
    op.drop_table("job_events")
    op.drop_index("ix_runs_experiment_trial_index", table_name="runs")
    op.drop_index("ix_runs_experiment_status", table_name="runs")
    op.drop_index("ix_runs_experiment_seq", table_name="runs")
    op.drop_table("runs")
    op.drop_table("experiments")
