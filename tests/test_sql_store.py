"""SQLStore against real databases: SQLite files in tmp_path, and a real PostgreSQL server.

Backend-independent tests take the `store` (or `store_url`) fixture, which runs them on
every backend (`store_url`'s params); SQLite-specific ones take `sqlite_url`. PostgreSQL is the
session's own server (tests/postgres_server.py, started by the `postgres_server` fixture
in conftest.py; each test gets a fresh database there); its cases run in the full suite.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from conftest import fresh_postgres_database
from sweepwise.core import keys
from sweepwise.core.errors import ConfigError, StoreError
from sweepwise.core.lifecycle import RetryPolicy
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobStatus, JobTypes, RunInfo
from sweepwise.stores import ExperimentRecord, SQLStore

TRAIN = JobTypes.LAUNCH_TRAINING
EVAL = JobTypes.LAUNCH_EVAL


def _sqlite(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.slow), "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, on each backend."""
    if request.param == "sqlite":
        yield from _sqlite(tmp_path)
    else:
        yield from fresh_postgres_database(request.getfixturevalue("postgres_server").url)


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    """An empty store, closed after the test."""
    opened = SQLStore(store_url)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite URL whose file does not exist yet."""
    return f"sqlite:///{tmp_path / 'sub' / 'store.db'}"


def train_job(run_id: str, **overrides: Any) -> JobDefinition:
    return JobDefinition(run_id=run_id, cmd=["python", "train.py"], overrides=overrides)


def eval_job(run_id: str) -> JobDefinition:
    return JobDefinition(run_id=run_id, cmd=["python", "eval.py"], type=EVAL, args={"policy_uri": "x"})


def event(run_id: str, kind: EventKind, at: float, job_type: JobTypes = TRAIN, **fields: Any) -> JobEvent:
    return JobEvent(run_id=run_id, job_type=job_type, kind=kind, at=at, **fields)


def started_run(store: SQLStore, run_id: str = "r1", experiment: str = "exp", at: float = 100.0) -> None:
    store.record_training_intent(experiment, train_job(run_id, x=1), {"x": 1}, 0)
    store.apply_events([event(run_id, EventKind.STARTED, at)])


def run(store: SQLStore, run_id: str) -> RunInfo:
    (found,) = store.fetch_runs({"run_id": run_id})
    return found


def experiment(store: SQLStore, name: str) -> ExperimentRecord:
    record = store.get_experiment(name)
    assert record is not None
    return record


def status_column(store: SQLStore) -> dict[str, str]:
    with store.transaction() as tx:
        return {row[0]: row[1] for row in tx.connection.execute(text("SELECT run_id, status FROM runs"))}


# -- engine, schema, migrations -----------------------------------------------------------


def test_nothing_is_created_before_first_use(sqlite_url: str, tmp_path: Path) -> None:
    store = SQLStore(sqlite_url)
    assert store.url == sqlite_url
    assert not store.exists()
    assert not (tmp_path / "sub").exists()
    store.ensure_experiment("exp", {"a": 1})
    assert (tmp_path / "sub" / "store.db").is_file()
    assert store.exists()
    store.close()


def test_bad_settings_are_config_errors(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match="sqlite_synchronous"):
        SQLStore(sqlite_url, sqlite_synchronous="sometimes")
    with pytest.raises(ConfigError, match="not a database URL"):
        SQLStore("::nonsense::")


def test_default_url_is_env_var_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWEEPWISE_STORE", raising=False)
    assert SQLStore().url == f"sqlite:///{tmp_path / 'sweepwise.db'}"
    monkeypatch.setenv("SWEEPWISE_STORE", "sqlite:///other.db")
    assert SQLStore().url == f"sqlite:///{tmp_path / 'other.db'}"


@pytest.mark.parametrize("synchronous, expected", [("NORMAL", 1), ("full", 2)])
def test_sqlite_connection_settings(sqlite_url: str, synchronous: str, expected: int) -> None:
    store = SQLStore(sqlite_url, sqlite_synchronous=synchronous)
    with store.transaction() as tx:
        pragma = {
            name: tx.connection.execute(text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": expected,
        "busy_timeout": 10_000,
        "foreign_keys": 1,
    }
    store.close()


def test_migration_matches_the_models(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from sweepwise.stores._migrate import alembic_config
    from sweepwise.stores.schema import HEAD_REVISION, Base

    store = SQLStore(store_url)
    store.list_experiments()
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION
    engine = create_engine(store_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()
    store.close()


def test_an_up_to_date_store_opens_without_alembic(store_url: str) -> None:
    SQLStore(store_url).ensure_experiment("exp", {})
    code = textwrap.dedent(
        f"""
        import json, sys
        import sweepwise.stores
        light = "sqlalchemy" not in sys.modules and "alembic" not in sys.modules
        store = sweepwise.stores.SQLStore({store_url!r})
        names = [e.name for e in store.list_experiments()]
        print(json.dumps({{"light": light, "alembic": "alembic" in sys.modules, "names": names}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"light": True, "alembic": False, "names": ["exp"]}


def test_a_second_store_on_the_same_database_sees_the_data(store_url: str) -> None:
    first = SQLStore(store_url)
    first.ensure_experiment("exp", {"k": [1, 2]})
    first.init_run("r1", group="exp", initial_summary={"a": 1})
    second = SQLStore(store_url)
    assert second.exists()
    assert second.get_experiment("exp") is not None
    assert [r.summary for r in second.fetch_runs({"group": "exp"})] == [{"a": 1}]
    second.update_run_summary("r1", {"b": 2})
    assert run(first, "r1").summary == {"a": 1, "b": 2}
    first.close()
    second.close()


def test_locks_and_lost_connections_are_retried_other_errors_are_not() -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError

    from sweepwise.stores._engine import is_transient

    def wrapped(kind: type[Exception], message: str) -> Exception:
        return kind("SELECT 1", {}, sqlite3.OperationalError(message))

    assert is_transient(wrapped(OperationalError, "database is locked"))
    assert is_transient(wrapped(OperationalError, "database table is locked: runs"))
    assert not is_transient(wrapped(OperationalError, "no such table: runs"))
    assert not is_transient(wrapped(IntegrityError, "UNIQUE constraint failed"))
    assert not is_transient(ValueError("nope"))


def test_driver_errors_become_one_line_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database, " * 100)
    store = SQLStore(f"sqlite:///{path}")
    with pytest.raises(StoreError) as info:
        store.list_experiments()
    assert "\n" not in str(info.value)
    assert "garbage.db" in str(info.value)


# -- seed API ---------------------------------------------------------------------------------


def test_init_run_creates_a_pending_run_once(store: SQLStore) -> None:
    store.init_run("r1", group="exp", tags=["a"], initial_summary={"x": 1, keys.OBSERVATION_COST: 2.5})
    store.init_run("r1", group="exp", tags=["b"], initial_summary={"x": 2})  # no-op
    store.init_run("r2", group="exp")
    r1 = run(store, "r1")
    assert (r1.status, r1.group, r1.tags, r1.summary["x"], r1.cost) == (
        JobStatus.PENDING,
        "exp",
        ["a"],
        1,
        2.5,
    )
    assert r1.created_at is not None and r1.created_at.tzinfo is UTC
    assert store.get_experiment("exp") is not None
    assert store.max_trial_index("exp") == 1
    assert [r.run_id for r in store.fetch_runs({"group": "exp"})] == ["r1", "r2"]
    with pytest.raises(ValueError, match="group"):
        store.init_run("r3")


def test_fetch_runs_filters(store: SQLStore) -> None:
    for index in range(4):
        store.record_training_intent("exp", train_job(f"r{index}"), {}, 3 - index)  # trial order: r3..r0
    store.init_run("other", group="exp2")
    store.apply_events([event("r1", EventKind.STARTED, 1.0)])
    assert [r.run_id for r in store.fetch_runs({"group": "exp"})] == ["r3", "r2", "r1", "r0"]
    assert [r.run_id for r in store.fetch_runs({"run_id": ["r0", "other"]})] == ["other", "r0"]
    assert [r.run_id for r in store.fetch_runs({"status": JobStatus.IN_TRAINING})] == ["r1"]
    assert len(store.fetch_runs({"group": "exp", "status": ["PENDING", JobStatus.COMPLETED]})) == 3
    seq = run(store, "r1").seq
    assert [r.run_id for r in store.fetch_runs({"group": "exp", "since_seq": seq - 1})] == ["r1"]
    assert len(store.fetch_runs({})) == 5
    with pytest.raises(ValueError, match="'experiment'"):
        store.fetch_runs({"experiment": "exp"})
    with pytest.raises(ValueError, match="'RUNNING'"):
        store.fetch_runs({"status": "RUNNING"})


def test_update_run_summary_merges(store: SQLStore) -> None:
    store.init_run("r1", group="exp", initial_summary={"a": 1, "b": {"c": 2}})
    assert store.update_run_summary("r1", {"b": 3, keys.OBSERVATION_COST: 7})
    assert not store.update_run_summary("missing", {"a": 1})
    r1 = run(store, "r1")
    assert (r1.summary, r1.cost) == ({"a": 1, "b": 3, keys.OBSERVATION_COST: 7}, 7.0)
    with pytest.raises(TypeError, match="JSON"):
        store.update_run_summary("r1", {"bad": object()})
    assert run(store, "r1").summary == r1.summary


# -- experiments ---------------------------------------------------------------------------------


def test_experiments(store: SQLStore) -> None:
    assert store.get_experiment("exp") is None
    created = store.ensure_experiment("exp", {"spec": {"x": 1}})
    assert isinstance(created, ExperimentRecord)
    assert (created.spec, created.status, created.last_seq) == ({"spec": {"x": 1}}, "running", 0)
    assert store.ensure_experiment("exp", {"other": 2}) == created  # unchanged
    store.ensure_experiment("exp2", {})
    store.set_experiment_status("exp", "complete")
    assert experiment(store, "exp").status == "complete"
    assert [e.name for e in store.list_experiments()] == ["exp", "exp2"]
    with pytest.raises(ValueError, match="'nope'"):
        store.set_experiment_status("nope", "complete")


# -- intents, dispatch ids, compare-and-set ---------------------------------------------------------------


def test_training_intent_and_dispatch_id(store: SQLStore) -> None:
    job = train_job("r1", lr=0.1)
    store.record_training_intent("exp", job, {"lr": 0.1}, 7)
    store.record_training_intent("exp", train_job("r1", lr=0.5), {"lr": 0.5}, 8)  # no-op
    r1 = run(store, "r1")
    assert (r1.status, r1.train_job, r1.suggestion, r1.train_dispatch_id) == (
        JobStatus.PENDING,
        job,
        {"lr": 0.1},
        None,
    )
    assert r1.created_at == job.created_at
    assert store.max_trial_index("exp") == 7
    store.record_dispatch_id("r1", TRAIN, "pid-1")
    assert run(store, "r1").train_dispatch_id == "pid-1"
    with pytest.raises(ValueError, match="training"):
        store.record_training_intent("exp", eval_job("r2"), {}, 0)
    with pytest.raises(ValueError, match="'nope'"):
        store.record_dispatch_id("nope", TRAIN, "x")


def test_eval_intent(store: SQLStore) -> None:
    started_run(store)
    store.apply_events([event("r1", EventKind.FINISHED, 110.0, exit_code=0)])
    job = eval_job("r1")
    store.record_eval_intent(job)
    r1 = run(store, "r1")
    assert (r1.status, r1.has_started_eval, r1.eval_job, r1.eval_dispatch_id) == (
        JobStatus.IN_EVAL,
        True,
        job,
        None,
    )
    store.record_dispatch_id("r1", EVAL, "pid-2")
    store.record_eval_intent(eval_job("r1"))  # already started: keeps the dispatch id
    assert run(store, "r1").eval_dispatch_id == "pid-2"
    with pytest.raises(ValueError, match="eval"):
        store.record_eval_intent(train_job("r1"))
    with pytest.raises(ValueError, match="'nope'"):
        store.record_eval_intent(eval_job("nope"))


def test_compare_and_set_transitions(store: SQLStore) -> None:
    for run_id in ("a", "b", "c"):
        started_run(store, run_id)
    assert store.mark_stale("a", "no heartbeat")
    assert not store.mark_stale("a", "again")
    assert (run(store, "a").status, run(store, "a").error) == (JobStatus.STALE, "no heartbeat")
    assert not store.cancel_run("a")  # finished
    assert store.cancel_run("b")
    assert not store.cancel_run("b")
    assert not store.mark_failed("b", "too late")
    assert run(store, "b").status is JobStatus.CANCELLED
    store.apply_events([event("c", EventKind.FINISHED, 5.0, exit_code=0)])
    store.record_eval_intent(eval_job("c"))
    store.apply_events([event("c", EventKind.FINISHED, 6.0, EVAL, exit_code=0, result={"score": 1})])
    assert run(store, "c").status is JobStatus.COMPLETED
    assert not store.mark_stale("c", "completed runs do not go stale")
    assert store.mark_failed("c", "metric missing")  # a rejected result
    assert not store.mark_failed("c", "twice")
    assert (run(store, "c").status, run(store, "c").error) == (JobStatus.FAILED, "metric missing")
    assert not store.mark_failed("nope", "x") and not store.cancel_run("nope")
    assert status_column(store) == {"a": "STALE", "b": "CANCELLED", "c": "FAILED"}


# -- apply_events ------------------------------------------------------------------------------------


def test_started_train(store: SQLStore) -> None:
    store.record_training_intent("exp", train_job("r1"), {}, 0)
    assert store.apply_events([event("r1", EventKind.STARTED, 100.0, dispatch_id="d")]) == ["r1"]
    r1 = run(store, "r1")
    assert (r1.status, r1.started_at) == (JobStatus.IN_TRAINING, datetime.fromtimestamp(100.0, UTC))
    assert store.apply_events([event("r1", EventKind.STARTED, 101.0)]) == []  # replayed
    events = store.fetch_job_events("r1")
    assert [(e["kind"], e["job_type"], e["at"], e["payload"]) for e in events] == [
        ("started", "launch_training", 100.0, {"dispatch_id": "d"})
    ]


def test_heartbeat_and_metrics_update_the_run_but_are_not_logged(store: SQLStore) -> None:
    started_run(store)
    changed = store.apply_events(
        [
            event("r1", EventKind.HEARTBEAT, 120.0),
            event("r1", EventKind.METRICS, 121.0, metrics={"step": 3, "loss": 0.5}),
            event("r1", EventKind.METRICS, 122.0, metrics={"step": 4, "loss": 0.4}),
        ]
    )
    assert changed == ["r1"]
    r1 = run(store, "r1")
    assert r1.last_heartbeat_at == datetime.fromtimestamp(120.0, UTC)
    assert (r1.summary["train/metrics"], r1.summary["train/step"]) == ({"step": 4, "loss": 0.4}, 4)
    assert store.apply_events([event("r1", EventKind.HEARTBEAT, 110.0)]) == []  # older: no change
    assert [e["kind"] for e in store.fetch_job_events("r1")] == ["started"]


@pytest.mark.parametrize("given_start", [None, 95.0])
def test_finished_train_success(store: SQLStore, given_start: float | None) -> None:
    started_run(store, at=100.0)
    finished = event(
        "r1", EventKind.FINISHED, 130.0, exit_code=0, result={"loss": 0.1}, started_at=given_start
    )
    assert store.apply_events([finished]) == ["r1"]
    r1 = run(store, "r1")
    runtime = 130.0 - (given_start or 100.0)
    assert (r1.status, r1.has_completed_training, r1.runtime) == (
        JobStatus.TRAINING_DONE_NO_EVAL,
        True,
        runtime,
    )
    assert {k: r1.summary[k] for k in (keys.TRAIN_RESULT, keys.TRAIN_EXIT_CODE, keys.TRAIN_RUNTIME)} == {
        keys.TRAIN_RESULT: {"loss": 0.1},
        keys.TRAIN_EXIT_CODE: 0,
        keys.TRAIN_RUNTIME: runtime,
    }
    seq = run(store, "r1").seq
    assert store.apply_events([finished]) == []  # idempotent
    assert store.apply_events([event("r1", EventKind.STARTED, 140.0)]) == []  # job already finished
    assert run(store, "r1").seq == seq
    assert [e["kind"] for e in store.fetch_job_events("r1")] == ["started", "finished"]


def test_finished_train_without_started_event_or_result(store: SQLStore) -> None:
    store.record_training_intent("exp", train_job("r1"), {}, 0)
    store.apply_events([event("r1", EventKind.FINISHED, 50.0, exit_code=0)])
    r1 = run(store, "r1")
    assert (r1.status, r1.summary[keys.TRAIN_RESULT], r1.runtime) == (
        JobStatus.TRAINING_DONE_NO_EVAL,
        {},
        0.0,
    )


def test_finished_eval_success(store: SQLStore) -> None:
    started_run(store)
    store.apply_events([event("r1", EventKind.FINISHED, 110.0, exit_code=0)])
    store.record_eval_intent(eval_job("r1"))
    assert store.apply_events([event("r1", EventKind.STARTED, 200.0, EVAL)]) == []  # only logged
    finished = event("r1", EventKind.FINISHED, 260.0, EVAL, exit_code=0, result={"score": 0.9})
    assert store.apply_events([finished]) == ["r1"]
    r1 = run(store, "r1")
    assert (r1.status, r1.completed_at) == (JobStatus.COMPLETED, datetime.fromtimestamp(260.0, UTC))
    assert (r1.summary[keys.EVAL_RESULT], r1.summary[keys.EVAL_EXIT_CODE]) == ({"score": 0.9}, 0)
    assert r1.summary[keys.EVAL_RUNTIME] == 60.0
    assert r1.runtime == 10.0  # the training's
    assert store.apply_events([finished]) == []
    kinds = [(e["job_type"], e["kind"]) for e in store.fetch_job_events("r1")]
    assert kinds == [
        ("launch_training", "started"),
        ("launch_training", "finished"),
        ("launch_eval", "started"),
        ("launch_eval", "finished"),
    ]


@pytest.mark.parametrize(
    "exit_code, error, expected_error",
    [
        (3, None, "train job exited with code 3"),
        (0, "result rejected: no score", "result rejected: no score"),
    ],
)
def test_finished_failure(store: SQLStore, exit_code: int, error: str | None, expected_error: str) -> None:
    started_run(store)
    store.apply_events([event("r1", EventKind.FINISHED, 120.0, exit_code=exit_code, error=error)])
    r1 = run(store, "r1")
    assert (r1.status, r1.has_failed, r1.error) == (JobStatus.FAILED, True, expected_error)
    assert r1.summary[keys.TRAIN_EXIT_CODE] == exit_code
    assert store.apply_events([event("r1", EventKind.FINISHED, 121.0, exit_code=0)]) == []
    assert run(store, "r1").status is JobStatus.FAILED


def test_lost_job_is_retried_then_makes_the_run_stale(store: SQLStore) -> None:
    started_run(store)
    assert store.apply_events([event("r1", EventKind.LOST, 150.0, dispatch_id="d")]) == ["r1"]
    r1 = run(store, "r1")
    assert (r1.status, r1.train_attempt, r1.train_dispatch_id) == (JobStatus.PENDING, 2, None)
    ledger = r1.summary[keys.ATTEMPTS]
    assert [(e["job"], e["attempt"], e["reason"]) for e in ledger] == [("train", 1, "lost")]
    late = event("r1", EventKind.FINISHED, 151.0, exit_code=0)  # of attempt 1: ignored
    assert store.apply_events([late]) == []
    store.apply_events(
        [event("r1", EventKind.LOST, 160.0, dispatch_id="d2", attempt=2)], policy=RetryPolicy(max_attempts=2)
    )
    r1 = run(store, "r1")
    assert (r1.status, r1.is_stale) == (JobStatus.STALE, True)
    assert r1.error == "job lost: its process vanished without an exit status"
    assert store.apply_events([event("r1", EventKind.FINISHED, 171.0, exit_code=0, attempt=2)]) == []
    assert [e["kind"] for e in store.fetch_job_events("r1")] == ["started", "lost", "lost"]


def test_events_for_cancelled_or_unknown_runs_change_nothing(store: SQLStore) -> None:
    started_run(store)
    store.cancel_run("r1")
    late = [event("r1", EventKind.FINISHED, 1.0, exit_code=0), event("unknown", EventKind.STARTED, 1.0)]
    assert store.apply_events(late) == []
    assert run(store, "r1").status is JobStatus.CANCELLED
    assert store.apply_events([]) == []


def test_status_column_matches_runinfo_status(store: SQLStore) -> None:
    for index in range(8):
        store.record_training_intent("exp", train_job(f"r{index}"), {}, index)
    store.apply_events(
        [event(f"r{i}", EventKind.STARTED, 1.0) for i in range(1, 8)]
        + [event(f"r{i}", EventKind.FINISHED, 2.0, exit_code=0) for i in range(2, 6)]
        + [event("r6", EventKind.FINISHED, 2.0, exit_code=1), event("r7", EventKind.LOST, 2.0)],
        policy=RetryPolicy(max_attempts=1),
    )
    for run_id in ("r3", "r4", "r5"):
        store.record_eval_intent(eval_job(run_id))
    store.apply_events([event("r4", EventKind.FINISHED, 3.0, EVAL, exit_code=0)])
    store.cancel_run("r5")
    runs = store.fetch_runs({"group": "exp"})
    assert status_column(store) == {r.run_id: r.status.value for r in runs}
    assert len({r.status for r in runs}) == 8  # every status is covered
    assert store.count_by_status("exp") == dict(Counter(r.status.value for r in runs))


# -- update sequence ---------------------------------------------------------------------------------


def test_fetch_changed_returns_only_what_changed(store: SQLStore) -> None:
    for index in range(5):
        store.record_training_intent("exp", train_job(f"r{index}"), {}, index)
    store.init_run("elsewhere", group="exp2")
    runs, seq = store.fetch_changed("exp", 0)
    assert (len(runs), seq) == (5, 5)
    assert store.fetch_changed("exp", seq) == ([], seq)
    assert store.apply_events([event("r1", EventKind.STARTED, 1.0), event("r3", EventKind.STARTED, 1.0)])
    changed, new_seq = store.fetch_changed("exp", seq)
    assert ([r.run_id for r in changed], new_seq) == (["r1", "r3"], seq + 1)  # one bump per transaction
    assert all(r.seq == new_seq for r in changed)
    assert experiment(store, "exp").last_seq == new_seq
    assert store.fetch_changed("unknown", 0) == ([], 0)


# -- transactions ------------------------------------------------------------------------------------


def test_transaction_groups_writes(store: SQLStore) -> None:
    with store.transaction() as tx:
        tx.record_training_intent("exp", train_job("a"), {"x": 1}, 0)
        tx.record_training_intent("exp", train_job("b"), {"x": 2}, 1)
        tx.record_dispatch_id("a", TRAIN, "d-a")
        tx.save_state("exp", {"batch": 1})
        assert [r.run_id for r in tx.fetch_runs({"group": "exp"})] == ["a", "b"]
    runs, seq = store.fetch_changed("exp", 0)
    assert (len(runs), seq, runs[0].train_dispatch_id) == (2, 1, "d-a")
    assert store.load_state("exp") == {"batch": 1}


def test_transaction_rolls_everything_back_on_error(store: SQLStore) -> None:
    store.ensure_experiment("exp", {})
    with pytest.raises(ValueError, match="eval"):
        with store.transaction() as tx:
            tx.record_training_intent("exp", train_job("a"), {}, 0)
            tx.save_state("exp", {"batch": 1})
            tx.record_eval_intent(train_job("a"))  # wrong job type: raises
    assert store.fetch_runs({"group": "exp"}) == []
    assert store.load_state("exp") is None
    assert experiment(store, "exp").last_seq == 0


def test_store_calls_inside_a_transaction_see_only_committed_data(store: SQLStore) -> None:
    with store.transaction() as tx:
        tx.init_run("r1", group="exp")
        assert [r.run_id for r in tx.fetch_runs({"group": "exp"})] == ["r1"]
        assert store.fetch_runs({"group": "exp"}) == []  # another connection: not committed yet
    assert [r.run_id for r in store.fetch_runs({"group": "exp"})] == ["r1"]


def test_threads_share_a_store(store: SQLStore) -> None:
    def work(thread: int) -> None:
        for index in range(25):
            store.init_run(f"t{thread}-{index}", group="exp")
            store.apply_events([event(f"t{thread}-{index}", EventKind.STARTED, 1.0)])

    threads = [threading.Thread(target=work, args=(thread,)) for thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = store.fetch_runs({"group": "exp"})
    assert len(runs) == 100 and {r.status for r in runs} == {JobStatus.IN_TRAINING}
    assert len({r.seq for r in runs}) == 100  # one sequence number per transaction
    assert experiment(store, "exp").last_seq == 200


@pytest.mark.slow
def test_ten_thousand_runs_in_one_transaction(store: SQLStore) -> None:
    n = 10_000
    with store.transaction() as tx:
        for index in range(n):
            tx.record_training_intent("big", train_job(f"run-{index:05d}", x=index), {"x": index}, index)
    runs = store.fetch_runs({"group": "big"})
    assert len(runs) == n and runs[0].run_id == "run-00000" and runs[-1].suggestion == {"x": n - 1}
    assert store.count_by_status("big") == {"PENDING": n}
    changed, seq = store.fetch_changed("big", 0)
    assert (len(changed), seq) == (n, 1)
    store.apply_events([event(f"run-{i:05d}", EventKind.STARTED, 1.0) for i in range(10)])
    changed, _ = store.fetch_changed("big", seq)
    assert len(changed) == 10
    wanted = [f"run-{i:05d}" for i in range(n - 1, 0, -7)]  # several IN-list chunks, reversed
    assert [r.run_id for r in store.fetch_runs({"run_id": wanted})] == sorted(wanted)


# -- scheduler state ---------------------------------------------------------------------------------


def test_state_round_trip(store: SQLStore) -> None:
    assert store.load_state("exp") is None
    state = {"batch": 2, "pending": ["a", "b"], "nested": {"x": [1.5, None, True]}}
    store.save_state("exp", state)
    assert store.load_state("exp") == state
    store.save_state("exp", {"batch": 3, "at": datetime(2025, 1, 2, tzinfo=UTC)})
    assert store.load_state("exp") == {"batch": 3, "at": "2025-01-02T00:00:00+00:00"}


# -- lease -------------------------------------------------------------------------------------------


def test_lease_compare_and_set(store: SQLStore) -> None:
    assert store.lease_holder("exp") is None
    assert store.acquire_lease("exp", "alice", 10.0, now=100.0)
    assert store.acquire_lease("exp", "alice", 10.0, now=101.0)  # re-entrant
    assert not store.acquire_lease("exp", "bob", 10.0, now=105.0)
    assert store.lease_holder("exp") == ("alice", 111.0)
    assert not store.renew_lease("exp", "bob", 10.0, now=106.0)
    assert store.renew_lease("exp", "alice", 10.0, now=106.0)
    assert not store.acquire_lease("exp", "bob", 10.0, now=115.0)  # renewed until 116
    assert store.acquire_lease("exp", "bob", 10.0, now=117.0)  # expired: taken over
    assert not store.renew_lease("exp", "alice", 10.0, now=118.0)
    store.release_lease("exp", "alice")  # not hers: no effect
    assert store.lease_holder("exp") == ("bob", 127.0)
    store.release_lease("exp", "bob")
    assert store.lease_holder("exp") is None
    assert store.acquire_lease("exp", "alice", 10.0, now=200.0)


def _race_for_leases(url: str, owner: str, rounds: int, barrier: Any, results: Any) -> None:
    store = SQLStore(url)
    won = []
    for index in range(rounds):
        barrier.wait(timeout=30)
        won.append(store.acquire_lease(f"exp-{index}", owner, 60.0, now=1000.0))
    store.close()
    results.put((owner, won))


def test_lease_race_between_two_processes(store_url: str) -> None:
    rounds = 20
    store = SQLStore(store_url)
    for index in range(0, rounds, 2):  # half the rounds fight over an expired lease
        assert store.acquire_lease(f"exp-{index}", "gone", 10.0, now=0.0)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [
        context.Process(target=_race_for_leases, args=(store_url, owner, rounds, barrier, results))
        for owner in ("p1", "p2")
    ]
    for worker in workers:
        worker.start()
    outcome = dict(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    for index in range(rounds):
        wins = [owner for owner in ("p1", "p2") if outcome[owner][index]]
        assert len(wins) == 1, f"round {index}: winners {wins}"
        assert store.lease_holder(f"exp-{index}") == (wins[0], 1060.0)
    store.close()


def test_sqlite_file_is_shared_with_plain_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    store = SQLStore(sqlite_url)
    store.init_run("r1", group="exp")
    store.close()
    connection = sqlite3.connect(tmp_path / "sub" / "store.db")
    assert connection.execute("SELECT run_id, status, seq FROM runs").fetchall() == [("r1", "PENDING", 1)]
    connection.close()


# -- the lean readers of `status` and `best` ------------------------------------------------


def test_the_lean_reader_reads_what_the_store_holds(store_url: str) -> None:
    # `status` and `best` read SQLite and PostgreSQL through the bare driver (stores/sqlite_reader.py):
    # every read answers as the full store's does, job definitions aside.
    import dataclasses

    from sweepwise.stores.location import open_reader
    from sweepwise.stores.sqlite_reader import LeanReader

    reader = open_reader(store_url)
    assert isinstance(reader, LeanReader)
    assert not reader.exists()
    store = SQLStore(store_url)
    started_run(store, "r1")
    started_run(store, "r2")
    store.apply_events([event("r2", EventKind.FINISHED, 110.0, exit_code=0, result={"score": 1.0})])
    store.update_run_summary("r2", {"observation/score": 0.5, "note": "<b>&</b>"})
    store.cancel_run("r1")
    store.record_training_intent("other", train_job("o1"), {}, 0)
    store.save_state("exp", {"batch": 3})
    assert reader.exists()
    assert reader.get_experiment("exp") == store.get_experiment("exp")
    assert reader.get_experiment("nope") is None
    assert reader.list_experiments() == store.list_experiments()
    for filters in ({"group": "exp"}, {"group": "exp", "status": "CANCELLED"}, {"run_id": "r2"}):
        expected = [dataclasses.replace(r, train_job=None, eval_job=None) for r in store.fetch_runs(filters)]
        assert reader.fetch_runs(filters) == expected, filters
    assert reader.count_by_status("exp") == store.count_by_status("exp")
    assert reader.load_state("exp") == {"batch": 3}
    assert reader.load_state("other") is None
    reader.close()
    store.close()


def test_dispatch_ids_recorded_together_are_as_if_recorded_one_by_one(store: SQLStore) -> None:
    # The controller records the ids of a tick's jobs together (one read of the runs on a server).
    for run_id in ("r1", "r2", "r3"):
        started_run(store, run_id)
    store.record_eval_intent(eval_job("r3"))
    with store.transaction() as tx:
        tx.record_dispatch_ids([("r1", TRAIN, "d1"), ("r2", TRAIN, "d2"), ("r3", EVAL, "e3")])
    assert [
        (r.run_id, r.train_dispatch_id, r.eval_dispatch_id) for r in store.fetch_runs({"group": "exp"})
    ] == [
        ("r1", "d1", None),
        ("r2", "d2", None),
        ("r3", None, "e3"),
    ]
    _, seq = store.fetch_changed("exp", 0)
    with store.transaction() as tx:  # the same ids again change nothing
        tx.record_dispatch_ids([("r1", TRAIN, "d1"), ("r2", TRAIN, "d2")])
    assert store.fetch_changed("exp", seq) == ([], seq)
    with pytest.raises(ValueError, match="no run 'nope'"), store.transaction() as tx:
        tx.record_dispatch_ids([("r1", TRAIN, "d9"), ("nope", TRAIN, "d0")])
    assert run(store, "r1").train_dispatch_id == "d1"  # nothing of the failed transaction stayed


def test_eval_intents_and_summaries_written_together_are_as_if_written_one_by_one(store: SQLStore) -> None:
    for run_id in ("r1", "r2", "r3"):
        started_run(store, run_id)
        store.apply_events([event(run_id, EventKind.FINISHED, 110.0, exit_code=0, result={"score": 1.0})])
    with store.transaction() as tx:
        tx.record_eval_intents([eval_job("r1"), eval_job("r2")])
        missing = tx.update_run_summaries({"r1": {"a": 1}, "r3": {"observation/cost": 2.5}, "nope": {"a": 2}})
    assert missing == ["nope"]
    runs = {r.run_id: r for r in store.fetch_runs({"group": "exp"})}
    assert [runs[i].has_started_eval for i in ("r1", "r2", "r3")] == [True, True, False]
    assert runs["r1"].eval_job is not None and runs["r1"].eval_job.cmd == ["python", "eval.py"]
    assert runs["r1"].summary["a"] == 1 and runs["r3"].cost == 2.5
    with pytest.raises(ValueError, match="no run 'nope'"), store.transaction() as tx:
        tx.record_eval_intents([eval_job("r3"), eval_job("nope")])
    assert not run(store, "r3").has_started_eval  # nothing of the failed transaction stayed
