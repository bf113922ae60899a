"""The seed's job model: what a `BaseRunner` subclass is given to run.

`AxScheduler` hands a seed-style runner (`run_job`, `check_job_status`, `cancel_job`)
one `Job` per trial, as scheduler_epic does: the job carries what to run (a function,
a script or a container), the trial's parameters and directory, and a `JobState` the
runner moves along with `complete(results)` or `fail(error)`.

Example:
    >>> job = Job("trial_0_job_1", JobType.FUNCTION, function=print, params={"x": 0.5})
    >>> job.state, job.is_running()
    (<JobState.CREATED: 3>, False)
    >>> job.complete({"loss": 0.25})
    >>> job.is_completed(), job.get_results()
    (True, {'loss': 0.25})
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sweepwise.core.errors import ConfigError


class JobType(enum.Enum):
    """What a job runs."""

    FUNCTION = "function"  # a Python callable
    SCRIPT = "script"  # a shell or Python script
    CONTAINER = "container"  # a container image


class JobState(enum.Enum):
    """Where a job stands (the seed's members, in the seed's order)."""

    NEW = enum.auto()
    READY = enum.auto()
    CREATED = enum.auto()
    QUEUED = enum.auto()
    RUNNING = enum.auto()
    COMPLETED = enum.auto()
    FAILED = enum.auto()
    PAUSED = enum.auto()
    CANCELLED = enum.auto()

    def __str__(self) -> str:
        return self.name

    def is_finished(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


# Before these a job has not been handed to its runner, so there is nothing to check.
_NOT_STARTED = (JobState.NEW, JobState.READY, JobState.CREATED)


class _JobRunner(Protocol):
    """The seed runner methods a `Job` calls (any `BaseRunner`)."""

    def run_job(self, job: Job) -> None: ...

    def check_job_status(self, job: Job) -> None: ...

    def cancel_job(self, job: Job) -> None: ...


class Job:
    """One unit of work for a seed-style runner.

    Args:
        job_id: unique id (the scheduler's: `trial_<index>_job_<8 hex digits>`).
        job_type: what the job runs.
        function: the callable (FUNCTION jobs).
        script_path: the script (SCRIPT jobs); it must exist.
        container_image: the image (CONTAINER jobs).
        container_command: what to run in the image (CONTAINER jobs, optional).
        params: the trial's parameters.
        env_vars: variables to set for the job.
        working_dir: the trial's directory (it holds `params.json` for scripts and containers).
        output_files: files (relative to `working_dir`) the runner may collect.

    Raises:
        ConfigError: what to run is missing for `job_type` (a `ValueError`, as the seed raises).
    """

    def __init__(
        self,
        job_id: str,
        job_type: JobType = JobType.FUNCTION,
        function: Callable[..., Any] | None = None,
        script_path: str | None = None,
        container_image: str | None = None,
        container_command: str | None = None,
        params: dict[str, Any] | None = None,
        env_vars: dict[str, str] | None = None,
        working_dir: str | None = None,
        output_files: list[str] | None = None,
    ) -> None:
        self.job_id = job_id
        self.job_type = job_type
        self.function = function
        self.script_path = script_path
        self.container_image = container_image
        self.container_command = container_command
        self.params: dict[str, Any] = params or {}
        self.env_vars: dict[str, str] = env_vars or {}
        self.working_dir = working_dir
        self.output_files: list[str] = output_files or []
        self.state = JobState.CREATED
        self.creation_time = datetime.now()
        self.start_time: datetime | None = None
        self.end_time: datetime | None = None
        self.results: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self.runner: _JobRunner | None = None
        self._validate()

    def _validate(self) -> None:
        if self.job_type is JobType.FUNCTION and self.function is None:
            raise ConfigError("function", "a FUNCTION job needs a function")
        if self.job_type is JobType.SCRIPT and (
            self.script_path is None or not os.path.exists(self.script_path)
        ):
            raise ConfigError(
                "script_path", f"a SCRIPT job needs an existing script (got {self.script_path!r})"
            )
        if self.job_type is JobType.CONTAINER and not self.container_image:
            raise ConfigError("container_image", "a CONTAINER job needs an image")

    def __repr__(self) -> str:
        return f"Job({self.job_id!r}, {self.job_type.name}, state={self.state.name})"

    # -- driven by the scheduler -----------------------------------------------------------

    def set_runner(self, runner: _JobRunner) -> None:
        """Set the runner that `run`, `check_status` and `cancel` use."""
        self.runner = runner

    def run(self) -> None:
        """Mark the job RUNNING and hand it to its runner's `run_job`.

        Raises:
            ConfigError: no runner has been set (field `runner`).
        """
        runner = self._runner()
        self.state = JobState.RUNNING
        self.start_time = datetime.now()
        runner.run_job(self)

    def check_status(self) -> None:
        """Ask the runner to update the state of a started, unfinished job."""
        if self.state not in _NOT_STARTED and not self.state.is_finished():
            self._runner().check_job_status(self)

    def cancel(self) -> None:
        """Ask the runner to cancel the job."""
        self._runner().cancel_job(self)

    def _runner(self) -> _JobRunner:
        if self.runner is None:
            raise ConfigError("runner", f"job {self.job_id} has no runner; call set_runner(runner) first")
        return self.runner

    # -- called by runners -----------------------------------------------------------------

    def complete(self, results: dict[str, Any]) -> None:
        """Mark the job COMPLETED with its results (`{metric: value | (mean, sem)}`)."""
        self.state = JobState.COMPLETED
        self.end_time = datetime.now()
        self.results = results

    def fail(self, error: str | None = None) -> None:
        """Mark the job FAILED; `error` is kept as `results["error"]`."""
        self.state = JobState.FAILED
        self.end_time = datetime.now()
        if error:
            self.results["error"] = error

    # -- queries ---------------------------------------------------------------------------

    def is_running(self) -> bool:
        """True while the job is RUNNING."""
        return self.state is JobState.RUNNING

    def is_completed(self) -> bool:
        """True once the job is COMPLETED."""
        return self.state is JobState.COMPLETED

    def has_failed(self) -> bool:
        """True once the job is FAILED."""
        return self.state is JobState.FAILED

    def get_results(self) -> dict[str, Any]:
        """The results (empty until the job completes; `{"error": ...}` when it failed)."""
        return self.results

    def set_metrics(self, metrics: dict[str, Any] | None = None) -> None:
        """Keep the job's own metrics (timings, resources; not given to Ax)."""
        self.metrics = metrics or {}

    def get_metrics(self) -> dict[str, Any]:
        """The metrics set with `set_metrics`."""
        return self.metrics


__all__ = ["Job", "JobState", "JobType"]
