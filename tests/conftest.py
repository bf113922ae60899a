"""Fixtures shared by the end-to-end tests: the real `sweepwise` command in a scratch directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import services

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["local_dispatcher_fixtures"]  # `runs_root` and `make`, for dispatcher tests


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `sweepwise ARGS...` as a real process in `cwd`."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sweepwise", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def status_json(cwd: Path, experiment: str) -> dict[str, Any]:
    """`sweepwise status EXPERIMENT --json`, parsed."""
    result = cli("status", experiment, "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# A train job that counts itself in a marker file, fails on request and reports a result;
# and an eval job that counts itself and scores the run from what the train job left.
# TRAIN_SLEEP: seconds the train job sleeps; TRAIN_GATE: a file it waits for (at most 120 s).
TRAIN = textwrap.dedent(
    """
    import json, os, sys, time
    params = dict(word.split("=", 1) for word in sys.argv[1:])
    run_dir = os.environ["SWEEPWISE_RUN_DIR"]
    with open(os.path.join(os.environ["MARKERS"], "train.txt"), "a") as f:
        f.write(os.environ["SWEEPWISE_RUN_ID"] + "\\n")
    time.sleep(float(os.environ.get("TRAIN_SLEEP", "0")))
    gate, deadline = os.environ.get("TRAIN_GATE"), time.time() + 120
    while gate and not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.02)
    x = float(params["x"])
    if x > float(os.environ.get("FAIL_ABOVE", "2")):
        print("training diverged: loss is nan")
        sys.exit(3)
    with open(os.path.join(run_dir, "model.json"), "w") as f:
        json.dump({"x": x}, f)
    print("SWEEPWISE_RESULT " + json.dumps({"train_loss": 1 - x}))
    """
)
EVAL = textwrap.dedent(
    """
    import json, os
    run_dir = os.environ["SWEEPWISE_RUN_DIR"]
    with open(os.path.join(os.environ["MARKERS"], "eval.txt"), "a") as f:
        f.write(os.environ["SWEEPWISE_RUN_ID"] + "\\n")
    model = json.load(open(os.path.join(run_dir, "model.json")))
    json.dump({"score": model["x"] * 10}, open(os.path.join(run_dir, "result.json"), "w"))
    """
)


@pytest.fixture
def make_sweep(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec (plus train.py / eval.py) into tmp_path and return the spec's path."""

    def write(name: str = "exp", **overrides: Any) -> Path:
        (tmp_path / "train.py").write_text(TRAIN)
        (tmp_path / "eval.py").write_text(EVAL)
        (tmp_path / "markers").mkdir(exist_ok=True)
        spec: dict[str, Any] = {
            "name": name,
            "max_parallel": 3,
            "monitoring_interval": 2,
            "scheduler": {"type": "batched_synced", "max_trials": 6, "batch_size": 3},
            "optimizer": {"type": "random", "seed": 1},
            "train": {"cmd": ["python", "train.py"], "env": {"MARKERS": str(tmp_path / "markers")}},
            "eval": {"cmd": ["python", "eval.py"], "env": {"MARKERS": str(tmp_path / "markers")}},
            "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
        }
        for key, value in overrides.items():
            spec[key] = value
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(spec))
        return path

    return write


def markers(directory: Path, job: str) -> list[str]:
    """The run ids a marker file recorded, one per job start."""
    path = directory / "markers" / f"{job}.txt"
    return path.read_text().split() if path.exists() else []


@pytest.fixture(scope="session")
def slurm(pytestconfig: pytest.Config) -> None:
    """A SLURM that answers, started by `.ci/start-slurm` when it does not (tests/services.py)."""
    services.ensure("slurm", pytestconfig)


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> Iterator[Any]:
    """A PostgreSQL server of the session's own (tests/postgres_server.py): `.url`, `.restart()`.

    A server that cannot start fails the tests that need it: they are never skipped.
    """
    from postgres_server import LocalPostgres

    services.ensure("postgres", pytestconfig)
    try:
        server = LocalPostgres()
        server.start()
    except Exception as exc:
        pytest.fail(f"cannot start a PostgreSQL server for the tests: {exc}")
    try:
        yield server
    finally:
        server.cleanup()


def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the server of `admin_url`; dropped afterwards."""
    from sqlalchemy import create_engine

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"sweepwise_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
