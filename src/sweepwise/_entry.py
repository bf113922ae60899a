"""The `sweepwise` console script.

`sweepwise exec -- CMD...` runs on every job's path, so it is dispatched here
before the CLI (typer, rich, SQLAlchemy) is imported.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the `sweepwise` command."""
    if len(sys.argv) > 1 and sys.argv[1] == "exec":
        from sweepwise.runtime.exec import main as exec_main

        sys.exit(exec_main(sys.argv[2:]))
    from sweepwise.app.quick import main as quick_main

    code = quick_main(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from sweepwise.app.cli import run_app

    run_app()
