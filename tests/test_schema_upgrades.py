"""Upgrades proven from saved databases: one of each released schema revision, SQLite and PostgreSQL.

Each saved database (tests/schema_fixtures/, made by its make.py) holds one sweep caught
mid-way by a dead controller. Opened by this version of sweepwise, it must come out at the
head revision with every run as the user left it, and the sweep must go on to completion.
The PostgreSQL cases are slow (the session's server, tests/postgres_server.py).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import EVAL, TRAIN, cli, fresh_postgres_database, markers

FIXTURES = Path(__file__).parent / "schema_fixtures"
SAVED = sorted(path.name.removesuffix(".sqlite.sql") for path in FIXTURES.glob("*.sqlite.sql"))
DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]
ATTEMPTS_REVISION = "0002_attempts"  # the first revision that records attempts

FIXTURE_DIR = "/tmp/sweepwise-fixture"  # where the saved sweep ran (make.py): put in the test's own
WORK = "work"  # the test's directory of the sweep, under tmp_path
Loader = Callable[[str], str]  # a revision -> the URL of a new database holding its saved copy


def _saved(revision: str, dialect: str, work: Path) -> str:
    """The saved database's SQL, its sweep moved to `work` (the directory a user resumes it from)."""
    return (FIXTURES / f"{revision}.{dialect}.sql").read_text().replace(FIXTURE_DIR, str(work))


