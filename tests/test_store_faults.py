"""The store's disk fails under a running sweep: it fills up, or the database file is deleted.

Real `sweepwise run` processes with short jobs; the full disk is a 3 MB tmpfs (root only)
filled by a filler file once a few trials have completed.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import cli, markers
from sweepwise.core.clock import VirtualClock
from sweepwise.core.errors import DispatchError, StoreError
from sweepwise.core.models import JobEvent
from sweepwise.dispatchers.simulated import SimOutcome, SimulatedDispatcher
from sweepwise.engine.controller import AdaptiveController, ControllerSettings
from sweepwise.engine.lease import ExperimentLease
from sweepwise.schedulers.base import JobSpec
from sweepwise.schedulers.batched_synced import BatchedSyncedOptimizingScheduler, BatchedSyncedSchedulerConfig
from sweepwise.stores.sql import SQLStore
from tmpfs import small_tmpfs

TRIALS = 12


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs, unmounted afterwards."""
    with small_tmpfs(tmp_path / "disk") as disk:
        yield disk


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; return it."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        chunk = b"\0" * 65536
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def start_run(cwd: Path, store_url: str) -> subprocess.Popen[str]:
    """`sweepwise run sweep.yaml --quiet` in the background, on the store at `store_url`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    env["SWEEPWISE_STORE"] = store_url
    return subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", "sweep.yaml", "--quiet"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_completed(proc: subprocess.Popen[str], db: Path, count: int) -> None:
    """Return once `count` runs are COMPLETED in the database `db` (read with plain sqlite3)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the sweep ended early: {proc.communicate()}"
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
                    done = connection.execute("SELECT count(*) FROM runs WHERE status = 'COMPLETED'")
                    if done.fetchone()[0] >= count:
                        return
            except sqlite3.OperationalError:
                pass  # the schema is not there yet
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"fewer than {count} runs completed: {proc.communicate()}")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def sweep(make_sweep: Callable[..., Path], tmp_path: Path) -> Path:
    """A sweep of 12 short trials, two at a time (runs stay in tmp_path, off the small disk)."""
    make_sweep(
        max_parallel=2,
        monitoring_interval=0.5,
        scheduler={"type": "async_capped", "max_trials": TRIALS},
        train={
            "cmd": ["python", "train.py"],
            "env": {"MARKERS": str(tmp_path / "markers"), "TRAIN_SLEEP": "0.3"},
        },
    )
    return tmp_path


@pytest.mark.slow
def test_a_full_disk_stops_the_sweep_with_one_line_and_a_rerun_finishes_it(
    sweep: Path, small_disk: Path
) -> None:
    db = small_disk / "sweepwise.db"
    url = f"sqlite:///{db}"
    proc = start_run(sweep, url)
    wait_for_completed(proc, db, 3)
    filler = fill(small_disk)
    _, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    (line,) = error_lines(stderr)
    assert "database or disk is full" in line or "No space left on device" in line, stderr
    assert line.startswith("error: could not ") and "free some space" in line
    assert "release" not in line  # the write that failed, not the lease released on the way out

    filler.unlink()
    rerun = cli("run", "sweep.yaml", "--quiet", cwd=sweep, env={"SWEEPWISE_STORE": url})
    assert rerun.returncode == 0, rerun.stderr
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        statuses = [status for (status,) in connection.execute("SELECT status FROM runs")]
    assert statuses == ["COMPLETED"] * TRIALS
    # Every trial was trained and evaluated; that none was started twice is tests/test_faults.py's.
    run_ids = {f"exp_trial_{index:04d}" for index in range(1, TRIALS + 1)}
    assert set(markers(sweep, "train")) == run_ids
    assert set(markers(sweep, "eval")) == run_ids


@pytest.mark.slow
def test_a_deleted_store_file_stops_the_sweep_with_one_line(sweep: Path) -> None:
    db = sweep / "sweepwise.db"
    proc = start_run(sweep, f"sqlite:///{db}")
    wait_for_completed(proc, db, 2)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    _, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert error_lines(stderr) == [
        f"error: the store file {db} was deleted or replaced while the sweep ran, so nothing more can "
        "be recorded; restore the file, or start over with a new store and runs directory"
    ]


# -- the lease released on the way out never hides why the controller stopped -------------------


