"""A job's log and its run directory, as `sweepwise logs` and the dashboard read them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sweepwise.core.errors import ConfigError, SweepwiseError

if TYPE_CHECKING:
    from sweepwise.core.models import JobTypes
    from sweepwise.stores import ExperimentRecord


def run_directory(record: ExperimentRecord, run_id: str) -> Path:
    """Where the run's files are: `<runs_root>/<experiment>/<run_id>` (README, "The experiment spec")."""
    return Path(str(record.spec.get("runs_root", "runs"))) / record.name / run_id


def job_log(record: ExperimentRecord, run_id: str, job_type: JobTypes, attempt: int) -> str:
    """A job's log: from its dispatcher if that keeps logs itself (`LogReader`), else the run-dir file.

    A dispatcher that cannot be built here (its spec's `imports:` do not import from this
    directory) leaves the run-dir file to read, and is named if there is none.

    Raises:
        SweepwiseError: there is no log yet.
    """
    from sweepwise.app.backends import recorded_log_reader
    from sweepwise.runtime import job_stem
    from sweepwise.runtime.regular import open_regular

    try:
        reader = recorded_log_reader(record.spec, record.name, job_type, incarnation=record.incarnation)
    except ConfigError as exc:
        reader, unbuilt = None, f"; its dispatcher could not be asked: {exc}"
    else:
        unbuilt = ""
    if reader is not None:
        text = reader.read_log(run_id, job_type, attempt)
        if text is None:
            raise SweepwiseError(f"no {job_type.short} log for run {run_id} yet")
        return text
    log_path = run_directory(record, run_id) / f"{job_stem(job_type.short, attempt)}.log"
    if not log_path.exists():
        raise SweepwiseError(f"no {job_type.short} log for run {run_id} yet ({log_path}){unbuilt}")
    try:
        with open_regular(log_path) as handle:
            return handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        raise SweepwiseError(
            f"cannot read the {job_type.short} log of run {run_id} ({log_path}: {exc.strerror})"
        ) from None


__all__ = ["job_log", "run_directory"]
