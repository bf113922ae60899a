"""Bridges between the two runner contracts of `sweepwise.ax.base_runner`.

- `BaseRunnerAdapter` drives a seed-style `BaseRunner` (one `Job` per trial) as a
  `TrialRunner`, which is what `AxScheduler` runs trials with.
- `JobMethods` gives a native runner the seed's `run_job`, `check_job_status` and
  `cancel_job`, so `JobLibRunner` and `DispatcherRunner` are `BaseRunner`s too.
"""

from __future__ import annotations

import abc
import functools
import json
import logging
import os
import tempfile
import traceback
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sweepwise.ax.base_runner import BaseRunner, JobOutcome, TrialJob
from sweepwise.ax.jobs import Job, JobState, JobType
from sweepwise.ax.objectives import (
    ContainerObjective,
    FunctionObjective,
    Objective,
    ScriptObjective,
    find_container_engine,
)
from sweepwise.core.errors import ConfigError
from sweepwise.core.protocols import Clock

logger = logging.getLogger(__name__)

PARAMS_FILE = "params.json"


def _reason(what: str, exc: BaseException) -> str:
    return f"{what} raised {traceback.format_exception_only(type(exc), exc)[-1].strip()}"


def job_for(trial: TrialJob) -> Job:
    """The seed-style `Job` for a trial, as the seed's scheduler builds it.

    Its id is `trial_<index>_job_<8 hex digits>`, its `working_dir` the trial's
    directory; script and container jobs list `result.json` in `output_files`.
    """
    job_id = f"trial_{trial.trial_index}_job_{uuid.uuid4().hex[:8]}"
    common: dict[str, Any] = {"params": dict(trial.params), "working_dir": str(trial.workdir)}
    objective = trial.objective
    if isinstance(objective, FunctionObjective):
        return Job(job_id, JobType.FUNCTION, function=objective.fn, **common)
    outputs = ["result.json"]
    if isinstance(objective, ScriptObjective):
        return Job(job_id, JobType.SCRIPT, script_path=objective.script_path, output_files=outputs, **common)
    return Job(
        job_id,
        JobType.CONTAINER,
        container_image=objective.image,
        container_command=objective.command,
        output_files=outputs,
        **common,
    )


def _outcome(job: Job, run_id: str, now: float) -> JobOutcome:
    """What a finished seed job tells the scheduler."""
    started = job.start_time.timestamp() if job.start_time else now
    ended = job.end_time.timestamp() if job.end_time else now
    results = job.get_results()
    error = results.get("error") if isinstance(results, Mapping) else None
    if job.state is JobState.COMPLETED and not isinstance(error, str):
        return JobOutcome(
            run_id, dict(results) if isinstance(results, Mapping) else results, None, started, ended
        )
    # The seed's own runners report a failure as a completed job whose results are {"error": ...}.
    if not isinstance(error, str) or not error:
        error = "cancelled" if job.state is JobState.CANCELLED else "the runner marked the job failed"
    return JobOutcome(run_id, None, error, started, ended)


class BaseRunnerAdapter:
    """A seed-style runner as a `TrialRunner`.

    Each trial becomes a `Job` (see `job_for`) with `params.json` written in its
    working directory for scripts and containers; `submit` calls `job.run()` (the
    runner's `run_job`), `poll` calls `job.check_status()` (the runner's
    `check_job_status`) on every running job and reports those that finished, and
    `wait` lets the time pass. An exception from the runner fails that trial only.

    Args:
        runner: a `BaseRunner` subclass (or any object with the same three methods).
        capacity: how many trials run at once; the seed's scheduler runs one
            (`max_concurrent_trials` defaults to 1 there).
        clock: where times come from and how waiting is done (default: the real clock).

    Raises:
        ConfigError: `capacity` is not an integer >= 1.
    """

    def __init__(self, runner: BaseRunner, capacity: int = 1, *, clock: Clock | None = None) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError("capacity", f"must be an integer >= 1 (got {capacity!r})")
        from sweepwise.core.clock import RealClock

        self.runner = runner
        self._capacity = capacity
        self._clock: Clock = clock or RealClock()
        self.jobs: dict[str, tuple[Job, str]] = {}  # job id -> (running job, run id)

    @property
    def capacity(self) -> int:
        """How many trials may run at once."""
        return self._capacity

    def submit(self, job: TrialJob) -> str:
        """Build the trial's `Job` and run it; return the job id."""
        seed_job = job_for(job)
        if seed_job.job_type is not JobType.FUNCTION:
            (job.workdir / PARAMS_FILE).write_text(json.dumps(job.params))
        seed_job.set_runner(self.runner)
        self.jobs[seed_job.job_id] = (seed_job, job.run_id)
        try:
            seed_job.run()
        except Exception as exc:  # the runner's bug fails this trial; the optimisation goes on
            seed_job.fail(_reason(f"{type(self.runner).__name__}.run_job", exc))
        return seed_job.job_id

    def poll(self) -> list[JobOutcome]:
        """Check every running job with the runner; the ones that finished."""
        out: list[JobOutcome] = []
        for job_id, (job, run_id) in list(self.jobs.items()):
            if not job.state.is_finished():
                try:
                    job.check_status()
                except Exception as exc:
                    job.fail(_reason(f"{type(self.runner).__name__}.check_job_status", exc))
            if job.state.is_finished():
                del self.jobs[job_id]
                out.append(_outcome(job, run_id, self._clock.now()))
        return out

    def wait(self, timeout: float) -> None:
        """Let `timeout` seconds pass (a seed runner cannot say when a job ends)."""
        self._clock.sleep(timeout)

    def cancel(self, dispatch_id: str) -> None:
        """Ask the runner to cancel the job (the scheduler fails its trial)."""
        entry = self.jobs.pop(dispatch_id, None)
        if entry is None:
            return
        job = entry[0]
        try:
            job.cancel()
        except Exception as exc:
            logger.warning("%s", _reason(f"{type(self.runner).__name__}.cancel_job", exc))
        if not job.state.is_finished():
            job.state = JobState.CANCELLED

    def close(self) -> None:
        """Close the runner (its `close`, else the seed's `shutdown`, when it has one)."""
        for name in ("close", "shutdown"):
            method = getattr(self.runner, name, None)
            if callable(method):
                method()
                return


