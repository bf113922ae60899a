"""Runners: where an `AxScheduler` runs its trials.

`AxScheduler` accepts a runner of either contract (`sweepwise.ax.base_runner`): a
seed-style `BaseRunner` subclass, run one `Job` at a time through `BaseRunnerAdapter`,
or a native `TrialRunner`. Two native runners are built in, and are `BaseRunner`s too:

- `LocalRunner` (the seed's `JobLibRunner`): up to `n_jobs` trials at once on this
  machine, functions in a process or thread pool, scripts and containers through
  sweepwise's local dispatcher;
- `DispatcherRunner` turns any sweepwise dispatcher (local, SLURM, simulated, ...)
  into a runner of function, script and container objectives (`SlurmRunner`, in
  `sweepwise.ax.slurm_runner`, is one over the SLURM dispatcher).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import os
import pickle
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweepwise.ax.adapter import BaseRunnerAdapter, JobMethods
from sweepwise.ax.base_runner import BaseRunner, JobOutcome, TrialJob, TrialRunner
from sweepwise.ax.objectives import CONTAINER_ENGINES, ContainerObjective, FunctionObjective, ScriptObjective
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import ArgStyle, EventKind, JobDefinition, JobTypes
from sweepwise.core.protocols import Clock, Waitable

if TYPE_CHECKING:
    from sweepwise.core.protocols import Dispatcher


class DispatcherRunner(JobMethods):
    """Any sweepwise `Dispatcher` as a runner of function, script and container objectives.

    Each trial becomes a training job whose working directory is the trial's directory,
    where the dispatcher (like the local one) also writes `params.json`. A script's or a
    container's command runs with nothing appended. A function is cloudpickled with the
    trial's parameters into `<trial dir>/function.pkl`, and the job is
    `python -m sweepwise.ax.run_function <trial dir>`, which calls `fn(params)` and
    writes the result (`sweepwise.ax.run_function`): the trial's directory must be
    readable where the job runs, and cloudpickle and the function's module importable there.

    Args:
        dispatcher: the dispatcher to start jobs with.
        capacity: how many jobs may run at once.
        clock: where times come from (default: the real clock).
        python: the interpreter that runs function objectives and `.py` scripts where
            the jobs run (default: this one).

    Raises:
        ConfigError: `capacity` is below 1.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        capacity: int = 1,
        *,
        clock: Clock | None = None,
        python: str | None = None,
    ) -> None:
        if capacity < 1:
            raise ConfigError("capacity", f"must be >= 1 (got {capacity})")
        from sweepwise.core.clock import RealClock

        super().__init__()
        self.dispatcher = dispatcher
        self.python = python or sys.executable
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
            ConfigError: a function objective cannot be pickled (field `objective`).
        """
        definition = self._definition(job)
        self._started[job.run_id] = self._clock.now()
        return self.dispatcher.dispatch(definition)

    def _definition(self, job: TrialJob) -> JobDefinition:
        """The training job that runs `job` (a subclass may add resources to it)."""
        objective = job.objective
        if isinstance(objective, ScriptObjective):
            cmd = objective.command()
            if cmd[0] == sys.executable:
                cmd[0] = self.python
        elif isinstance(objective, ContainerObjective):
            cmd = objective.argv(str(job.workdir))
        else:
            from sweepwise.ax.run_function import write_function_job

            try:
                cmd = write_function_job(job.workdir, objective.fn, job.params, self.python)
            except ValueError as exc:
                raise ConfigError("objective", str(exc)) from exc
        return JobDefinition(
            run_id=job.run_id,
            cmd=cmd,
            overrides=dict(job.params),
            arg_style=ArgStyle.TEMPLATE,
            cwd=str(job.workdir),
            metadata={"trial_index": job.trial_index},
        )

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


BACKENDS = {"loky": "processes", "multiprocessing": "processes", "threading": "threads"}
"""The seed's joblib backends, and the pool each runs functions in."""

_RUNNER_CONFIG = ("container_engine", "tmp_dir")


