"""`sweepwise exec [--run-dir D] [--job train|eval] [--heartbeat S] [--timeout S] [--cwd C] -- CMD...`.

Runs CMD under the supervisor (`sweepwise.runtime.supervise`), with the job's files
named from the run dir, and exits with the job's exit status (128 + N when the job
was killed by signal N, as shells do). Also runnable as
`python -m sweepwise.runtime.exec ...`. Standard library only: it starts in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from sweepwise.runtime import JOB_NAMES, LOG, METRICS, RESULT, STATUS, job_file, job_stem
from sweepwise.runtime.supervise import exit_status, supervise

TYPE_CHECKING = False  # not `from typing import ...`: typing costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_USAGE = (
    "sweepwise exec [--run-dir DIR] [--job train|eval] [--heartbeat SECONDS] [--timeout SECONDS] "
    "[--kill-grace SECONDS] [--cwd DIR] -- CMD..."
)


class _Formatter(argparse.HelpFormatter):
    """A fixed-width help formatter: the default one imports shutil on every start."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=100)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweepwise exec",
        usage=_USAGE,
        formatter_class=_Formatter,
        description="Run CMD as a sweepwise job: log, status file with heartbeat, result pickup.",
    )
    parser.add_argument(
        "--run-dir",
        default=None,
        help="the run directory (default: $SWEEPWISE_RUN_DIR, else the current directory)",
    )
    parser.add_argument(
        "--job",
        choices=JOB_NAMES,
        default=None,
        help="which job of the run this is (default: $SWEEPWISE_JOB_TYPE, else train)",
    )
    parser.add_argument(
        "--heartbeat", type=float, default=5.0, help="seconds between heartbeats (default: 5)"
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds the job may run (default: no limit)"
    )
    parser.add_argument(
        "--kill-grace",
        type=float,
        default=10.0,
        help="seconds from a timeout's SIGTERM to SIGKILL (default: 10)",
    )
    parser.add_argument("--cwd", default=None, help="the job's working directory (default: current)")
    parser.add_argument(
        "--attempt", type=int, default=1, help="which attempt of the job this is (default: 1)"
    )
    parser.add_argument("--claim-token", default=None, help=argparse.SUPPRESS)  # the local dispatcher's
    return parser


def spawn_supervisor(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str],
    run_dir: str | os.PathLike[str],
    job_name: str,
    heartbeat_interval: float = 5.0,
    attempt: int = 1,
    claim_token: str | None = None,
    timeout: float | None = None,
    kill_grace: float = 10.0,
) -> subprocess.Popen[bytes]:
    """Start `python -m sweepwise.runtime.exec ... -- argv` in a new session.

    The supervisor's own output (a traceback if it cannot start) is appended to the
    job's log. The caller must reap it (`Popen.poll`).

    Args:
        argv: the job's command.
        cwd: the job's working directory.
        env: variables added to this process's environment.
        run_dir: the run directory (also the supervisor's working directory).
        job_name: `train` or `eval`.
        heartbeat_interval: seconds between heartbeats.
        attempt: which attempt of the job this is (its files are named by `job_stem`).
        claim_token: the claim token the supervisor takes before it starts the job.
        timeout: seconds the job may run before it is stopped (None: no limit).
        kill_grace: seconds from the timeout's SIGTERM to SIGKILL.

    Returns:
        The supervisor process.
    """
    run_dir = os.fspath(run_dir)
    command = [
        sys.executable,
        "-m",
        "sweepwise.runtime.exec",
        "--run-dir",
        run_dir,
        "--job",
        job_name,
        "--heartbeat",
        repr(float(heartbeat_interval)),
        "--kill-grace",
        repr(float(kill_grace)),
        "--cwd",
        os.fspath(cwd),
        "--attempt",
        str(attempt),
        *(["--claim-token", claim_token] if claim_token else []),
        *(["--timeout", repr(float(timeout))] if timeout is not None else []),
        "--",
        *argv,
    ]
    with open(job_file(run_dir, job_stem(job_name, attempt), LOG), "ab") as log:
        return subprocess.Popen(
            command,
            cwd=run_dir,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the exec wrapper.

    Args:
        argv: the arguments after `sweepwise exec` (default: `sys.argv[1:]`).

    Returns:
        The process exit status: the job's exit code, 128 + N if it was killed by
        signal N, 2 for a usage error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if "--" not in args:
        if "-h" in args or "--help" in args:
            parser.print_help()
            return 0
        sys.stderr.write(f"usage: {_USAGE}\nsweepwise exec: error: put the command after '--'\n")
        return 2
    split = args.index("--")
    command = args[split + 1 :]
    try:
        options = parser.parse_args(args[:split])
    except SystemExit as exc:  # argparse already printed the message
        return exc.code if isinstance(exc.code, int) else 2
    if not command:
        sys.stderr.write(f"usage: {_USAGE}\nsweepwise exec: error: no command after '--'\n")
        return 2
    if options.heartbeat <= 0:
        sys.stderr.write("sweepwise exec: error: --heartbeat must be > 0 seconds\n")
        return 2
    if (options.timeout is not None and not options.timeout > 0) or not options.kill_grace >= 0:
        sys.stderr.write("sweepwise exec: error: --timeout must be > 0 and --kill-grace >= 0 seconds\n")
        return 2
    job = options.job or os.environ.get("SWEEPWISE_JOB_TYPE") or "train"
    if job not in JOB_NAMES:
        sys.stderr.write(f"sweepwise exec: error: job type {job!r} is not one of train, eval\n")
        return 2
    if options.attempt < 1:
        sys.stderr.write("sweepwise exec: error: --attempt must be >= 1\n")
        return 2
    stem = job_stem(job, options.attempt)
    run_dir = os.path.abspath(options.run_dir or os.environ.get("SWEEPWISE_RUN_DIR") or os.getcwd())
    os.makedirs(run_dir, exist_ok=True)
    env = {
        "SWEEPWISE_RUN_DIR": run_dir,
        "SWEEPWISE_JOB_TYPE": job,
        "SWEEPWISE_ATTEMPT": str(options.attempt),
        "SWEEPWISE_METRICS_FILE": job_file(run_dir, stem, METRICS),
        "SWEEPWISE_RESULT_FILE": job_file(run_dir, stem, RESULT),
    }
    code = supervise(
        command,
        cwd=options.cwd or os.getcwd(),
        env=env,
        log_path=job_file(run_dir, stem, LOG),
        status_path=job_file(run_dir, stem, STATUS),
        run_dir=run_dir,
        job_name=stem,
        heartbeat_interval=options.heartbeat,
        claim_token=options.claim_token,
        timeout=options.timeout,
        kill_grace=options.kill_grace,
    )
    return exit_status(code)


__all__ = ["main", "spawn_supervisor"]

if __name__ == "__main__":
    sys.exit(main())
