"""`AxScheduler`: Ax chooses the trials, a runner runs them, the sweepwise store records them."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sweepwise.ax._backend import AxBackend, json_path, make_backend
from sweepwise.ax._config import DEFAULTS as _DEFAULTS
from sweepwise.ax._config import read_config
from sweepwise.ax._record import Scoring, TrialRecorder
from sweepwise.ax.objectives import (
    ContainerObjective,
    FunctionObjective,
    Objective,
    ScriptObjective,
    find_container_engine,
    parse_raw_data,
)
from sweepwise.ax.runners import BaseRunner, JobOutcome, TrialJob, TrialRunner, as_trial_runner
from sweepwise.ax.trials import BatchTrialContext, Trial, TrialStatus, status_from_ax
from sweepwise.core.errors import ConfigError
from sweepwise.core.protocols import Clock

logger = logging.getLogger(__name__)


class AxScheduler:
    """Runs Ax trials with a runner, recording every trial in the sweepwise store.

    Args:
        ax_client_or_experiment: an `ax.Client`, an Ax `Experiment`, or the older `AxClient`.
        runner: where trials run (`LocalRunner`, `DispatcherRunner`, or any `BaseRunner`).
        config: monitoring_interval (s, default 10), max_trial_monitoring_time (s, default
            86400), job_output_dir (default ~/ax_scheduler_output), cleanup_after_completion
            (default False), synchronous (default False), max_concurrent_trials (default
            None: the runner's capacity); and sweepwise's own: store (URL, default as the
            CLI: $SWEEPWISE_STORE, else ./sweepwise.db), experiment_name (default the Ax
            experiment's name), container_engine (default: found on PATH). An unknown key
            is ignored with a `SweepwiseWarning` (once per key per process).
        clock: where times come from and how waiting is done (default: the real clock).

    Raises:
        ConfigError: a config value of the wrong type or range (field `config.<key>`), or
            an object that is not an Ax client or experiment.
        MissingExtraError: ax-platform is not installed.
    """

    def __init__(
        self,
        ax_client_or_experiment: Any,
        runner: TrialRunner | BaseRunner,
        config: Mapping[str, Any] | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        config = read_config(config)
        from sweepwise.core.clock import RealClock

        self.config: dict[str, Any] = {**_DEFAULTS, **(config or {})}
        self.runner: TrialRunner = as_trial_runner(
            runner, capacity=int(self.config["max_concurrent_trials"] or 1), clock=clock
        )
        self.clock: Clock = clock or RealClock()
        self._backend: AxBackend = make_backend(ax_client_or_experiment)
        self.objective: Objective | None = None
        self.trials: dict[int, Trial] = {}
        self._recorder: TrialRecorder | None = None
        self._resume: list[int] = []  # unfinished trials of a loaded experiment, run first
        self._holds = 0  # loops running: the experiment stays `running` between their trials

    # -- objectives ------------------------------------------------------------------------

    def set_objective_function(
        self, objective_fn: Callable[[dict[str, Any]], Mapping[str, Any]]
    ) -> AxScheduler:
        """Optimise a function `params -> {metric: value | (mean, sem)}`; returns self."""
        self.objective = FunctionObjective(objective_fn)
        return self

    def set_script_objective(self, script_path: str) -> AxScheduler:
        """Optimise a script that reads `params.json` and writes `result.json`; returns self.

        Raises:
            ConfigError: the script does not exist (field `script_path`).
        """
        if not os.path.isfile(script_path):
            raise ConfigError("script_path", f"no such file {script_path!r}")
        self.objective = ScriptObjective(os.path.abspath(script_path))
        return self

    def set_container_objective(
        self, container_image: str, container_command: str | None = None
    ) -> AxScheduler:
        """Optimise a container run with the trial's directory mounted at `/work`; returns self.

        Raises:
            ConfigError: no container engine is available (field `container_engine`).
        """
        engine = find_container_engine(self.config["container_engine"])
        self.objective = ContainerObjective(container_image, container_command, engine)
        return self

    # -- trials ----------------------------------------------------------------------------

    def get_next_trial(self) -> int | None:
        """Generate a new trial with Ax; its index, or None if Ax can generate no more.

        After `load_experiment`, the loaded trials that had not finished come first.
        """
        indices = self._generate(1)
        return indices[0] if indices else None

    def run_trial(self, trial_index: int) -> Trial:
        """Start trial `trial_index` with the runner (and wait for it when synchronous).

        Raises:
            ConfigError: no objective is set, or the trial is unknown or already started.
        """
        trial = self._trial(trial_index)
        if trial.status is not TrialStatus.CANDIDATE:
            raise ConfigError("trial_index", f"trial {trial_index} has already been run ({trial.status})")
        if self.objective is None:
            raise ConfigError("objective", "set one first with set_objective_function/script/container")
        self._launch(trial, self.objective)
        if self.config["synchronous"]:
            self._wait_for([trial_index])
        return trial

    def complete_trial(self, trial_index: int, raw_data: Mapping[str, Any] | None = None) -> None:
        """Give Ax the trial's data and mark it completed.

        Without `raw_data`, the data is what the trial's job returned: a trial still
        running is waited for (up to `max_trial_monitoring_time`); one whose job failed
        stays failed (logged); one already completed is left as it is.

        Args:
            trial_index: the trial.
            raw_data: `{metric: value | (mean, sem)}`; None takes the job's result.

        Raises:
            ConfigError: no `raw_data` for a trial that was never run, or `raw_data`
                for a trial that failed or was abandoned.
            ValueError: `raw_data` is malformed or misses an objective metric.
        """
        trial = self._trial(trial_index)
        if raw_data is None:
            self._complete_from_job(trial)
            return
        if trial.status in (TrialStatus.FAILED, TrialStatus.CANCELLED):
            raise ConfigError(
                "trial_index", f"trial {trial_index} is {trial.status.lower()} ({trial.error}); not completed"
            )
        data = parse_raw_data(raw_data, self._backend.metrics)
        self._backend.complete(trial_index, data)
        now = self.clock.now()
        trial.result, trial.status, trial.ended_at = dict(data), TrialStatus.COMPLETED, now
        if trial.started_at is None:
            trial.started_at = now
            self._record().attached(trial.run_id, trial_index, trial.parameters, now)
        self._record().completed(trial.run_id, dict(data), trial.started_at, now)
        self._settle()

    def _complete_from_job(self, trial: Trial) -> None:
        if trial.status is TrialStatus.CANDIDATE:
            raise ConfigError(
                "raw_data",
                f"trial {trial.index} has not been run; run_trial({trial.index}) first, or give raw_data",
            )
        if trial.status is TrialStatus.RUNNING:
            self._wait_for([trial.index])
        if trial.status is not TrialStatus.COMPLETED:
            logger.warning("trial %d not completed: it is %s (%s)", trial.index, trial.status, trial.error)

    def monitor_trials(self) -> None:
        """One non-blocking pass over the running trials.

        Every trial whose job has ended is completed in Ax with the job's result, or
        marked failed with the reason; a trial running longer than
        `max_trial_monitoring_time` is stopped and failed. Returns at once.
        """
        self._step(wait=False)

    def run_optimization(self, max_trials: int = 10) -> dict[str, Any] | list[dict[str, Any]]:
        """Run up to `max_trials` more trials, keeping the runner's capacity busy.

        At most `max_concurrent_trials` run at once when it is set, one when synchronous.
        Unfinished trials of a loaded experiment run first. The experiment is `complete`
        in the store when this returns.

        Returns:
            The best parameters; for several objectives, the list of Pareto-optimal ones
            (empty when no trial completed).
        """
        capacity = self._capacity()
        launched = 0
        with self._held_open():
            while True:
                running = [i for i, t in self.trials.items() if t.status is TrialStatus.RUNNING]
                room = min(capacity - len(running), max_trials - launched)
                if room > 0:
                    new = self._generate(room)
                    launched += len(new)
                    for index in new:
                        self._start(index)
                    running += new
                    if not new and not running:
                        break
                if not running:
                    if launched >= max_trials:
                        break
                    continue
                self._step()
        return self.best_parameters()

    def best_parameters(self) -> dict[str, Any] | list[dict[str, Any]]:
        """The best parameters so far (the Pareto-optimal ones for several objectives).

        Returns:
            Empty (`{}`, or `[]` for several objectives) while no trial has completed.
        """
        try:
            return self._backend.best()
        except Exception as exc:  # Ax raises (or returns None) without completed data
            logger.warning("no best parameters yet: %s", exc)
            return [] if self._backend.is_multi_objective else {}

    @contextmanager
    def batch_trial_context(self) -> Iterator[BatchTrialContext]:
        """Collect trials with `batch.add_trial(params)`; they run on `batch.run()` or on leaving.

        Leaving the block runs (and waits for) the trials `batch.run()` has not run; no
        trial runs twice. Leaving it by an exception runs none: the trials not run yet
        are marked abandoned in Ax (CANCELLED here) and the exception goes on.
        """
        batch = BatchTrialContext(self)
        try:
            yield batch
        except BaseException as exc:
            batch.abandon(f"the batch_trial_context block raised {type(exc).__name__}")
            raise
        batch.run()

    # -- persistence -----------------------------------------------------------------------

    def save_experiment(self, path: str | None = None) -> None:
        """Save the Ax experiment as JSON (`.json` appended; default `<experiment name>.json`)."""
        self._backend.save(json_path(path or self.experiment_name))

    def load_experiment(self, path: str | None = None) -> None:
        """Replace the experiment with the one saved at `path` (as `save_experiment` names it).

        Its trials that had not finished are run again first: `get_next_trial` and
        `run_optimization` hand them out before asking Ax for new ones.
        """
        self._backend = self._backend.load(json_path(path or self.experiment_name))
        self._close_store()
        self.trials = {}
        for index, ax_trial in sorted(self._backend.experiment.trials.items()):
            if ax_trial.arm is not None:
                self._new_trial(int(index), dict(ax_trial.arm.parameters), status_from_ax(ax_trial))
        self._resume = [i for i, t in self.trials.items() if t.status is TrialStatus.CANDIDATE]

    @property
    def ax_client(self) -> Any:
        """The underlying Ax client."""
        return self._backend.client

    def close(self) -> None:
        """Finish the experiment, then close the store connection and the runner (if it can be closed).

        Trials whose jobs ended are collected first; a trial still running is stopped and
        failed (nothing would collect it), and the experiment is marked complete.
        """
        try:
            if any(t.status is TrialStatus.RUNNING for t in self.trials.values()):
                self._step(wait=False)
                for trial in [t for t in self.trials.values() if t.status is TrialStatus.RUNNING]:
                    self._stop(trial, "the scheduler was closed while the trial ran")
            if self._recorder is not None:
                self._recorder.finish()
        finally:
            self._close_store()
            close = getattr(self.runner, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> AxScheduler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the work --------------------------------------------------------------------------

    def _generate(self, n: int) -> list[int]:
        resumed, self._resume = self._resume[:n], self._resume[n:]
        if len(resumed) == n:
            return resumed
        try:
            trials = self._backend.next_trials(n - len(resumed))
        except Exception as exc:  # Ax says it can generate no more (exhausted space, limits)
            logger.info("Ax generated no trial: %s", exc)
            return resumed
        for index, params in trials.items():
            self._new_trial(index, params)
        return resumed + sorted(trials)

    def _attach(self, params: dict[str, Any]) -> int:
        index = self._backend.attach(params)
        self._new_trial(index, self._backend.parameters(index))
        return index

    def _abandon(self, index: int, reason: str) -> None:
        trial = self._trial(index)
        if trial.status is TrialStatus.CANDIDATE:
            self._backend.abandon(index, reason)
            trial.status, trial.error = TrialStatus.CANCELLED, reason

    def _start(self, index: int) -> None:
        """Start a trial without waiting for it (the caller's loop does)."""
        if self.objective is None:
            raise ConfigError("objective", "set one first with set_objective_function/script/container")
        self._launch(self._trial(index), self.objective)

    def _launch(self, trial: Trial, objective: Objective) -> None:
        workdir = self._workdir(trial.run_id)
        job = TrialJob(trial.index, trial.run_id, dict(trial.parameters), objective, workdir)
        trial.started_at = self.clock.now()
        trial.dispatch_id = self.runner.submit(job)
        trial.status = TrialStatus.RUNNING
        self._record().started(
            trial.run_id,
            trial.index,
            trial.parameters,
            objective.describe(),
            trial.dispatch_id,
            trial.started_at,
        )

    def _capacity(self) -> int:
        """How many trials may run at once: one when synchronous, else the runner's capacity
        (at most `max_concurrent_trials`)."""
        if self.config["synchronous"]:
            return 1
        limit = self.config["max_concurrent_trials"]
        capacity = max(1, self.runner.capacity)
        return capacity if limit is None else min(capacity, int(limit))

    def _run_many(self, indices: list[int]) -> list[Trial]:
        capacity = self._capacity()
        queue = list(indices)
        with self._held_open():
            while queue or any(self.trials[i].status is TrialStatus.RUNNING for i in indices):
                running = sum(self.trials[i].status is TrialStatus.RUNNING for i in self.trials)
                while queue and running < capacity:
                    self._start(queue.pop(0))
                    running += 1
                self._step()
        return [self.trials[i] for i in indices]

    def _wait_for(self, indices: list[int]) -> None:
        while any(self.trials[i].status is TrialStatus.RUNNING for i in indices):
            self._step()

    @contextmanager
    def _held_open(self) -> Iterator[None]:
        """Keep the experiment `running` between the trials of a loop; settle it after."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
        self._settle()

    def _settle(self) -> None:
        """docs/ax.md, "The experiment's status": complete once no trial runs (outside a loop)."""
        if self._holds or self._recorder is None:
            return
        if not any(t.status is TrialStatus.RUNNING for t in self.trials.values()):
            self._recorder.finish()

    def _step(self, *, wait: bool = True) -> None:
        """Handle whatever ended (and trials that ran too long); with `wait`, wait a little first
        when nothing has."""
        outcomes = self.runner.poll()
        if not outcomes and wait:
            self.runner.wait(float(self.config["monitoring_interval"]))
            outcomes = self.runner.poll()
        by_run = {t.run_id: t for t in self.trials.values()}
        for outcome in outcomes:
            trial = by_run.get(outcome.run_id)
            if trial is not None and trial.status is TrialStatus.RUNNING:
                self._finish(trial, outcome)
        self._enforce_time_limit()
        self._settle()

    def _finish(self, trial: Trial, outcome: JobOutcome) -> None:
        trial.started_at, trial.ended_at = outcome.started_at, outcome.ended_at
        error = outcome.error
        data: dict[str, Any] | None = None
        if error is None:
            try:
                data = dict(parse_raw_data(outcome.result, self._backend.metrics))
            except ValueError as exc:
                error = f"bad result: {exc}"
        if error is None and data is not None:
            self._backend.complete(trial.index, data)
            trial.status, trial.result = TrialStatus.COMPLETED, data
            self._record().completed(trial.run_id, data, outcome.started_at, outcome.ended_at)
        else:
            reason = error or "no result"
            self._backend.fail(trial.index, reason)
            trial.status, trial.error = TrialStatus.FAILED, reason
            self._record().failed(
                trial.run_id, reason, outcome.started_at, outcome.ended_at, outcome.exit_code
            )
            logger.warning("trial %d failed: %s", trial.index, reason)
        if self.config["cleanup_after_completion"]:
            shutil.rmtree(self._workdir(trial.run_id, create=False), ignore_errors=True)

    def _enforce_time_limit(self) -> None:
        limit = float(self.config["max_trial_monitoring_time"])
        now = self.clock.now()
        for trial in self.trials.values():
            if (
                trial.status is TrialStatus.RUNNING
                and trial.started_at is not None
                and now - trial.started_at > limit
            ):
                self._stop(trial, f"still running after max_trial_monitoring_time={limit:g}s; stopped")

    def _stop(self, trial: Trial, reason: str) -> None:
        """Cancel a running trial's job (when the runner can) and fail the trial with `reason`."""
        cancel = getattr(self.runner, "cancel", None)
        if callable(cancel) and trial.dispatch_id is not None:
            cancel(trial.dispatch_id)
        started = trial.started_at if trial.started_at is not None else self.clock.now()
        self._finish(trial, JobOutcome(trial.run_id, None, reason, started, self.clock.now()))

    # -- helpers ---------------------------------------------------------------------------

    def _trial(self, index: int) -> Trial:
        trial = self.trials.get(index)
        if trial is None:
            ax_trial = self._backend.experiment.trials.get(index)
            if ax_trial is None or getattr(ax_trial, "arm", None) is None:
                raise ConfigError("trial_index", f"no trial {index} in the experiment")
            trial = self._new_trial(index, dict(ax_trial.arm.parameters), status_from_ax(ax_trial))
        return trial

    def _new_trial(
        self, index: int, params: dict[str, Any], status: TrialStatus = TrialStatus.CANDIDATE
    ) -> Trial:
        trial = Trial(index, params, status, self._run_id(index), scheduler=self)
        self.trials[index] = trial
        return trial

    @property
    def experiment_name(self) -> str:
        """The sweepwise experiment the trials are recorded under."""
        name = self.config["experiment_name"] or self._backend.name or "ax-experiment"
        return str(name).replace("/", "_").replace(" ", "_")

    def _run_id(self, index: int) -> str:
        return f"{self.experiment_name}-trial-{index:04d}"

    def _output_root(self) -> Path:
        """`job_output_dir`, absolute: trial directories are `<it>/<experiment>/<run id>`."""
        return Path(os.path.expanduser(str(self.config["job_output_dir"]))).absolute()

    def _workdir(self, run_id: str, *, create: bool = True) -> Path:
        path = self._output_root() / self.experiment_name / run_id
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def _record(self) -> TrialRecorder:
        if self._recorder is None:
            from sweepwise.stores.location import resolve_store_url
            from sweepwise.stores.sql import SQLStore

            store = SQLStore(resolve_store_url(self.config["store"]))
            self._recorder = TrialRecorder(
                store,
                self.experiment_name,
                Scoring.of(*self._backend.objective_weights),
                metrics=self._backend.metrics,
                runner=type(self.runner).__name__,
                runs_root=str(self._output_root()),
            )
        return self._recorder

    def _close_store(self) -> None:
        if self._recorder is not None:
            self._recorder.store.close()
            self._recorder = None


__all__ = ["AxScheduler"]