def _cpu_count() -> int:
    """The CPUs this process may use (joblib counts the same way)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def effective_n_jobs(n_jobs: int | None) -> int:
    """How many workers `n_jobs` means, as in joblib: -1 all CPUs, -2 all but one, None one.

    Raises:
        ConfigError: `n_jobs` is not an integer, is 0, or leaves no CPU (field `n_jobs`).
    """
    if n_jobs is None:
        return 1
    cpus = _cpu_count()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -cpus:
        raise ConfigError(
            "n_jobs",
            f"must be a worker count >= 1, or -1 (all {cpus} CPUs) down to -{cpus} (one); got {n_jobs!r}",
        )
    return n_jobs if n_jobs > 0 else cpus + 1 + n_jobs


class LocalRunner(JobMethods):
    """Runs several trials at once on this machine; the seed's `JobLibRunner`.

    Functions run in a process pool (`loky`, `multiprocessing`; a thread pool for a
    function that cannot be pickled, such as a lambda) or a thread pool
    (`threading`); scripts and containers through sweepwise's local dispatcher, with
    the trial's directory as the run directory. Unlike the seed, where `n_jobs` only
    sizes joblib's pool inside each job, `n_jobs` here is how many trials run at once.

    Args:
        n_jobs: how many trials may run at once, as joblib counts: -1 (the default)
            all CPUs, -2 all but one, ...
        backend: `loky` (the default) or `multiprocessing` for processes, `threading`
            for threads.
        config: `container_engine` (podman, docker, apptainer or singularity; it
            overrides the scheduler's), `tmp_dir` (where jobs given to `run_job`
            without a working directory run; default the system's temp directory).

    Raises:
        ConfigError: a bad `n_jobs`, `backend` or `config` key (the field is named).
    """

    def __init__(
        self, n_jobs: int | None = -1, backend: str = "loky", config: Mapping[str, Any] | None = None
    ) -> None:
        workers = effective_n_jobs(n_jobs)
        if backend not in BACKENDS:
            raise ConfigError("backend", f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
        unknown = sorted(set(config or {}) - set(_RUNNER_CONFIG))
        if unknown:
            raise ConfigError(
                f"config.{unknown[0]}", f"unknown key; valid keys are: {', '.join(_RUNNER_CONFIG)}"
            )
        engine = (config or {}).get("container_engine")
        if engine is not None and engine not in CONTAINER_ENGINES:
            choices = ", ".join(CONTAINER_ENGINES)
            raise ConfigError("config.container_engine", f"unknown engine {engine!r}; use one of: {choices}")
        super().__init__(config)
        self.n_jobs = n_jobs
        self.backend = backend
        self.container_engine: str | None = engine
        self._workers = workers
        self._processes: cf.ProcessPoolExecutor | None = None
        self._threads: cf.ThreadPoolExecutor | None = None
        self._futures: dict[cf.Future[tuple[Any, str | None, float, float]], str] = {}
        self._dispatchers: dict[tuple[Path, str], DispatcherRunner] = {}
        self._owners: dict[str, DispatcherRunner] = {}  # dispatch id -> the runner that started it

    @property
    def capacity(self) -> int:
        """How many trials run at once (`n_jobs` with joblib's negative counts resolved)."""
        return self._workers

    def submit(self, job: TrialJob) -> str:
        """Start `job` in a worker (functions) or as a local process (scripts, containers)."""
        objective = job.objective
        if isinstance(objective, FunctionObjective):
            future = self._pool(objective.fn).submit(_call, objective.fn, job.params)
            self._futures[future] = job.run_id
            return f"local-fn:{job.run_id}"
        if isinstance(objective, ContainerObjective) and self.container_engine is not None:
            job = dataclasses.replace(
                job, objective=dataclasses.replace(objective, engine=self.container_engine)
            )
        runner = self._dispatcher_for(job.workdir)
        dispatch_id = runner.submit(job)
        self._owners[dispatch_id] = runner
        return dispatch_id

    def _pool(self, fn: object) -> cf.Executor:
        if BACKENDS[self.backend] == "processes" and _picklable(fn):
            if self._processes is None:
                self._processes = cf.ProcessPoolExecutor(max_workers=self._workers)
            return self._processes
        if self._threads is None:
            self._threads = cf.ThreadPoolExecutor(max_workers=self._workers)
        return self._threads

    def _dispatcher_for(self, workdir: Path) -> DispatcherRunner:
        # The local dispatcher's run dir is <runs_root>/<experiment>/<run_id>: the trial's directory.
        key = (workdir.parent.parent, workdir.parent.name)
        if key not in self._dispatchers:
            from sweepwise.dispatchers.local import LocalDispatcher

            self._dispatchers[key] = DispatcherRunner(LocalDispatcher(key[0], key[1]), self._workers)
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
        # Only its own dispatcher: another would wait out its grace period for a job it never ran.
        runner = self._owners.pop(dispatch_id, None)
        if runner is not None:
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
        self._owners.clear()


JobLibRunner = LocalRunner
"""The seed's name for the local runner: `JobLibRunner(n_jobs=-1, backend="loky", config=None)`."""


def as_trial_runner(runner: object, *, capacity: int = 1, clock: Clock | None = None) -> TrialRunner:
    """The runner `AxScheduler` drives.

    Args:
        runner: a native `TrialRunner` (returned as it is), or a seed-style runner (a
            `BaseRunner` subclass, or any object with `run_job`, `check_job_status` and
            `cancel_job`), wrapped in a `BaseRunnerAdapter`.
        capacity: how many trials a wrapped seed-style runner runs at once (the seed's
            `max_concurrent_trials`, 1 by default there).
        clock: how the adapter waits (default: the real clock).

    Raises:
        ConfigError: `runner` is neither (field `runner`).
    """
    if isinstance(runner, TrialRunner):
        return runner
    seed_methods = ("run_job", "check_job_status", "cancel_job")
    if isinstance(runner, BaseRunner) or all(callable(getattr(runner, m, None)) for m in seed_methods):
        return BaseRunnerAdapter(runner, capacity, clock=clock)  # type: ignore[arg-type]
    raise ConfigError(
        "runner",
        f"{type(runner).__name__} is not a runner; pass JobLibRunner(...), DispatcherRunner(...) "
        "or a BaseRunner subclass with run_job, check_job_status and cancel_job",
    )


__all__ = [
    "BACKENDS",
    "BaseRunner",
    "BaseRunnerAdapter",
    "DispatcherRunner",
    "JobLibRunner",
    "JobOutcome",
    "LocalRunner",
    "TrialJob",
    "TrialRunner",
    "as_trial_runner",
    "effective_n_jobs",
]
