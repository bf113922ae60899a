"""One small interface over the Ax APIs `AxScheduler` accepts.

`ax.Client` (Ax >= 1.0), an `ax.core.experiment.Experiment` (wrapped in a `Client`),
and the older service API's `AxClient` when the installed Ax still ships it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweepwise.core.errors import ConfigError
from sweepwise.optimizers.ax_adapter import import_ax

RawData = dict[str, float | tuple[float, float]]


class AxBackend:
    """The operations the scheduler needs, on an `ax.Client`."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def experiment(self) -> Any:
        """The Ax `Experiment`."""
        return self.client._experiment  # Client has no public getter in Ax 1.x

    @property
    def name(self) -> str | None:
        """The experiment's name, if it has one."""
        return getattr(self.experiment, "name", None) or None

    @property
    def metrics(self) -> list[str]:
        """The names of the objective metrics."""
        config = self.experiment.optimization_config
        return [] if config is None else sorted(config.objective.metric_names)

    @property
    def objective_weights(self) -> tuple[list[tuple[str, float]], bool]:
        """The objective's metrics with their weights, in the order the objective names them.

        A weight below 0 is a metric Ax minimises. Returns the list and whether the
        objective is their weighted sum (a scalarized objective); empty without one.
        """
        config = self.experiment.optimization_config
        if config is None:
            return [], False
        objective = config.objective
        weights = [(str(name), float(weight)) for name, weight in objective.metric_weights]
        return weights, bool(objective.is_scalarized_objective)

    @property
    def is_multi_objective(self) -> bool:
        """True when the experiment has several objectives."""
        config = self.experiment.optimization_config
        return bool(config is not None and config.is_moo_problem)

    def next_trials(self, n: int) -> dict[int, dict[str, Any]]:
        """Ask Ax for up to `n` new trials (left running in Ax)."""
        trials = self.client.get_next_trials(max_trials=n)
        return {int(index): dict(params) for index, params in trials.items()}

    def attach(self, params: dict[str, Any]) -> int:
        """Add a trial with the given parameters; return its index."""
        return int(self.client.attach_trial(parameters=params))

    def parameters(self, index: int) -> dict[str, Any]:
        """The parameters of trial `index`."""
        arm = self.experiment.trials[index].arm
        return dict(arm.parameters)

    def complete(self, index: int, raw_data: RawData | None) -> None:
        """Attach the data and mark the trial completed."""
        self.client.complete_trial(trial_index=index, raw_data=raw_data)

    def fail(self, index: int, reason: str) -> None:
        """Mark the trial failed, keeping `reason`."""
        self.client.mark_trial_failed(trial_index=index, failed_reason=reason)

    def abandon(self, index: int, reason: str) -> None:
        """Mark a trial that will never run abandoned."""
        self.client.mark_trial_abandoned(trial_index=index)

    def best(self) -> dict[str, Any] | list[dict[str, Any]]:
        """The best parameters, or the Pareto-optimal ones for several objectives."""
        if self.is_multi_objective:
            return [
                dict(params) for params, *_ in self.client.get_pareto_frontier(use_model_predictions=False)
            ]
        best = self.client.get_best_parameterization(use_model_predictions=False)
        if best is None:
            raise ValueError("no completed trial yet")
        return dict(best[0])

    def save(self, path: str) -> None:
        """Save the experiment (and generation strategy) as Ax JSON."""
        self.client.save_to_json_file(filepath=path)

    def load(self, path: str) -> AxBackend:
        """A backend over what `save` wrote."""
        return AxBackend(type(self.client).load_from_json_file(filepath=path))


class LegacyAxBackend(AxBackend):
    """The same operations on the service API's `AxClient`."""

    @property
    def experiment(self) -> Any:
        """The Ax `Experiment`."""
        return self.client.experiment

    def next_trials(self, n: int) -> dict[int, dict[str, Any]]:
        """Ask Ax for up to `n` new trials."""
        trials, _done = self.client.get_next_trials(max_trials=n)
        return {int(index): dict(params) for index, params in trials.items()}

    def attach(self, params: dict[str, Any]) -> int:
        """Add a trial with the given parameters; return its index."""
        _params, index = self.client.attach_trial(parameters=params)
        return int(index)

    def fail(self, index: int, reason: str) -> None:
        """Mark the trial failed, keeping `reason` in its run metadata."""
        self.client.log_trial_failure(trial_index=index, metadata={"failed_reason": reason})

    def abandon(self, index: int, reason: str) -> None:
        """Mark a trial that will never run abandoned, keeping `reason`."""
        self.client.abandon_trial(trial_index=index, reason=reason)

    def best(self) -> dict[str, Any] | list[dict[str, Any]]:
        """The best parameters, or the Pareto-optimal ones for several objectives."""
        if self.is_multi_objective:
            front = self.client.get_pareto_optimal_parameters(use_model_predictions=False)
            return [dict(params) for params, _values in front.values()]
        best = self.client.get_best_parameters(use_model_predictions=False)
        if best is None:
            raise ValueError("no completed trial yet")
        return dict(best[0])

    def save(self, path: str) -> None:
        """Save the experiment (and generation strategy) as Ax JSON."""
        self.client.save_to_json_file(filepath=path)

    def load(self, path: str) -> AxBackend:
        """A backend over what `save` wrote."""
        return LegacyAxBackend(type(self.client).load_from_json_file(filepath=path))


def make_backend(obj: Any) -> AxBackend:
    """Wrap an `ax.Client`, an Ax `Experiment` or a service-API `AxClient`.

    Raises:
        ConfigError: `obj` is none of these (field `ax_client_or_experiment`).
        MissingExtraError: ax-platform is not installed.
    """
    ax = import_ax()
    if isinstance(obj, ax.Client):
        return AxBackend(obj)
    from ax.core.experiment import Experiment

    if isinstance(obj, Experiment):
        client = ax.Client()
        client.set_experiment(obj)
        return AxBackend(client)
    legacy = _legacy_client_type()
    if legacy is not None and isinstance(obj, legacy):
        return LegacyAxBackend(obj)
    raise ConfigError(
        "ax_client_or_experiment",
        f"expected an ax.Client, an ax Experiment or an AxClient (got {type(obj).__name__})",
    )


def _legacy_client_type() -> type | None:
    """The service API's `AxClient`, or None where the installed Ax no longer has it."""
    try:
        from ax.service.ax_client import AxClient
    except ImportError:
        return None
    return AxClient


def json_path(path: str | Path) -> str:
    """`path` with `.json` appended when it has no such suffix."""
    text = str(path)
    return text if text.endswith(".json") else f"{text}.json"


__all__ = ["AxBackend", "LegacyAxBackend", "json_path", "make_backend"]
