"""sweepwise on a real PostgreSQL server: concurrent sweeps, a reader, a server restart, the lease.

The server is the session's own (tests/postgres_server.py); each test gets a fresh
database on it. What happened is judged from the jobs' own side-effect files (every job
start appends a line), not from the store's bookkeeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import EVAL, TRAIN, cli, fresh_postgres_database, markers

pytestmark = pytest.mark.slow


@pytest.fixture
def database(postgres_server: Any) -> Iterator[str]:
    """The URL of an empty database on the session's PostgreSQL server."""
    yield from fresh_postgres_database(postgres_server.url)


def _sweep(directory: Path, name: str, *, trials: int = 8, sleep: float = 0.3) -> Path:
    directory.mkdir()
    (directory / "train.py").write_text(TRAIN)
    (directory / "eval.py").write_text(EVAL)
    (directory / "markers").mkdir()
    env = {"MARKERS": str(directory / "markers"), "TRAIN_SLEEP": str(sleep)}
    spec = {
        "name": name,
        "max_parallel": 2,
        "monitoring_interval": 1,
        "scheduler": {"type": "batched_synced", "max_trials": trials, "batch_size": 2},
        "optimizer": {"type": "random", "seed": 3},
        "train": {"cmd": ["python", "train.py"], "env": env},
        "eval": {"cmd": ["python", "eval.py"], "env": env},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    path = directory / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _run(spec: Path, store: str) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    env["SWEEPWISE_STORE"] = store
    return subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=spec.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_two_sweeps_a_reader_and_a_server_restart_lose_and_double_nothing(
    tmp_path: Path, postgres_server: Any, database: str
) -> None:
    specs = {name: _sweep(tmp_path / name, name) for name in ("alpha", "beta")}
    sweeps = {name: _run(spec, database) for name, spec in specs.items()}
    polls: list[dict[str, Any]] = []
    errors: list[str] = []
    stop = threading.Event()

    def poll() -> None:  # a third process reading while both sweeps write
        while not stop.is_set():
            for name in specs:
                result = cli("status", name, "--json", "--store", database, cwd=tmp_path)
                if result.returncode == 0:
                    polls.append(json.loads(result.stdout))
                elif "no experiment" not in result.stderr:
                    errors.append(result.stderr)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    try:

        def started() -> int:
            return sum(len(markers(spec.parent, job)) for spec in specs.values() for job in ("train", "eval"))

        def under_way() -> bool:
            for name, sweep in sweeps.items():
                if sweep.poll() is not None:  # ended before the restart: say why
                    raise AssertionError(f"{name} ended early: {sweep.communicate()[1]}")
            return all(len(markers(spec.parent, "train")) >= 2 for spec in specs.values())

        _wait_for(under_way, "both sweeps to be under way")
        for restart in range(3):  # mid-sweep, again and again: every open connection is cut
            _wait_for(lambda: started() >= 4 + 3 * restart, "more jobs to start")  # noqa: B023
            postgres_server.restart()
        outcomes = {name: sweep.communicate(timeout=600) for name, sweep in sweeps.items()}
    finally:
        stop.set()
        reader.join(timeout=120)
        for sweep in sweeps.values():
            if sweep.poll() is None:
                sweep.kill()
    for name, sweep in sweeps.items():  # each controller rode the restarts out by itself
        assert sweep.returncode == 0, outcomes[name][1]
    assert polls, errors
    for name, spec in specs.items():
        status = json.loads(cli("status", name, "--json", "--store", database, cwd=tmp_path).stdout)
        runs = status["runs"]
        assert [row["status"] for row in runs] == ["completed"] * 8
        for job in ("train", "eval"):
            started = Counter(markers(spec.parent, job))
            assert sorted(started) == sorted(row["run_id"] for row in runs), (name, job)
            assert set(started.values()) == {1}, (name, job, started)  # each job ran once


# Server-side cuts at chosen moments: a trigger on `runs` terminates the writing connection
# from inside its transaction, every third write (in the body) and at every third commit (a
# deferred trigger), 12 times each. A sequence counts: it is not rolled back with the cut.
CUT_ROUNDS = 100  # rounds of the 50 ms cutter that terminated a connection, at most

CUTS = """
CREATE SEQUENCE cut_count;
CREATE FUNCTION cut() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF mod(nextval('cut_count'), 3) = 0 AND currval('cut_count') <= 72 THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER cut_in_body AFTER INSERT OR UPDATE ON runs FOR EACH STATEMENT EXECUTE FUNCTION cut();
CREATE CONSTRAINT TRIGGER cut_at_commit AFTER INSERT OR UPDATE ON runs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cut();
"""


def test_connections_cut_at_any_moment_lose_and_double_nothing(
    tmp_path: Path, postgres_server: Any, database: str
) -> None:
    # Transactions are cut in their body and at their commit, and every connection to the
    # database is terminated every 50 ms besides: each controller waits for the store, reads
    # it back as a restarted controller would, and goes on. The 50 ms cuts stop after 4 evals
    # or 100 rounds that cut something: on a loaded machine a reconnect and its transaction
    # can take longer than 50 ms, and endless cuts would then let no transaction finish.
    from sqlalchemy import create_engine, text

    from sweepwise.stores import SQLStore

    SQLStore(database).list_experiments()  # the schema, for the triggers
    spec = _sweep(tmp_path / "delta", "delta", trials=8, sleep=0.2)
    name = database.rsplit("/", 1)[-1]
    admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with create_engine(database, isolation_level="AUTOCOMMIT").connect() as connection:
        connection.exec_driver_sql(CUTS)
    stop = threading.Event()
    cuts: list[int] = []

    def cutter() -> None:
        query = text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()"
        )
        with admin.connect() as connection:
            while not stop.is_set() and sum(1 for cut in cuts if cut) < CUT_ROUNDS:
                cuts.append(int(connection.execute(query, {"name": name}).scalar() or 0))
                time.sleep(0.05)

    sweep = _run(spec, database)
    thread = threading.Thread(target=cutter, daemon=True)
    try:
        _wait_for(lambda: markers(spec.parent, "train"), "the first job")
        thread.start()

        def enough() -> bool:
            return len(markers(spec.parent, "eval")) >= 4 or sweep.poll() is not None or not thread.is_alive()

        _wait_for(enough, "4 evals or the last cut")
        stop.set()
        thread.join(timeout=60)
        _, err = sweep.communicate(timeout=600)
    finally:
        stop.set()
        if sweep.poll() is None:
            sweep.kill()
        admin.dispose()
    assert sweep.returncode == 0, err
    assert sum(cuts) > 0 and "resuming the sweep" in err  # connections and transactions were cut
    status = json.loads(cli("status", "delta", "--json", "--store", database, cwd=tmp_path).stdout)
    runs = status["runs"]
    assert [row["status"] for row in runs] == ["completed"] * 8
    for job in ("train", "eval"):
        started = Counter(markers(spec.parent, job))
        assert sorted(started) == sorted(row["run_id"] for row in runs), job
        assert set(started.values()) == {1}, (job, started)  # each job ran once