def _call_with_keywords(fn: Callable[..., Any], params: dict[str, Any]) -> Any:
    """A seed job's function takes the parameters as keywords."""
    return fn(**params)


class JobMethods(BaseRunner):
    """The seed's `run_job` / `check_job_status` / `cancel_job` on a native runner.

    A job runs as a trial of the runner's own (`submit`); its function is called with
    the parameters as keywords, as the seed's `JobLibRunner` calls it. Scripts and
    containers run in `<working_dir>/<job_id>` (`<tmp_dir>/job_<job_id>` when the job
    has no working directory), where `params.json` is written. `check_job_status`
    polls the runner, so drive a runner either job by job or from an `AxScheduler`,
    not both at once.

    Args:
        config: the runner's settings; `tmp_dir` (default: the system's) and
            `container_engine` (default: found on PATH) are used here.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._seed_jobs: dict[str, tuple[Job, str]] = {}  # run id -> (job, dispatch id)

    @abc.abstractmethod
    def submit(self, job: TrialJob) -> str:
        """Start a trial (the native runner's)."""

    @abc.abstractmethod
    def poll(self) -> list[JobOutcome]:
        """The trials that ended (the native runner's)."""

    @abc.abstractmethod
    def cancel(self, dispatch_id: str) -> None:
        """Stop a trial (the native runner's)."""

    def run_job(self, job: Job) -> None:
        """Start `job`; a job that cannot start is marked failed with the reason."""
        try:
            trial = self._trial_for(job)
            if job.state is not JobState.RUNNING:
                job.state = JobState.RUNNING
            dispatch_id = self.submit(trial)
        except Exception as exc:  # as the seed's runners do: the job fails, the caller goes on
            job.fail(_reason("run_job", exc))
            return
        self._seed_jobs[trial.run_id] = (job, dispatch_id)

    def check_job_status(self, job: Job) -> None:
        """Complete or fail every job (this one included) that has ended."""
        for outcome in self.poll():
            entry = self._seed_jobs.pop(outcome.run_id, None)
            if entry is None:
                continue
            if outcome.error is None:
                result = outcome.result
                entry[0].complete(dict(result) if isinstance(result, Mapping) else {"result": result})
            else:
                entry[0].fail(outcome.error)

    def cancel_job(self, job: Job) -> None:
        """Stop `job` and mark it CANCELLED (a running function cannot be stopped)."""
        for run_id, (seed_job, dispatch_id) in list(self._seed_jobs.items()):
            if seed_job is job:
                del self._seed_jobs[run_id]
                self.cancel(dispatch_id)
                job.state = JobState.CANCELLED

    def _trial_for(self, job: Job) -> TrialJob:
        objective: Objective
        if job.job_type is JobType.FUNCTION:
            if job.function is None:
                raise ConfigError("function", "a FUNCTION job needs a function")
            objective = FunctionObjective(functools.partial(_call_with_keywords, job.function))
            workdir = Path(job.working_dir or self.config.get("tmp_dir") or tempfile.gettempdir())
            return TrialJob(-1, job.job_id, dict(job.params), objective, workdir)
        if job.job_type is JobType.SCRIPT:
            objective = ScriptObjective(os.path.abspath(str(job.script_path)))
        else:
            engine = find_container_engine(self.config.get("container_engine"))
            objective = ContainerObjective(str(job.container_image), job.container_command, engine)
        if job.working_dir:
            workdir = Path(job.working_dir).absolute() / job.job_id
        else:
            base = self.config.get("tmp_dir") or tempfile.gettempdir()
            workdir = Path(base).absolute() / f"job_{job.job_id}"
        workdir.mkdir(parents=True, exist_ok=True)
        # The local dispatcher's run directory is <root>/<experiment>/<run id>: the run id is the dir's name.
        return TrialJob(-1, workdir.name, dict(job.params), objective, workdir)


__all__ = ["BaseRunnerAdapter", "JobMethods", "job_for"]
