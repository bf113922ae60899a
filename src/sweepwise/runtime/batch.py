"""`python -m sweepwise.runtime.batch LAUNCH_FILE`: the supervisor of a job that an engine runs.

A remote engine (a SLURM batch script, a Ray job) runs this command on one of its nodes; the
run directory is on a filesystem shared with the controller. `LAUNCH_FILE`
(`<run_dir>/<job>.launch.json`, written by `EngineDispatcher`) holds the job's argv, working
directory, heartbeat interval, time limit and claim token, so parameter values never pass
through a shell; the job's environment comes from the engine (the submitting process's
environment). The supervisor takes the job's claim token and records the job's life in
`<job>.status.json` as the local dispatcher's supervisors do (`sweepwise.runtime.supervise`),
adding the fields the launch file's `status_env` names from the environment (the engine's job
id and how often it restarted the job).

Runs twice, never starts twice: an engine may run this command again for the same job (SLURM
requeues a job after a preemption, a node failure or `scontrol requeue`). The token was taken
by the first run, so a later run starts nothing, says so in the job's log and exits with 75;
the controller judges the first run's end with the engine's word (a requeue is a lost job,
retried as a new attempt with files of its own: docs/backends.md, "SLURM").

A job whose `<job>.cancel` file exists when this starts is not started: its claim is taken
and its status says it was cancelled. Standard library only: this is on every job's path.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from sweepwise.runtime import LOG, STATUS, job_file, job_stem
from sweepwise.runtime.jobhost import CANCEL
from sweepwise.runtime.supervise import (
    accept_claim,
    exit_status,
    mark_exited,
    supervise,
    write_json_atomic,
)

TYPE_CHECKING = False  # not `from typing import ...`: typing costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import Any

TAKEN = 75  # EX_TEMPFAIL: the job's claim was taken before (an earlier run of this engine job)


def _log(path: str, line: str) -> None:
    with open(path, "a") as log:
        log.write(line + "\n")


def run(launch: dict[str, Any]) -> int:
    """Supervise the job `launch` describes (the launch file's contents); return the exit status."""
    run_dir = os.fspath(launch["run_dir"])
    stem = job_stem(str(launch["job"]), int(launch.get("attempt", 1)))
    log_path = job_file(run_dir, stem, LOG)
    status_path = job_file(run_dir, stem, STATUS)
    token = str(launch["claim_token"])
    status_env: dict[str, str] = launch.get("status_env") or {}
    extra = {field: os.environ[name] for field, name in status_env.items() if name in os.environ}
    if not os.path.exists(token):
        where = ", ".join(f"{field} {value}" for field, value in extra.items())
        _log(
            log_path,
            f"sweepwise: the {stem} job was taken by an earlier run"
            + (f" ({where})" if where else "")
            + "; this run starts nothing (a requeued or repeated engine job is retried by the controller)",
        )
        return TAKEN
    if os.path.exists(job_file(run_dir, stem, CANCEL)):
        status: dict[str, Any] = {"job": stem, "pid": None, **extra}
        if accept_claim(token, status_path, status):
            mark_exited(status, run_dir, stem, -signal.SIGTERM, started_at=time.time(), cancelled=True)
            write_json_atomic(status_path, status)
        return exit_status(-signal.SIGTERM)
    timeout = launch.get("timeout")
    code = supervise(
        [str(word) for word in launch["argv"]],
        cwd=str(launch["cwd"]),
        env={},  # the engine gave this process the job's environment
        log_path=log_path,
        status_path=status_path,
        run_dir=run_dir,
        job_name=stem,
        heartbeat_interval=float(launch.get("heartbeat_interval", 5.0)),
        claim_token=token,
        timeout=float(timeout) if timeout is not None else None,
        kill_grace=float(launch.get("kill_grace", 10.0)),
        status_extra=extra,
        guard_group=True,  # this supervisor SIGKILLed (an OOM kill) must not leave the job running unseen
    )
    return exit_status(code)


def main(argv: list[str] | None = None) -> int:
    """Run the job of the launch file named by the only argument.

    Returns:
        The job's exit status (128 + N when killed by signal N); 75 when an earlier run
        took the job; 2 for a usage error or an unreadable launch file.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m sweepwise.runtime.batch LAUNCH_FILE\n")
        return 2
    try:
        with open(args[0], "rb") as handle:
            launch = json.loads(handle.read())
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"sweepwise batch: cannot read the launch file {args[0]}: {exc}\n")
        return 2
    return run(launch)


__all__ = ["TAKEN", "main", "run"]

if __name__ == "__main__":
    sys.exit(main())
