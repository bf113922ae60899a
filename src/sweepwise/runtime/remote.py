"""Run the job `$SWEEPWISE_JOB` describes, on a machine the controller cannot see (a SkyPilot or Ray node).

The SkyPilot and Ray dispatchers give every job the same fixed command,
`python -m sweepwise.runtime.remote`; the job comes in the environment, so no
hyperparameter value passes through a shell:

- `SWEEPWISE_JOB`: the job definition as JSON, its env values recorded by name only
  (`JobDefinition.recorded`): each value comes from the variable of that name here;
- `SWEEPWISE_EXPERIMENT`: the experiment's name;
- `SWEEPWISE_RUNS_ROOT`: where run directories are made on this machine (`~` expanded;
  default `~/sweepwise-runs`; a mounted bucket or a shared filesystem keeps them). The
  nodes of rank 1 and up of a multi-node job (`SWEEPWISE_NODE_RANK`, else SkyPilot's
  `SKYPILOT_NODE_RANK`) use `<root>/rank-<N>`, so that a root shared by the nodes holds
  one set of files per node;
- `SWEEPWISE_CWD` (optional): the directory the job runs in, one this machine shares with
  the controller's (the Ray dispatcher's jobs run in their spec's directory); default: the
  current directory (the task's workdir).

The job runs as under the local dispatcher (its hyperparameters as words, in
`SWEEPWISE_PARAMS` and in `params.json`; the supervisor enforces its `timeout`), with
`sweepwise.runtime.group_guard` in its process group to stop it if this runner is killed
outright, and its
output is copied to this process's stdout, the task's log, as it is written, with each new
row of its metrics file (`sweepwise.report`) after each copy, as a line of ours:
`SWEEPWISE_METRICS {json}` (a dispatcher that cannot read the node's files reads the job's
progress there, for early stopping). When it
ends, the node of rank 0 prints the job's result, found as the local dispatcher finds it
(`result.json`, its last `SWEEPWISE_RESULT` line, its last metrics row), as the log's
last line of ours: `SWEEPWISE_RESULT {json}`. A job stopped for its timeout says so in a
line that starts with `sweepwise: timeout`. The exit status is the job's; a job that exited
0 with a result that is not a JSON object (or is too large) exits 1, saying why.

Unlike most of `sweepwise.runtime` this imports pydantic: it runs once per remote job.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from sweepwise.core.models import JobDefinition
    from sweepwise.dispatchers.launch import LaunchPlan

JOB_ENV = "SWEEPWISE_JOB"
RUNS_ROOT_ENV = "SWEEPWISE_RUNS_ROOT"
CWD_ENV = "SWEEPWISE_CWD"
NODE_RANK_ENV = "SWEEPWISE_NODE_RANK"
DEFAULT_RUNS_ROOT = "~/sweepwise-runs"
PROTOCOL_ENV = frozenset(
    {
        JOB_ENV,
        RUNS_ROOT_ENV,
        CWD_ENV,
        NODE_RANK_ENV,
        "SWEEPWISE_EXPERIMENT",
        "SWEEPWISE_RUN_ID",
        "SWEEPWISE_JOB_TYPE",
        "SWEEPWISE_ATTEMPT",
    }
)
"""The variables the job protocol sets itself: a user's env may not give them."""
TIMEOUT_LINE_PREFIX = "sweepwise: timeout"
"""How the line that says a job was stopped for its timeout starts."""

_FOLLOW_STEP = 0.2  # seconds between copies of the job's new output to stdout
_METRICS_REPEAT = 10.0  # seconds of output after which the last metrics row is written again


def load_job(environ: Mapping[str, str]) -> JobDefinition:
    """The `JobDefinition` in `environ[SWEEPWISE_JOB]`, with its env values taken from `environ`.

    The job runs in `environ[SWEEPWISE_CWD]` when it is set, else in the current directory.

    A value recorded in the definition is kept; one recorded by name only comes from the
    variable of that name, and is left out when there is none.

    Raises:
        ConfigError: the variable is missing or does not hold a job definition.
    """
    from pydantic import ValidationError

    from sweepwise.core.errors import ConfigError
    from sweepwise.core.models import NOT_RECORDED, JobDefinition

    text = environ.get(JOB_ENV)
    if not text:
        raise ConfigError(
            JOB_ENV, "is not set; this command runs the job a sweepwise SkyPilot task or Ray job carries"
        )
    try:
        job = JobDefinition.model_validate_json(text)
    except ValidationError as exc:
        raise ConfigError(JOB_ENV, f"does not hold a job definition ({exc.error_count()} errors)") from None
    env = {
        name: environ[name] if value == NOT_RECORDED else value
        for name, value in job.env.items()
        if value != NOT_RECORDED or name in environ
    }
    return job.model_copy(update={"env": env, "cwd": environ.get(CWD_ENV) or None})


def prepare_job(environ: Mapping[str, str], rank: str = "0") -> tuple[JobDefinition, LaunchPlan]:
    """The job `environ` carries, with its run directory and files made on this machine.

    A result file already in the run directory (left by a run of this job that SkyPilot
    recovered from a preemption) is set aside: it is not this run's.

    Args:
        environ: the variables of the job protocol (see the module docstring).
        rank: the node's rank in a multi-node job; ranks above 0 use `<root>/rank-<N>`.

    Raises:
        ConfigError: `environ` holds no runnable job.
        OSError: the run directory or its files cannot be written.
    """
    from sweepwise.dispatchers.launch import build_launch, write_job_files

    job = load_job(environ)
    experiment = environ.get("SWEEPWISE_EXPERIMENT") or ""
    runs_root = Path(os.path.expanduser(environ.get(RUNS_ROOT_ENV) or DEFAULT_RUNS_ROOT))
    if rank != "0":
        runs_root = runs_root / f"rank-{rank}"
    plan = build_launch(job, experiment=experiment, runs_root=runs_root)
    write_job_files(plan, job)
    if plan.result_path.exists():
        os.replace(plan.result_path, f"{plan.result_path}.before-{time.time():.0f}")
    return job, plan


