"""Runners: where an `AxScheduler` runs its trials.

A runner is anything with a `capacity` (how many trials it runs at once), `submit`,
`poll` and `wait` (`BaseRunner`). Two are built in:

- `DispatcherRunner` turns any sweepwise dispatcher (local, SLURM, simulated, ...)
  into a runner for script and container objectives;
- `LocalRunner(n_jobs)` runs functions in a process pool (a thread pool for functions
  that cannot be pickled, such as lambdas) and scripts and containers through
  sweepwise's local dispatcher.
"""

from __future__ import annotations

import concurrent.futures as cf
import pickle
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sweepwise.ax.objectives import ContainerObjective, FunctionObjective, Objective, ScriptObjective
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import ArgStyle, EventKind, JobDefinition, JobTypes
from sweepwise.core.protocols import Clock, Waitable

if TYPE_CHECKING:
    from sweepwise.core.protocols import Dispatcher


@dataclass(frozen=True, slots=True)
class TrialJob:
    """One trial to run.

    Attributes:
        trial_index: the Ax trial index.
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
class BaseRunner(Protocol):
    """What `AxScheduler` needs from a runner."""

    @property
    def capacity(self) -> int:
        """How many trials may run at once (>= 1)."""
        ...

    def submit(self, job: TrialJob) -> str:
        """Start `job`; return an id for it (for the store)."""
        ...

    def poll(self) -> list[JobOutcome]:
        """The jobs that ended since the last poll."""
        ...

    def wait(self, timeout: float) -> None:
        """Return after `timeout` seconds, or earlier when a job may have ended."""
        ...


class DispatcherRunner:
    """Any sweepwise `Dispatcher` as a runner of script and container objectives.

    Each trial becomes a training job whose command is the script (or the container
    command line) with nothing appended; its working directory is the trial's
    directory, where the dispatcher (like the local one) also writes `params.json`.

    Args:
        dispatcher: the dispatcher to start jobs with.
        capacity: how many jobs may run at once.
        clock: where times come from (default: the real clock).

    Raises:
        ConfigError: `capacity` is below 1.
    """

    def __init__(self, dispatcher: Dispatcher, capacity: int = 1, *, clock: Clock | None = None) -> None:
        if capacity < 1:
            raise ConfigError("capacity", f"must be >= 1 (got {capacity})")
        from sweepwise.core.clock import RealClock

        self.dispatcher = dispatcher
        self._capacity = capacity
        self._clock: Clock = clock or RealClock()
        self._started: dict[str, float] = {}

    @property
    def capacity(self) -> int:
        """How many jobs may run at once."""
        return self._capacity

    @property
    def busy(self) -> bool:
        """True while a submitted job has not been reported finished."""
        return bool(self._started)

    def submit(self, job: TrialJob) -> str:
        """Dispatch `job` as a training job.

        Raises:
            ConfigError: the objective is a function (field `objective`).
        """
        objective = job.objective
        if isinstance(objective, ScriptObjective):
            cmd = objective.command()
        elif isinstance(objective, ContainerObjective):
            cmd = objective.argv(str(job.workdir))
        else:
            raise ConfigError(
                "objective", "a dispatcher runs scripts and containers; use LocalRunner for functions"
            )
        definition = JobDefinition(
            run_id=job.run_id,
            cmd=cmd,
            overrides=dict(job.params),
            arg_style=ArgStyle.TEMPLATE,
            cwd=str(job.workdir),
            metadata={"trial_index": job.trial_index},
        )
        self._started[job.run_id] = self._clock.now()
        return self.dispatcher.dispatch(definition)

    def poll(self) -> list[JobOutcome]:
        """Outcomes of the training jobs that finished (or were lost) since the last poll."""
        out: list[JobOutcome] = []
        for event in self.dispatcher.poll():
            if event.job_type is not JobTypes.LAUNCH_TRAINING or event.run_id not in self._started:
                continue
            if event.kind not in (EventKind.FINISHED, EventKind.LOST):
                continue
            started = self._started.pop(event.run_id)
            error = event.error
            if event.kind is EventKind.LOST:
                error = error or "the job vanished without a final status"
            elif error is None and event.exit_code != 0:
                error = f"exit code {event.exit_code}"
            elif error is None and event.result is None:
                error = "the job wrote no result.json"
            out.append(
                JobOutcome(
                    run_id=event.run_id,
                    result=event.result,
                    error=error,
                    started_at=event.started_at if event.started_at is not None else started,
                    ended_at=event.at,
                    exit_code=event.exit_code,
                )
            )
        return out

    def wait(self, timeout: float) -> None:
        """Wait on the dispatcher if it can wake early, else let `timeout` pass."""
        if isinstance(self.dispatcher, Waitable):
            self.dispatcher.wait(timeout)
        else:
            self._clock.sleep(timeout)

    def cancel(self, dispatch_id: str) -> None:
        """Stop a job (no error if it has ended)."""
        self.dispatcher.cancel(dispatch_id)

    def close(self) -> None:
        """Close the dispatcher if it can be closed."""
        close = getattr(self.dispatcher, "close", None)
        if callable(close):
            close()


def _call(
    fn: Callable[[dict[str, Any]], Mapping[str, Any]], params: dict[str, Any]
) -> tuple[Any, str | None, float, float]:
    """Run one function trial (in a worker); never raises, so the times are kept."""
    started = time.time()
    try:
        result = fn(dict(params))
    except Exception as exc:  # the trial fails; the loop goes on
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return None, f"the objective raised {last}", started, time.time()
    return (dict(result) if isinstance(result, Mapping) else result), None, started, time.time()


def _picklable(fn: object) -> bool:
    try:
        pickle.dumps(fn)
    except Exception:
        return False
    return True


class LocalRunner:
    """Runs up to `n_jobs` trials at once on this machine.

    Functions run in a process pool (a thread pool when the function cannot be
    pickled); scripts and containers through sweepwise's local dispatcher, with the
    trial's directory as the run directory.

    Args:
        n_jobs: how many trials may run at once.

    Raises:
        ConfigError: `n_jobs` is below 1 (field `n_jobs`).
    """

    def __init__(self, n_jobs: int = 1) -> None:
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
            raise ConfigError("n_jobs", f"must be an integer >= 1 (got {n_jobs!r})")
        self.n_jobs = n_jobs
        self._processes: cf.ProcessPoolExecutor | None = None
        self._threads: cf.ThreadPoolExecutor | None = None
        self._futures: dict[cf.Future[tuple[Any, str | None, float, float]], str] = {}
        self._dispatchers: dict[tuple[Path, str], DispatcherRunner] = {}

    @property
    def capacity(self) -> int:
        """`n_jobs`."""
        return self.n_jobs

    def submit(self, job: TrialJob) -> str:
        """Start `job` in a worker (functions) or as a local process (scripts, containers)."""
        if isinstance(job.objective, FunctionObjective):
            future = self._pool(job.objective.fn).submit(_call, job.objective.fn, job.params)
            self._futures[future] = job.run_id
            return f"local-fn:{job.run_id}"
        return self._dispatcher_for(job.workdir).submit(job)

    def _pool(self, fn: object) -> cf.Executor:
        if _picklable(fn):
            if self._processes is None:
                self._processes = cf.ProcessPoolExecutor(max_workers=self.n_jobs)
            return self._processes
        if self._threads is None:
            self._threads = cf.ThreadPoolExecutor(max_workers=self.n_jobs)
        return self._threads

    def _dispatcher_for(self, workdir: Path) -> DispatcherRunner:
        # The local dispatcher's run dir is <runs_root>/<experiment>/<run_id>: the trial's directory.
        key = (workdir.parent.parent, workdir.parent.name)
        if key not in self._dispatchers:
            from sweepwise.dispatchers.local import LocalDispatcher

            self._dispatchers[key] = DispatcherRunner(LocalDispatcher(key[0], key[1]), self.n_jobs)
        return self._dispatchers[key]

    def poll(self) -> list[JobOutcome]:
        """The trials that ended since the last poll."""
        out: list[JobOutcome] = []
        for future in [f for f in self._futures if f.done()]:
            run_id = self._futures.pop(future)
            try:
                result, error, started, ended = future.result()
            except Exception as exc:  # the worker died (e.g. a crash in C code)
                now = time.time()
                result, error, started, ended = None, f"the worker failed: {exc!r}", now, now
            out.append(JobOutcome(run_id, result, error, started, ended))
        for runner in self._dispatchers.values():
            out.extend(runner.poll())
        return out

    def wait(self, timeout: float) -> None:
        """Return when a function trial ends, a local job may have ended, or after `timeout` seconds."""
        if self._futures:
            busy = [r for r in self._dispatchers.values() if r.busy]
            cf.wait(
                list(self._futures),
                timeout=min(timeout, 0.1) if busy else timeout,
                return_when="FIRST_COMPLETED",
            )
            return
        busy = [r for r in self._dispatchers.values() if r.busy]
        if busy:
            busy[0].wait(timeout)
        else:
            time.sleep(min(timeout, 0.01))

    def cancel(self, dispatch_id: str) -> None:
        """Stop a script or container job (a running function cannot be stopped)."""
        for runner in self._dispatchers.values():
            runner.cancel(dispatch_id)

    def close(self) -> None:
        """Shut the pools down and close the local dispatchers."""
        for pool in (self._processes, self._threads):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._processes = self._threads = None
        for runner in self._dispatchers.values():
            runner.close()
        self._dispatchers.clear()


__all__ = ["BaseRunner", "DispatcherRunner", "JobOutcome", "LocalRunner", "TrialJob"]