def _pg_conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_execute(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(_pg_conninfo(url), autocommit=True) as connection:
        connection.execute(sql.encode())  # bytes: the saved file is one script, not a template


@pytest.fixture(params=DIALECTS)
def load(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loader]:
    """Load a saved database into a new SQLite file, or a new database on the session's PostgreSQL server."""
    work = tmp_path / WORK
    work.mkdir()
    if request.param == "sqlite":

        def load_sqlite(revision: str) -> str:
            path = tmp_path / f"{revision}.db"
            with sqlite3.connect(path) as db:
                db.executescript(_saved(revision, "sqlite", work))
            db.close()
            return f"sqlite:///{path}"

        yield load_sqlite
        return
    server = request.getfixturevalue("postgres_server")
    databases: list[Iterator[str]] = []

    def load_postgresql(revision: str) -> str:
        database = fresh_postgres_database(server.url)
        databases.append(database)
        url = next(database)
        _pg_execute(url, _saved(revision, "postgresql", work))
        return url

    yield load_postgresql
    for database in databases:
        next(database, None)  # drops it


def _version(url: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in order: what "left untouched" compares."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = sorted(inspect(connection).get_table_names())
            return {
                table: sorted(tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}")))
                for table in tables
            }
    finally:
        engine.dispose()


def _status(url: str, cwd: Path) -> dict[str, Any]:
    result = cli("status", "exp", "--json", "--store", url, cwd=cwd)  # the quick path first
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _write_sweep(work: Path) -> None:
    """The saved sweep's spec and jobs, in `work`."""
    (work / "train.py").write_text(TRAIN)
    (work / "eval.py").write_text(EVAL)
    (work / "markers").mkdir()
    env = {"MARKERS": str(work / "markers")}
    spec = {
        "name": "exp",
        "max_parallel": 2,
        "monitoring_interval": 1,
        "scheduler": {"type": "batched_synced", "max_trials": 6, "batch_size": 3},
        "optimizer": {"type": "random", "seed": 1},
        "train": {"cmd": ["python", "train.py"], "env": env},
        "eval": {"cmd": ["python", "eval.py"], "env": env},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    (work / "sweep.yaml").write_text(yaml.safe_dump(spec))


def _head() -> str:
    from sweepwise.stores.schema import HEAD_REVISION

    return HEAD_REVISION


def test_every_revision_has_a_saved_database() -> None:
    from alembic.script import ScriptDirectory

    from sweepwise.stores._migrate import alembic_config

    revisions = [script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    assert SAVED == sorted(revisions), "run tests/schema_fixtures/make.py for the new revision"
    for revision in SAVED:
        assert (FIXTURES / f"{revision}.postgresql.sql").is_file()


@pytest.mark.parametrize(
    "revision",
    # the oldest in the fast subset; the others (the newest is the no-op upgrade) in the full suite
    [SAVED[0], *(pytest.param(revision, marks=pytest.mark.slow) for revision in SAVED[1:])],
)
def test_an_old_database_is_upgraded_with_every_run_kept_and_its_sweep_goes_on(
    load: Loader, revision: str, tmp_path: Path
) -> None:
    url = load(revision)
    work = tmp_path / WORK
    status = _status(url, work)  # the first use upgrades the schema
    assert _version(url) == _head()
    runs = {run["run_id"]: run for run in status["runs"]}
    retried = 2 if revision >= ATTEMPTS_REVISION else 1  # trial 4 lost its first job
    seen = {
        run_id: (run["status"], run["suggestion"], run["score"], run["cost"], run["train_attempt"])
        for run_id, run in runs.items()
    }
    assert seen == {
        "exp_trial_0001": ("completed", {"x": 0.5118216247}, 5.118216247, 1.0, 1),
        "exp_trial_0002": ("failed", {"x": 0.950463696326}, None, None, 1),
        "exp_trial_0003": ("cancelled", {"x": 0.448415143332}, None, None, 1),
        "exp_trial_0004": ("in_training", {"x": 0.430881987544}, None, None, retried),
        "exp_trial_0005": ("pending", {"x": 0.301234567891}, None, None, 1),
    }
    assert [runs["exp_trial_0001"][key] for key in ("train_exit_code", "eval_exit_code", "eval_attempt")] == [
        0,
        0,
        1,
    ]
    assert runs["exp_trial_0002"]["error"] == "exit code 3; last output: training diverged: loss is nan"
    assert runs["exp_trial_0002"]["train_exit_code"] == 3
    assert status["status"] == "running"

    # The sweep resumes: the lost and the pending trial train, a sixth one is made.
    _write_sweep(work)
    result = cli("run", "sweep.yaml", "--quiet", "--store", url, cwd=work, timeout=240)
    assert result.returncode == 0, result.stderr
    after = _status(url, work)
    assert after["status"] == "complete"
    statuses = {run["run_id"]: run["status"] for run in after["runs"]}
    assert statuses == {
        "exp_trial_0001": "completed",
        "exp_trial_0002": "failed",
        "exp_trial_0003": "cancelled",
        "exp_trial_0004": "completed",
        "exp_trial_0005": "completed",
        "exp_trial_0006": "completed",
    }
    scores = {run["run_id"]: run["score"] for run in after["runs"]}
    assert scores["exp_trial_0001"] == 5.118216247
    assert scores["exp_trial_0005"] == pytest.approx(3.01234567891)
    assert sorted(markers(work, "train")) == ["exp_trial_0004", "exp_trial_0005", "exp_trial_0006"]


@pytest.mark.slow  # three whole CLI runs; the fast subset keeps the upgrade of the oldest revision
def test_a_newer_revision_is_one_clear_error_and_left_untouched(load: Loader, tmp_path: Path) -> None:
    url = load(SAVED[-1])
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()
    work = tmp_path / WORK
    _write_sweep(work)
    before = _snapshot(url)
    for command in (["status", "exp", "--json"], ["status", "exp"], ["run", "sweep.yaml"]):
        result = cli(*command, "--store", url, cwd=work)
        assert result.returncode != 0, command
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "0099_future" in lines[0] and "newer sweepwise" in lines[0], lines[0]
    assert _snapshot(url) == before


OPEN = textwrap.dedent(
    """
    import logging, os, sys, time
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    import alembic.command  # imported before the start, so both processes race for the migration
    from sweepwise.stores.sql import SQLStore
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.001)
    store = SQLStore(sys.argv[1])
    print(len(store.fetch_runs({"group": "exp"})))
    store.close()
    """
)


def test_two_processes_opening_an_old_database_together_migrate_it_once(load: Loader, tmp_path: Path) -> None:
    url = load(SAVED[0])
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(1.0)  # both wait at the start line
    go.touch()
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["5", "5"]
    upgrades = sum(err.count("Running upgrade") for _, err in outputs)
    assert upgrades == len(SAVED) - 1, outputs  # each migration ran once, in one of the two
    assert _version(url) == _head()
