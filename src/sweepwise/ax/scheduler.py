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
from sweepwise.ax._record import TrialRecorder
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

_DEFAULTS: dict[str, Any] = {
    "monitoring_interval": 10.0,
    "max_trial_monitoring_time": 86400.0,
    "job_output_dir": "~/ax_scheduler_output",
    "cleanup_after_completion": False,
    "synchronous": False,
    "store": None,
    "experiment_name": None,
    "container_engine": None,
}


class AxScheduler:
    """Runs Ax trials with a runner, recording every trial in the sweepwise store.

    Args:
        ax_client_or_experiment: an `ax.Client`, an Ax `Experiment`, or the older `AxClient`.
        runner: where trials run (`LocalRunner`, `DispatcherRunner`, or any `BaseRunner`).
        config: monitoring_interval (s, default 10), max_trial_monitoring_time (s, default
            86400), job_output_dir (default ~/ax_scheduler_output), cleanup_after_completion
            (default False), synchronous (default False); and sweepwise's own: store (URL,
            default as the CLI: $SWEEPWISE_STORE, else ./sweepwise.db), experiment_name
            (default the Ax experiment's name), container_engine (default: found on PATH).
        clock: where times come from and how waiting is done (default: the real clock).

    Raises:
        ConfigError: an unknown config key or an object that is not an Ax client or experiment.
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
        unknown = sorted(set(config or {}) - set(_DEFAULTS))
        if unknown:
            raise ConfigError(f"config.{unknown[0]}", f"unknown key; valid keys are: {', '.join(_DEFAULTS)}")
        from sweepwise.core.clock import RealClock

        self.config: dict[str, Any] = {**_DEFAULTS, **(config or {})}
        self.runner: TrialRunner = as_trial_runner(runner, clock=clock)
        self.clock: Clock = clock or RealClock()
        self._backend: AxBackend = make_backend(ax_client_or_experiment)
        self.objective: Objective | None = None
        self.trials: dict[int, Trial] = {}
        self._recorder: TrialRecorder | None = None

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
        """Generate a new trial with Ax; its index, or None if Ax can generate no more."""
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

        Args:
            trial_index: the trial.
            raw_data: `{metric: value | (mean, sem)}`; None completes it with what Ax has.

        Raises:
            ValueError: `raw_data` is malformed or misses an objective metric.
        """
        trial = self._trial(trial_index)
        data = parse_raw_data(raw_data, self._backend.metrics) if raw_data is not None else {}
        self._backend.complete(trial_index, data if raw_data is not None else None)
        now = self.clock.now()
        trial.result, trial.status, trial.ended_at = dict(data), TrialStatus.COMPLETED, now
        if trial.started_at is None:
            trial.started_at = now
            self._record().attached(trial.run_id, trial_index, trial.parameters, now)
        self._record().completed(trial.run_id, dict(data), trial.started_at, now)

    def monitor_trials(self) -> None:
        """Wait until every running trial has finished, completing or failing each in Ax."""
        self._wait_for([i for i, t in self.trials.items() if t.status is TrialStatus.RUNNING])

    def run_optimization(self, max_trials: int = 10) -> dict[str, Any] | list[dict[str, Any]]:
        """Run up to `max_trials` trials, keeping the runner's capacity busy (one when synchronous).

        Returns:
            The best parameters; for several objectives, the list of Pareto-optimal ones
            (empty when no trial completed).
        """
        capacity = 1 if self.config["synchronous"] else max(1, self.runner.capacity)
        launched = 0
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
        if self._recorder is not None:
            self._recorder.finish()
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
        """Collect trials with `batch.add_trial(params)` and run them with `batch.run()`."""
        yield BatchTrialContext(self)

    # -- persistence -----------------------------------------------------------------------

    def save_experiment(self, path: str) -> None:
        """Save the Ax experiment as JSON (`.json` appended when missing)."""
        self._backend.save(json_path(path))

    def load_experiment(self, path: str) -> None:
        """Replace the experiment with the one saved at `path` (`.json` appended when missing)."""
        self._backend = self._backend.load(json_path(path))
        self._recorder = None
        self.trials = {
            int(index): Trial(int(index), dict(t.arm.parameters), status_from_ax(t), self._run_id(int(index)))
            for index, t in self._backend.experiment.trials.items()
            if t.arm is not None
        }

    @property
    def ax_client(self) -> Any:
        """The underlying Ax client."""
        return self._backend.client

    def close(self) -> None:
        """Close the store connection and the runner (if it can be closed)."""
        if self._recorder is not None:
            self._recorder.store.close()
            self._recorder = None
        close = getattr(self.runner, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> AxScheduler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the work --------------------------------------------------------------------------

    def _generate(self, n: int) -> list[int]:
        try:
            trials = self._backend.next_trials(n)
        except Exception as exc:  # Ax says it can generate no more (exhausted space, limits)
            logger.info("Ax generated no trial: %s", exc)
            return []
        for index, params in trials.items():
            self.trials[index] = Trial(index, params, run_id=self._run_id(index))
        return sorted(trials)

    def _attach(self, params: dict[str, Any]) -> int:
        index = self._backend.attach(params)
        self.trials[index] = Trial(index, self._backend.parameters(index), run_id=self._run_id(index))
        return index

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

    def _run_many(self, indices: list[int]) -> list[Trial]:
        capacity = 1 if self.config["synchronous"] else max(1, self.runner.capacity)
        queue = list(indices)
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

    def _step(self) -> None:
        """Wait a little, then handle whatever ended (and trials that ran too long)."""
        outcomes = self.runner.poll()
        if not outcomes:
            self.runner.wait(float(self.config["monitoring_interval"]))
            outcomes = self.runner.poll()
        by_run = {t.run_id: t for t in self.trials.values()}
        for outcome in outcomes:
            trial = by_run.get(outcome.run_id)
            if trial is not None and trial.status is TrialStatus.RUNNING:
                self._finish(trial, outcome)
        self._enforce_time_limit()

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
                cancel = getattr(self.runner, "cancel", None)
                if callable(cancel) and trial.dispatch_id is not None:
                    cancel(trial.dispatch_id)
                reason = f"still running after max_trial_monitoring_time={limit:g}s; stopped"
                self._finish(trial, JobOutcome(trial.run_id, None, reason, trial.started_at, now))

    # -- helpers ---------------------------------------------------------------------------

    def _trial(self, index: int) -> Trial:
        trial = self.trials.get(index)
        if trial is None:
            try:
                params = self._backend.parameters(index)
            except (KeyError, AttributeError):
                raise ConfigError("trial_index", f"no trial {index} in the experiment") from None
            trial = self.trials[index] = Trial(index, params, run_id=self._run_id(index))
        return trial

    @property
    def experiment_name(self) -> str:
        """The sweepwise experiment the trials are recorded under."""
        name = self.config["experiment_name"] or self._backend.name or "ax-experiment"
        return str(name).replace("/", "_").replace(" ", "_")

    def _run_id(self, index: int) -> str:
        return f"{self.experiment_name}-trial-{index:04d}"

    def _workdir(self, run_id: str, *, create: bool = True) -> Path:
        root = Path(os.path.expanduser(str(self.config["job_output_dir"])))
        path = root.absolute() / self.experiment_name / run_id
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def _record(self) -> TrialRecorder:
        if self._recorder is None:
            from sweepwise.stores.location import resolve_store_url
            from sweepwise.stores.sql import SQLStore

            store = SQLStore(resolve_store_url(self.config["store"]))
            spec = {"name": self.experiment_name, "kind": "ax", "metrics": self._backend.metrics}
            self._recorder = TrialRecorder(store, self.experiment_name, spec)
        return self._recorder


__all__ = ["AxScheduler"]
