"""The two runner contracts `AxScheduler` accepts.

- `BaseRunner`: the seed's abstract base class. A subclass takes a `config` dict and
  writes `run_job(job)`, `check_job_status(job)` and `cancel_job(job)` on a seed-style
  `Job`; it moves the job along with `job.complete(results)` or `job.fail(error)`.
- `TrialRunner`: sweepwise's own protocol, for runners that run several trials at once
  and report the ones that ended in a batch: `capacity`, `submit`, `poll` and `wait`.

`as_trial_runner` (in `sweepwise.ax.runners`) turns the first into the second.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from sweepwise.ax.jobs import Job
    from sweepwise.ax.objectives import Objective


@dataclass(frozen=True, slots=True)
class TrialJob:
    """One trial to run.

    Attributes:
        trial_index: the Ax trial index (-1 for a job that is not an Ax trial).
        run_id: the sweepwise run id that records it.
        params: the trial's parameters.
        objective: what to run.
        workdir: the trial's directory (it exists); scripts find `params.json` there.
    """

    trial_index: int
    run_id: str
    params: dict[str, Any]
    objective: Objective
    workdir: Path


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a trial's job ended.

    Attributes:
        run_id: the run id of the `TrialJob`.
        result: what the objective returned or wrote (None when it gave nothing).
        error: why the job failed, or None if it succeeded.
        started_at: when the job started (seconds since the epoch).
        ended_at: when it ended (seconds since the epoch).
        exit_code: the process's exit code, when there was a process.
    """

    run_id: str
    result: Any
    error: str | None
    started_at: float
    ended_at: float
    exit_code: int | None = None


@runtime_checkable
class TrialRunner(Protocol):
    """What `AxScheduler` drives: sweepwise's native runner interface.

    `cancel(dispatch_id)` and `close()` are optional; the scheduler uses them when present.
    """

    @property
    def capacity(self) -> int:
        """How many trials may run at once (>= 1)."""
        ...

    def submit(self, job: TrialJob) -> str:
        """Start `job`; return an id for it (for the store, and `cancel`)."""
        ...

    def poll(self) -> list[JobOutcome]:
        """The jobs that ended since the last poll."""
        ...

    def wait(self, timeout: float) -> None:
        """Return after `timeout` seconds, or earlier when a job may have ended."""
        ...


class BaseRunner(abc.ABC):
    """The seed's runner base class: subclass it to run jobs anywhere.

    `AxScheduler` gives each trial's `Job` to `run_job`, then calls `check_job_status`
    on every running job each `monitoring_interval` until the runner marks it
    completed (`job.complete(results)`, results `{metric: value | (mean, sem)}`) or
    failed (`job.fail(error)`). One such trial runs at a time, as in the seed; wrap the
    runner in `BaseRunnerAdapter(runner, capacity=n)` to run n at once.

    Args:
        config: the runner's settings (kept as `self.config`).

    Example:
        >>> import threading
        >>> class ThreadRunner(BaseRunner):
        ...     def __init__(self, config=None):
        ...         super().__init__(config)
        ...         self.threads = {}
        ...     def run_job(self, job):
        ...         def work():
        ...             job.results = job.function(**job.params)
        ...         self.threads[job.job_id] = threading.Thread(target=work)
        ...         self.threads[job.job_id].start()
        ...     def check_job_status(self, job):
        ...         if not self.threads[job.job_id].is_alive():
        ...             job.complete(job.results)
        ...     def cancel_job(self, job):
        ...         pass
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})

    @abc.abstractmethod
    def run_job(self, job: Job) -> None:
        """Start `job` (it is already marked RUNNING); do not wait for it."""

    @abc.abstractmethod
    def check_job_status(self, job: Job) -> None:
        """Update `job`: `job.complete(results)` or `job.fail(error)` once it has ended."""

    @abc.abstractmethod
    def cancel_job(self, job: Job) -> None:
        """Stop `job` if it is still running."""


__all__ = ["BaseRunner", "JobOutcome", "TrialJob", "TrialRunner"]