OPEN = """
import os, sys, time
from sweepwise.stores import SQLStore
import sweepwise.stores.sql, sqlalchemy, alembic.command, psycopg  # everything imported before the go
store = SQLStore(sys.argv[1])
open(sys.argv[3] + ".ready", "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.001)
store.ensure_experiment(sys.argv[2], {})
store.close()
"""


def test_processes_opening_an_empty_database_at_once_all_succeed(tmp_path: Path, database: str) -> None:
    # Each creates the schema if it is missing: one does, the others wait for it and find it there.
    go = tmp_path / "go"
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, database, f"exp{index}", f"{go}{index}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(4)
    ]
    _wait_for(lambda: all(Path(f"{go}{index}.ready").exists() for index in range(4)), "the openers")
    for index in range(4):
        Path(f"{go}{index}").touch()
    for opener in openers:
        _, err = opener.communicate(timeout=120)
        assert opener.returncode == 0, err
    result = cli("status", "--json", "--store", database, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_second_controller_is_refused_then_takes_over_from_a_killed_one(
    tmp_path: Path, database: str
) -> None:
    spec = _sweep(tmp_path / "gamma", "gamma", trials=4, sleep=1.0)
    first = _run(spec, database)
    try:
        _wait_for(lambda: markers(spec.parent, "train"), "the first controller's first job")
        second = cli("run", str(spec), "--quiet", "--store", database, cwd=spec.parent)
        assert second.returncode != 0
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith("error:") and "gamma" in line, second.stderr
        assert str(first.pid) in line, line  # names the holder
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    takeover = cli("run", str(spec), "--quiet", "--store", database, cwd=spec.parent, timeout=600)
    assert takeover.returncode == 0, takeover.stderr
    status = json.loads(cli("status", "gamma", "--json", "--store", database, cwd=tmp_path).stdout)
    assert [row["status"] for row in status["runs"]] == ["completed"] * 4
    for job in ("train", "eval"):
        assert set(Counter(markers(spec.parent, job)).values()) == {1}, job


def test_a_full_disk_on_the_server_is_not_an_outage(database: str) -> None:
    # The server says its disk is full (SQLSTATE 53100): the sweep must stop with that line,
    # not wait for a server that answers (docs/stores.md, "Outages").
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from sweepwise.stores._engine import failure_hint, is_outage

    engine = create_engine(database)
    with pytest.raises(OperationalError) as full, engine.connect() as connection:
        connection.exec_driver_sql(
            "DO $$ BEGIN RAISE EXCEPTION 'no space' USING ERRCODE = 'disk_full'; END $$"
        )
    engine.dispose()
    assert not is_outage(full.value)
    assert failure_hint(full.value) == "free some space and run the same command again"


def test_status_of_a_server_that_is_down_is_one_line_without_the_password(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://me:s3cret@127.0.0.1:{port}/sweeps"
    result = cli("status", "--store", url, cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: could not read the store postgresql://me:***@127.0.0.1"), line
    assert "s3cret" not in result.stderr and "check that the server runs" in line
