"""`status --json` and `best --json` on a SQLite or PostgreSQL store, without the CLI framework.

Scripts poll these two commands; a whole process must answer in well under a second
on a 10,000-run experiment. This path parses the few options they take with
argparse and reads the store through its bare driver (`sqlite3`, psycopg); anything
else (help, tables, another database, a schema to upgrade) goes to the full CLI.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int | None:
    """Answer `status [EXPERIMENT] --json` / `best EXPERIMENT --json`; None when it is not one of them."""
    if not argv or argv[0] not in ("status", "best") or "--json" not in argv:
        return None
    if any(arg in ("-h", "--help") for arg in argv):
        return None
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("experiment", nargs="?" if argv[0] == "status" else None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--store")
    args, unknown = parser.parse_known_args(argv[1:])
    if unknown or args.experiment is None and argv[0] == "best":
        return None  # let the full CLI word the usage error
    from sweepwise.core.errors import SweepwiseError
    from sweepwise.stores.location import open_reader, resolve_store_url
    from sweepwise.stores.sqlite_reader import LeanReader, postgres_conninfo, sqlite_path

    url = resolve_store_url(args.store)
    if sqlite_path(url) is None and postgres_conninfo(url) is None:
        return None
    try:
        reader = open_reader(url)  # the full store when the schema is to be upgraded
    except SweepwiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not isinstance(reader, LeanReader):
        return None
    from sweepwise.app.views import best_payload, experiments_payload, no_best, status_payload
    from sweepwise.core.jsonsafe import dumps_rows, dumps_strict

    if not reader.exists():
        print(
            f"error: no sweepwise store at {reader.url}; run a sweep first or pass --store URL",
            file=sys.stderr,
        )
        return 1
    missing: str | None = None  # what `best` says when no run has scored
    try:
        if argv[0] == "status":
            payload = (
                status_payload(reader, args.experiment) if args.experiment else experiments_payload(reader)
            )
        else:
            payload = best_payload(reader, args.experiment)
            missing = no_best(reader, args.experiment) if payload["run_id"] is None else None
    except SweepwiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if argv[0] == "status" and args.experiment:
        text = dumps_rows(payload, "runs", default=str)  # as the full CLI writes it
    else:
        text = dumps_strict(payload, indent=2, default=str)
    sys.stdout.write(text + "\n")
    if argv[0] == "best" and missing is not None:
        print(f"error: {missing}", file=sys.stderr)
        return 1
    return 0
