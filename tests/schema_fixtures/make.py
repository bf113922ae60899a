"""Make the saved databases of each released schema revision (tests/test_schema_upgrades.py).

For each revision it makes an empty SQLite database, upgrades it with the store's Alembic
migrations to exactly that revision, inserts the rows of `rows(revision)` with plain SQL,
and writes two files next to this script:

- `<revision>.sqlite.sql`: that SQLite database, dumped (`sqlite3`'s `iterdump`);
- `<revision>.postgresql.sql`: the revision's PostgreSQL schema as Alembic's offline mode
  writes it (`alembic upgrade --sql`), then the same INSERT statements.

The rows are one sweep caught mid-way by a dead controller: a run completed with its eval,
one failed, one cancelled, one in training, one pending; the runs' job events, the
scheduler's state and the dead controller's expired lease.

Run from the worktree root: `PYTHONPATH=src python tests/schema_fixtures/make.py [REVISION...]`
(no argument: the revisions whose files are missing).

Adding a migration: add its revision id to `REVISIONS`, give `rows` what the new
columns hold for this sweep (the same runs, written as that version of sweepwise would
have written them), run this script with the new revision, add the revision's expected
runs to `tests/test_schema_upgrades.py` and commit the two new files. Never rewrite the
files of a released revision: they stand for databases users already have.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REVISIONS = ["0001_initial", "0002_attempts", "0003_stopped"]
"""Every released schema revision, oldest first (the last one is the head)."""

T0 = 1795000000.0  # 2026-11-18, when the sweep started
DIR = "/tmp/sweepwise-fixture"  # where the sweep ran; the tests resume it elsewhere
ENV = {"MARKERS": "<not recorded>"}
OWNER = "gone:pid=875:start=3292522:pidns=4026531836:boot=954f5a96-88e2-46e6-9cde-34fbafa416e5:747acc56"


def _job(cmd: str) -> dict[str, Any]:
    return {
        "cmd": ["python", cmd],
        "gpus": 0,
        "nodes": 1,
        "arg_style": "key=value",
        "env": ENV,
        "cwd": DIR,
        "timeout": None,
        "record_env": [],
        "container": None,
    }


SPEC = {
    "spec": {
        "name": "exp",
        "imports": [],
        "store": None,
        "mirror": None,
        "dispatcher": {"type": "local"},
        "max_parallel": 2,
        "monitoring_interval": 1.0,
        "stale_after": 3600.0,
        "retries": {"max_attempts": 3, "on": ["lost"]},
        "runs_dir": "runs",
        "metric": "score",
        "goal": "maximize",
        "scheduler": {"type": "batched_synced", "batch_size": 3, "max_trials": 6},
        "optimizer": {"seed": 1, "type": "random"},
        "train": {"cmd": ["python", "train.py"], "env": ENV},
        "eval": {"cmd": ["python", "eval.py"], "env": ENV},
        "parameters": {"x": {"distribution": "uniform", "max": 1.0, "min": 0.0}},
    },
    "scheduler_config": {
        "recipe_module": None,
        "train_entrypoint": "train",
        "eval_entrypoint": "evaluate",
        "max_trials": 6,
        "gpus": 0,
        "nodes": 1,
        "timeout": None,
        "experiment_id": "exp",
        "train_overrides": {},
        "eval_overrides": {},
        "train": _job("train.py"),
        "eval": _job("eval.py"),
        "batch_size": 3,
        "stats_server_uri": None,
        "parameters": {"x": {"distribution": "uniform", "max": 1.0, "min": 0.0}},
        "optimizer": {"type": "random", "seed": 1},
        "goal": "maximize",
        "protein_config": None,
        "force_eval": False,
    },
    "runs_root": f"{DIR}/runs",
    "base_dir": DIR,
}

# run id -> (suggested x, seconds after T0 it was created, status, flags set)
RUNS = {
    "exp_trial_0001": (
        0.5118216247,
        0.05,
        "COMPLETED",
        ("has_started_training", "has_completed_training", "has_started_eval", "has_been_evaluated"),
    ),
    "exp_trial_0002": (0.950463696326, 0.06, "FAILED", ("has_started_training", "has_failed")),
    "exp_trial_0003": (0.448415143332, 0.07, "CANCELLED", ("has_started_training", "is_cancelled")),
    "exp_trial_0004": (0.430881987544, 2.0, "IN TRAINING", ("has_started_training",)),
    "exp_trial_0005": (0.301234567891, 2.1, "PENDING", ()),
}
FLAGS = (
    "has_started_training",
    "has_completed_training",
    "has_started_eval",
    "has_been_evaluated",
    "has_failed",
    "is_stale",
    "is_cancelled",
)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _job_row(run_id: str, kind: str, x: float, created: float, attempt: int) -> str:
    job = {
        "run_id": run_id,
        "cmd": ["python", "train.py" if kind == "launch_training" else "eval.py"],
        "gpus": 0,
        "nodes": 1,
        "args": {},
        "overrides": {"x": x},
        "type": kind,
        "created_at": _iso(created),
        "metadata": {"adaptive/suggestion": {"x": x}} if kind == "launch_training" else {},
        "arg_style": "key=value",
        "env": ENV,
        "cwd": DIR,
        "attempt": attempt,
        "timeout": None,
        "record_env": [],
        "container": None,
    }
    return _dumps(job)


def _iso(at: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rows(revision: str) -> list[tuple[str, dict[str, Any]]]:
    """The rows of the sweep, as (table, {column: value}) for the schema of `revision`."""
    attempts = REVISIONS.index(revision) >= REVISIONS.index("0002_attempts")
    stops = REVISIONS.index(revision) >= REVISIONS.index("0003_stopped")
    out: list[tuple[str, dict[str, Any]]] = []
    experiment = {
        "name": "exp",
        "created_at": T0,
        "updated_at": T0 + 9.5,
        "spec": _dumps(SPEC),
        "status": "running",
        "last_seq": 14,
    }
    if attempts:
        experiment["incarnation"] = "69b0eb7ecb8e462ba6591401c50bd66b"
    out.append(("experiments", experiment))
    events: list[dict[str, Any]] = []
    for index, (run_id, (x, created, status, flags)) in enumerate(RUNS.items(), start=1):
        start, summary = T0 + created, {"observation/suggestion": {"x": x}}
        train_attempt = 1
        run: dict[str, Any] = {
            "run_id": run_id,
            "experiment": "exp",
            "trial_index": index,
            "seq": index + 2,
            "status": status,
            **{flag: flag in flags for flag in FLAGS},
            "created_at": start,
            "started_at": start + 0.4 if flags else None,
            "completed_at": None,
            "updated_at": start + 1.0,
            "last_heartbeat_at": start + 0.9 if flags else None,
            "cost": 0.0,
            "runtime": 0.0,
            "error": None,
            "tags": "[]",
            "train_dispatch_id": f"{run_id}:train:878" if flags else None,
            "eval_dispatch_id": None,
            "eval_job": None,
        }
        train = {"dispatch_id": run["train_dispatch_id"], "started_at": start + 0.4}
        if flags:
            events.append(
                {
                    "run_id": run_id,
                    "job_type": "launch_training",
                    "kind": "started",
                    "at": start + 0.4,
                    "exit_code": None,
                    "payload": _dumps(train),
                }
            )
        if run_id == "exp_trial_0001":
            eval_start = start + 1.5
            summary |= {
                "train/exit_code": 0,
                "train/runtime": 0.75,
                "train/result": {"train_loss": 0.4881783753},
                "eval/exit_code": 0,
                "eval/runtime": 0.25,
                "eval/result": {"score": 5.118216247},
                "observation/score": 5.118216247,
                "observation/cost": 1.0,
                "adaptive/post_eval_processed": True,
                "adaptive/post_eval_processed_at": _iso(eval_start + 0.3)[:-1],
            }
            run |= {
                "completed_at": eval_start + 0.25,
                "updated_at": eval_start + 0.3,
                "cost": 1.0,
                "runtime": 1.0,
                "eval_dispatch_id": f"{run_id}:eval:878",
                "eval_job": _job_row(run_id, "launch_eval", x, start + 1.2, 1),
            }
            evaluated = {"dispatch_id": run["eval_dispatch_id"], "started_at": eval_start}
            events += [
                {
                    "run_id": run_id,
                    "job_type": "launch_training",
                    "kind": "finished",
                    "at": start + 1.15,
                    "exit_code": 0,
                    "payload": _dumps(train | {"result": {"train_loss": 0.4881783753}}),
                },
                {
                    "run_id": run_id,
                    "job_type": "launch_eval",
                    "kind": "started",
                    "at": eval_start,
                    "exit_code": None,
                    "payload": _dumps(evaluated),
                },
                {
                    "run_id": run_id,
                    "job_type": "launch_eval",
                    "kind": "finished",
                    "at": eval_start + 0.25,
                    "exit_code": 0,
                    "payload": _dumps(evaluated | {"result": {"score": 5.118216247}}),
                },
            ]
        elif run_id == "exp_trial_0002":
            error = "exit code 3; last output: training diverged: loss is nan"
            summary |= {"train/exit_code": 3}
            if attempts:
                summary["adaptive/attempts"] = [
                    {
                        "job": "train",
                        "attempt": 1,
                        "reason": "failed",
                        "error": error,
                        "exit_code": 3,
                        "at": start + 0.8,
                    }
                ]
            run |= {"error": error}
            events.append(
                {
                    "run_id": run_id,
                    "job_type": "launch_training",
                    "kind": "finished",
                    "at": start + 0.8,
                    "exit_code": 3,
                    "payload": _dumps(train | {"error": error}),
                }
            )
        elif run_id == "exp_trial_0004" and attempts:
            # its first job was lost with its node; the second attempt is the one in training
            train_attempt = 2
            run["train_dispatch_id"] = train["dispatch_id"] = f"{run_id}:train.2:878"
            events[-1]["payload"] = _dumps(train)
            summary["adaptive/attempts"] = [
                {
                    "job": "train",
                    "attempt": 1,
                    "reason": "lost",
                    "error": "the job vanished",
                    "exit_code": None,
                    "at": start + 0.3,
                }
            ]
        run["summary"] = _dumps(summary)
        run["train_job"] = _job_row(run_id, "launch_training", x, start, train_attempt)
        if attempts:
            run |= {"train_attempt": train_attempt, "eval_attempt": 1}
        if stops:
            run["is_stopped"] = False
        out.append(("runs", run))
    out += [("job_events", event) for event in events]
    state = {
        "runs_in_training": ["exp_trial_0004", "exp_trial_0005"],
        "runs_in_eval": [],
        "runs_completed": ["exp_trial_0001", "exp_trial_0002", "exp_trial_0003"],
    }
    out.append(("scheduler_state", {"experiment": "exp", "state": _dumps(state), "updated_at": T0 + 9.5}))
    out.append(
        (
            "leases",
            {
                "experiment": "exp",
                "owner": OWNER,
                "acquired_at": T0,
                "heartbeat_at": T0 + 9.0,
                "expires_at": T0 + 69.0,
            },
        )
    )
    return out


def literal(value: Any) -> str:
    """`value` as a SQL literal that SQLite and PostgreSQL both read the same way."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def inserts(revision: str) -> list[str]:
    """The INSERT statements of `rows(revision)` (job events without ids: the database numbers them)."""
    return [
        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(literal(v) for v in row.values())});"
        for table, row in rows(revision)
    ]


