"""Stores benchmark: controller + store cost per trial on SQLite and on PostgreSQL, beside Optuna.

One run starts its own PostgreSQL server (tests/postgres_server.py: Debian's PostgreSQL
binaries, `initdb` in a temp dir, 127.0.0.1, fsync on) and prints one table:

1. sweepwise: `n` trials (train + eval each) of zero-length simulated jobs through the real
   controller, 8 at a time, on a SQLite file and on a fresh PostgreSQL database; wall time
   per trial, and the last 10 % against the first 10 % (the cost must not grow with the
   sweep);
2. Optuna's RDBStorage on the same PostgreSQL server, random sampler, `n_optuna` trials:
   per-trial wall time (the figure sweepwise must be at least 10x cheaper than). The two
   take turns three times on fresh databases, and the medians are compared;
3. `sweepwise status EXP --json` and `best EXP --json` on 10,000 finished runs in
   PostgreSQL, as whole processes.

    python benchmarks/stores.py           # about two minutes on 2 cores
    python benchmarks/stores.py --quick   # smaller counts, a smoke test

Needs `pip install -e '.[postgres,bench]'` and Debian's `postgresql` package.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from orchestration import (
    make_finished_runs,
    optuna_trials,
    per_trial_marks,
    run_simulated_sweep,
    whole_process,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from postgres_server import LocalPostgres  # noqa: E402  (the tests' throwaway server)
from sweepwise.core.runs import FINISHED  # noqa: E402
from sweepwise.stores.sql import SQLStore  # noqa: E402

ROWS: list[tuple[str, str]] = []


def row(what: str, figure: str) -> None:
    ROWS.append((what, figure))
    print(f"  {what}: {figure}", file=sys.stderr, flush=True)


def new_database(server: LocalPostgres) -> str:
    """The URL of a new, empty database on `server`."""
    from sqlalchemy import create_engine

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def sweepwise_per_trial(url: str, n: int) -> tuple[float, float]:
    """Wall ms per trial of an `n`-trial simulated sweep on the store at `url`; last/first 10 % ratio."""
    store = SQLStore(url)
    store.ensure_experiment("overhead", {})
    stamps: list[tuple[float, int]] = [(time.perf_counter(), 0)]

    def on_tick(controller: Any, _: Any) -> None:
        stamps.append((time.perf_counter(), controller.runs.how_many(*FINISHED)))

    run_simulated_sweep(store, "overhead", n, 8, on_tick)
    store.close()
    first, last, total = per_trial_marks(stamps, n)
    return total, last / first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke test, not the figures)")
    args = parser.parse_args(argv)
    n, n_optuna, n_big, rounds = (200, 50, 1000, 1) if args.quick else (2000, 300, 10_000, 3)
    work = Path(tempfile.mkdtemp(prefix="sweepwise-stores-"))
    server = LocalPostgres()
    server.start()
    try:
        print("1. sweepwise, controller + store", file=sys.stderr)
        ms, ratio = sweepwise_per_trial(f"sqlite:///{work / 'bench.db'}", n)
        row(
            f"sweepwise, {n} simulated trials (train + eval), SQLite file",
            f"{ms:.2f} ms/trial (last/first 10 %: {ratio:.2f})",
        )
        # PostgreSQL commits wait for fsync, whose latency on a VM's disk varies from minute to
        # minute: sweepwise and Optuna take turns, `rounds` times, and the medians are compared.
        print("2. sweepwise and Optuna's RDBStorage on the same server, taking turns", file=sys.stderr)
        pg_runs: list[tuple[float, float]] = []
        optuna_runs: list[float] = []
        for _ in range(rounds):
            pg_runs.append(sweepwise_per_trial(new_database(server), n))
            optuna = optuna_trials(n_optuna, new_database(server))
            if optuna is not None:
                optuna_runs.append(optuna[2])
        pg_ms = statistics.median(ms for ms, _ in pg_runs)
        pg_ratio = statistics.median(ratio for _, ratio in pg_runs)
        each = ", ".join(f"{ms:.2f}" for ms, _ in pg_runs)
        row(
            f"sweepwise, {n} simulated trials (train + eval), PostgreSQL, median of {rounds}",
            f"{pg_ms:.2f} ms/trial ({each}; last/first 10 %: {pg_ratio:.2f})",
        )
        if not optuna_runs:
            row("Optuna RDBStorage on PostgreSQL", "not installed (pip install optuna)")
        else:
            optuna_ms = statistics.median(optuna_runs)
            each = ", ".join(f"{ms:.1f}" for ms in optuna_runs)
            row(
                f"Optuna RDBStorage on PostgreSQL, random sampler, {n_optuna} trials, median of {rounds}",
                f"{optuna_ms:.1f} ms/trial ({each}); sweepwise is {optuna_ms / pg_ms:.1f}x cheaper "
                "(target >= 10x)",
            )
        print("3. reading 10,000 runs", file=sys.stderr)
        big = new_database(server)
        make_finished_runs(big, n_big)
        env_store = {"SWEEPWISE_STORE": big}
        os.environ.update(env_store)
        status_s = whole_process(["status", "big", "--json"], work)
        best_s = whole_process(["best", "big", "--json"], work)
        row(
            f"`sweepwise status big --json` / `best big --json`, {n_big} finished runs, PostgreSQL "
            "(whole process)",
            f"{status_s:.2f} s / {best_s:.2f} s (target < 1 s)",
        )
    finally:
        server.cleanup()
    print()
    print(
        f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        "PostgreSQL on 127.0.0.1 (fsync on)"
    )
    print()
    print("| what | figure |")
    print("| --- | --- |")
    for what, figure in ROWS:
        print(f"| {what} | {figure} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
