"""The SQL store's tables, as SQLAlchemy 2 declarative models.

The Alembic migrations in `migrations/versions/` create exactly these tables;
`tests/test_sql_store.py` checks that the two agree. Change both together, in a
new migration, bump `HEAD_REVISION` (in `revision.py`) and save a database of
the new revision for the upgrade tests (`tests/schema_fixtures/make.py`).

The store writes every column explicitly (no Python-side defaults: its hot
statements run on the driver's cursor, see `_exec.py`).

All times are UTC seconds since the epoch (floats): portable across SQLite and
PostgreSQL, ordered, and cheap to turn into the timezone-aware datetimes that
`RunInfo` carries. JSON columns are plain text written with `json.dumps`.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sweepwise.stores.revision import HEAD_REVISION

# Named constraints, so later migrations can alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ExperimentRow(Base):
    """One experiment: its spec, status and update-sequence counter."""

    __tablename__ = "experiments"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    spec: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    # Bumped once by every transaction that changes runs of this experiment.
    last_seq: Mapped[int] = mapped_column(Integer)
    # A new id each time an experiment of this name is created: run directories carry it,
    # so files of another store's (or an earlier) experiment are never taken as ours.
    incarnation: Mapped[str | None] = mapped_column(String(64))


class RunRow(Base):
    """One run (trial): its flags, denormalised status, jobs and summary."""

    __tablename__ = "runs"
    __table_args__ = (
        # fetch_changed: a range scan of (experiment, seq > since).
        Index("ix_runs_experiment_seq", "experiment", "seq"),
        # count_by_status and status filters.
        Index("ix_runs_experiment_status", "experiment", "status"),
        # fetch_runs ordering and max_trial_index.
        Index("ix_runs_experiment_trial_index", "experiment", "trial_index"),
    )

    run_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    experiment: Mapped[str] = mapped_column(String(255), ForeignKey("experiments.name", ondelete="CASCADE"))
    trial_index: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    has_started_training: Mapped[bool] = mapped_column(Boolean)
    has_completed_training: Mapped[bool] = mapped_column(Boolean)
    has_started_eval: Mapped[bool] = mapped_column(Boolean)
    has_been_evaluated: Mapped[bool] = mapped_column(Boolean)
    has_failed: Mapped[bool] = mapped_column(Boolean)
    is_stale: Mapped[bool] = mapped_column(Boolean)
    is_cancelled: Mapped[bool] = mapped_column(Boolean)
    is_stopped: Mapped[bool] = mapped_column(Boolean, server_default=false())  # docs/optimizers.md
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    completed_at: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    last_heartbeat_at: Mapped[float | None] = mapped_column(Float)
    cost: Mapped[float] = mapped_column(Float)
    runtime: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    train_job: Mapped[str | None] = mapped_column(Text)
    eval_job: Mapped[str | None] = mapped_column(Text)
    train_dispatch_id: Mapped[str | None] = mapped_column(String(255))
    eval_dispatch_id: Mapped[str | None] = mapped_column(String(255))
    # The current attempt of the run's train / eval job (1 for the first; see lifecycle.py).
    train_attempt: Mapped[int] = mapped_column(Integer, server_default="1")
    eval_attempt: Mapped[int] = mapped_column(Integer, server_default="1")


class JobEventRow(Base):
    """One job event (heartbeats and metrics are not kept: they only update the run)."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("runs.run_id", ondelete="CASCADE"), index=True
    )
    job_type: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[float] = mapped_column(Float)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[str | None] = mapped_column(Text)


class SchedulerStateRow(Base):
    """The scheduler state of one experiment (no foreign key: it may come first)."""

    __tablename__ = "scheduler_state"

    experiment: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float)


class LeaseRow(Base):
    """Which controller runs an experiment, until when (taken before the experiment row exists)."""

    __tablename__ = "leases"

    experiment: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


# Core handles for the hot paths: statements on Tables skip the ORM's compile step.
EXPERIMENTS = cast(Table, ExperimentRow.__table__)
RUNS = cast(Table, RunRow.__table__)
JOB_EVENTS = cast(Table, JobEventRow.__table__)
SCHEDULER_STATE = cast(Table, SchedulerStateRow.__table__)
LEASES = cast(Table, LeaseRow.__table__)

__all__ = [
    "EXPERIMENTS",
    "HEAD_REVISION",
    "JOB_EVENTS",
    "LEASES",
    "RUNS",
    "SCHEDULER_STATE",
    "Base",
    "ExperimentRow",
    "JobEventRow",
    "LeaseRow",
    "RunRow",
    "SchedulerStateRow",
]