class BreakingDispatcher(SimulatedDispatcher):
    """Fails its third poll, after dropping the store's lease table (so releasing the lease fails too)."""

    def __init__(self, db: Path) -> None:
        super().__init__(VirtualClock(), lambda job: SimOutcome(duration=10.0, result={"score": 1.0}))
        self.db = db
        self.polls = 0

    def poll(self) -> list[JobEvent]:
        self.polls += 1
        if self.polls == 3:
            with sqlite3.connect(self.db) as connection:
                connection.execute("DROP TABLE leases")
            raise DispatchError("the cluster is unreachable")
        return super().poll()


def test_a_failing_lease_release_does_not_hide_the_error_that_stopped_the_controller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "sweepwise.db"
    store = SQLStore(f"sqlite:///{db}")
    store.ensure_experiment("exp", {})
    config = BatchedSyncedSchedulerConfig(
        experiment_id="exp",
        max_trials=4,
        batch_size=2,
        train=JobSpec(cmd=["train"]),
        eval=JobSpec(cmd=["eval"]),
        parameters={"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
        optimizer={"type": "random", "seed": 3},
    )
    dispatcher = BreakingDispatcher(db)
    controller = AdaptiveController(
        "exp",
        BatchedSyncedOptimizingScheduler(config),
        dispatcher,
        store,
        settings=ControllerSettings(max_parallel=2, monitoring_interval=30.0),
        clock=dispatcher.clock,
    )
    with (
        caplog.at_level(logging.DEBUG, logger="sweepwise.engine.lease"),
        pytest.raises(DispatchError) as info,
    ):
        controller.run()
    assert str(info.value) == "the cluster is unreachable"
    assert "could not release the lease of 'exp'" in caplog.text and "no such table" in caplog.text
    # Without an error to keep, the release's own failure is the one raised.
    with pytest.raises(StoreError, match="could not release the experiment's lease in the store"):
        ExperimentLease(store, "exp", 60.0).release()
    store.close()


def test_a_full_disk_is_named_with_the_operation_and_the_store_works_again_once_freed(
    small_disk: Path,
) -> None:
    url = f"sqlite:///{small_disk / 'sweepwise.db'}"
    store = SQLStore(url)
    store.ensure_experiment("exp", {})
    filler = fill(small_disk)
    written = 0
    with pytest.raises(StoreError) as info:
        for written in range(1000):  # the write-ahead log grows until it cannot
            store.init_run(f"r{written}", group="exp", initial_summary={"blob": "x" * 50_000})
    assert str(info.value) == (
        f"could not create runs in the store {url}: database or disk is full; "
        "free some space and run the same command again"
    )
    store.close()

    filler.unlink()
    reopened = SQLStore(url)
    assert len(reopened.fetch_runs({"group": "exp"})) == written  # every committed run, no other
    reopened.init_run("after", group="exp")
    reopened.close()
    with sqlite3.connect(small_disk / "sweepwise.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_driver_messages_get_the_fix_the_user_can_make() -> None:
    from sqlalchemy.exc import OperationalError

    from sweepwise.stores._engine import failure_hint

    def wrapped(message: str) -> OperationalError:
        return OperationalError("COMMIT", {}, sqlite3.OperationalError(message))

    free = "free some space and run the same command again"
    assert failure_hint(wrapped("database or disk is full")) == free
    assert failure_hint(wrapped('could not extend file "base/16384/2619": No space left on device')) == free
    assert "writable" in (failure_hint(wrapped("attempt to write a readonly database")) or "")
    assert "check the disk" in (failure_hint(wrapped("disk I/O error")) or "")
    assert failure_hint(wrapped("no such table: runs")) is None


def test_only_a_server_out_of_reach_is_an_outage(tmp_path: Path) -> None:
    # An outage makes `sweepwise run` wait and resume (docs/stores.md, "Outages"); a locked or
    # full SQLite file, or a server's own refusal, must not.
    import socket

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    from sweepwise.stores._engine import is_outage

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{port}/none?connect_timeout=2")
    with pytest.raises(DBAPIError) as down:
        refused.connect()
    assert is_outage(down.value)
    locked = create_engine(f"sqlite:///{tmp_path / 'locked.db'}", connect_args={"timeout": 0})
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(DBAPIError) as busy, locked.connect() as connection:
        connection.execute(text("SELECT * FROM t"))
    holder.close()
    assert "locked" in str(busy.value) and not is_outage(busy.value)
