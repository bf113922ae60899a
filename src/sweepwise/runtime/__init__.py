"""What runs inside or right around a job: the exec wrapper, the supervisor, the report client.

Everything in this package imports only the standard library, because it is on every
job's path (`sweepwise exec`, `sweepwise.report`) and must start in milliseconds.

A run directory `<runs_root>/<experiment>/<run_id>/` is shared by the run's train and
eval jobs; each job's files are named `<job>.<kind>` with `<job>` = `train` / `eval`:

A job's second and later attempts name their files `<job>.<attempt>.<kind>` (`train.2.log`).

- `params.json` — the current job's hyperparameters (`JOB_PARAMS_FILE`);
- `<job>.params.json`, `<job>.log` (stdout + stderr), `<job>.status.json`,
  `<job>.result.json`, `<job>.metrics.jsonl`, `<job>.dispatch.json`.
"""

from __future__ import annotations

import os

JOB_NAMES = ("train", "eval")

PARAMS_FILE = "params.json"
"""The current job's hyperparameters, in the run dir."""

RESULT_FILE = "result.json"
"""What a zero-code job writes in its run dir; renamed to `<job>.result.json` on exit."""

RESULT_LINE_PREFIX = "SWEEPWISE_RESULT "
"""A job may print `SWEEPWISE_RESULT {json}` as its result instead."""

METRICS_LINE_PREFIX = "SWEEPWISE_METRICS "
"""How a remote job's log carries its newest `sweepwise.report` row (`sweepwise.runtime.remote`)."""

LOG = "log"
STATUS = "status.json"
RESULT = "result.json"
METRICS = "metrics.jsonl"
PARAMS = "params.json"
DISPATCH = "dispatch.json"
CANCEL = "cancel"
"""The kind of `<job>.cancel`, the file a canceller writes before it signals the job."""


def job_stem(job: str, attempt: int = 1) -> str:
    """The name of one attempt's files: `train` for the first attempt, `train.2` for the second."""
    return job if attempt == 1 else f"{job}.{attempt}"


def parse_stem(stem: str) -> tuple[str, int] | None:
    """`(job, attempt)` from a `job_stem`; None when `stem` is not one."""
    job, _, attempt = stem.partition(".")
    if job not in JOB_NAMES:
        return None
    if not attempt:
        return job, 1
    if attempt.isdigit() and int(attempt) > 1 and str(int(attempt)) == attempt:
        return job, int(attempt)
    return None


def job_file(run_dir: str | os.PathLike[str], job_name: str, kind: str) -> str:
    """The path of one of a job's files, e.g. `job_file(d, "train", STATUS)`.

    Args:
        run_dir: the run directory.
        job_name: `train` or `eval`, or an attempt's `job_stem` (`train.2`).
        kind: one of `LOG`, `STATUS`, `RESULT`, `METRICS`, `PARAMS`, `DISPATCH`, `CANCEL`.

    Returns:
        `<run_dir>/<job_name>.<kind>` as a string.
    """
    return os.path.join(os.fspath(run_dir), f"{job_name}.{kind}")


__all__ = [
    "DISPATCH",
    "JOB_NAMES",
    "LOG",
    "METRICS",
    "METRICS_LINE_PREFIX",
    "PARAMS",
    "PARAMS_FILE",
    "RESULT",
    "RESULT_FILE",
    "RESULT_LINE_PREFIX",
    "STATUS",
    "job_file",
    "job_stem",
    "parse_stem",
]