def _follow(
    path: str,
    offset: int,
    metrics_path: str | None,
    metrics_offset: int,
    stop: threading.Event,
    out: BinaryIO,
    repeat_after: float = _METRICS_REPEAT,
) -> None:
    """Copy what is appended to `path` after byte `offset` to `out` until `stop` is set, then the rest.

    Each row the job appended to its metrics file (`metrics_path`, after byte
    `metrics_offset`; None on nodes of rank 1 and up, which report nothing) since the last
    copy follows, as a line
    `SWEEPWISE_METRICS {json}` of its own: a dispatcher that cannot read the node's files
    learns from the end of the log how far the job got, for early stopping (docs/backends.md,
    "Early stopping on every backend"). So that the line stays near the end of a log the job
    keeps writing to, it is written again after `repeat_after` seconds of output.
    """
    from sweepwise.core.jsonsafe import dumps_strict
    from sweepwise.runtime import METRICS_LINE_PREFIX
    from sweepwise.runtime.results import read_new_metrics

    line_open = False  # the copied output ends inside a line
    last_line: str | None = None
    last_at = 0.0
    while True:
        stopping = stop.is_set()
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        if data:
            out.write(data)
            offset += len(data)
            line_open = not data.endswith(b"\n")
        rows: list[dict[str, Any]] = []
        if metrics_path is not None:
            rows, metrics_offset = read_new_metrics(metrics_path, metrics_offset)
        now = time.monotonic()
        lines = [METRICS_LINE_PREFIX + dumps_strict(row, separators=(",", ":")) for row in rows]
        if not lines and data and last_line is not None and now - last_at >= repeat_after:
            lines = [last_line]  # buried under the job's output since: written again
        if lines:
            out.write((("\n" if line_open else "") + "".join(line + "\n" for line in lines)).encode())
            line_open = False
            last_line, last_at = lines[-1], now
        if data or lines:
            out.flush()
        if stopping:
            return
        stop.wait(_FOLLOW_STEP)


def main(argv: list[str] | None = None) -> int:
    """Run the job; see the module docstring.

    Args:
        argv: ignored but for `-h` / `--help` (default: `sys.argv[1:]`).

    Returns:
        The job's exit status (128 + N when it was killed by signal N); 2 when the
        environment holds no runnable job.
    """
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args:
        print(__doc__)
        return 0
    from sweepwise.core.errors import ConfigError
    from sweepwise.core.jsonsafe import dumps_strict
    from sweepwise.dispatchers._local_watch import timeout_error
    from sweepwise.runtime import RESULT_LINE_PREFIX
    from sweepwise.runtime.results import read_job_result, read_status
    from sweepwise.runtime.supervise import exit_status, supervise

    rank = os.environ.get(NODE_RANK_ENV) or os.environ.get("SKYPILOT_NODE_RANK") or "0"
    try:
        job, plan = prepare_job(os.environ, rank)
    except (ConfigError, OSError) as exc:
        print(f"sweepwise: error: {exc}", file=sys.stderr, flush=True)
        return 2
    # What the log held already (the output of a run SkyPilot recovered from a preemption, on
    # a runs root in a bucket) was shown by that run.
    offset = plan.log_path.stat().st_size if plan.log_path.exists() else 0
    stop = threading.Event()
    metrics = str(plan.metrics_path) if rank == "0" else None  # rank 0 speaks for the job
    # Rows already there are that earlier run's too. Measured here, before the job starts, so
    # that a follower thread slow to start cannot take the job's first rows for old ones.
    metrics_offset = plan.metrics_path.stat().st_size if plan.metrics_path.exists() else 0
    follower = threading.Thread(
        target=_follow,
        args=(str(plan.log_path), offset, metrics, metrics_offset, stop, sys.stdout.buffer),
        daemon=True,
    )
    follower.start()
    try:
        code = supervise(
            plan.argv,
            cwd=plan.cwd,
            env=plan.env,
            log_path=plan.log_path,
            status_path=plan.status_path,
            run_dir=plan.run_dir,
            job_name=plan.job_name,
            timeout=job.timeout,
            guard_group=True,  # an engine may SIGKILL this runner (Ray kills a stopped job's workers)
        )
    finally:
        stop.set()
        follower.join()
    status = exit_status(code)
    if (read_status(plan.status_path) or {}).get("timed_out") is True:
        print(f"sweepwise: {timeout_error(job.timeout)}", flush=True)
    if rank != "0":
        return status  # rank 0 reports the result
    # the last progress row is the result only of a job that exited 0 (docs/design.md,
    # "Liveness from evidence"): printed for a killed one, it would read as a result it gave
    result, error = read_job_result(plan.run_dir, plan.job_name, rows=status == 0)
    if error is not None:
        print(f"sweepwise: {error}", flush=True)
        return status or 1
    if result is not None:
        print(RESULT_LINE_PREFIX + dumps_strict(result, separators=(",", ":")), flush=True)
    return status


__all__ = [
    "CWD_ENV",
    "DEFAULT_RUNS_ROOT",
    "JOB_ENV",
    "NODE_RANK_ENV",
    "PROTOCOL_ENV",
    "RUNS_ROOT_ENV",
    "TIMEOUT_LINE_PREFIX",
    "load_job",
    "main",
    "prepare_job",
]

if __name__ == "__main__":
    sys.exit(main())