def make_sqlite(revision: str) -> str:
    """A SQLite database upgraded to exactly `revision` holding the rows, dumped as SQL."""
    from alembic import command
    from sqlalchemy import create_engine

    from sweepwise.stores._migrate import alembic_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.db"
        engine = create_engine(f"sqlite:///{path}")
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
        engine.dispose()
        with sqlite3.connect(path) as db:
            db.executescript("\n".join(inserts(revision)))
        db = sqlite3.connect(path)
        try:
            return "\n".join(db.iterdump()) + "\n"
        finally:
            db.close()


def make_postgresql(revision: str) -> str:
    """PostgreSQL's schema of `revision` (Alembic's offline SQL) followed by the rows."""
    from alembic import command

    from sweepwise.stores._migrate import alembic_config

    config = alembic_config()
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://")
    config.output_buffer = io.StringIO()
    command.upgrade(config, revision, sql=True)
    schema = config.output_buffer.getvalue().replace("\nCOMMIT;\n", "\n")
    return schema + "\n" + "\n".join(inserts(revision)) + "\n\nCOMMIT;\n"


def main(argv: list[str]) -> None:
    """Write the files of the revisions named in `argv`, or of those whose files are missing."""
    for revision in argv or REVISIONS:
        files = {
            HERE / f"{revision}.sqlite.sql": make_sqlite,
            HERE / f"{revision}.postgresql.sql": make_postgresql,
        }
        for path, make in files.items():
            if argv or not path.exists():
                path.write_text(make(revision))
                print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
