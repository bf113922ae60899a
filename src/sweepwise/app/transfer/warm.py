"""The observations a sweep's `warm_start` names: the completed runs of other experiments in its store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sweepwise.core.errors import ConfigError
from sweepwise.core.lifecycle import observation_of
from sweepwise.core.models import JobStatus, Observation
from sweepwise.optimizers.warm_start import Fitted, fit_to_space

if TYPE_CHECKING:
    from sweepwise.space import SearchSpace
    from sweepwise.stores.sql import SQLStore


def load_warm_start(
    store: SQLStore, names: Sequence[str], space: SearchSpace, goal: str, *, experiment: str
) -> Fitted:
    """The scored completed runs of the experiments `names`, fitted to `space` (`fit_to_space`).

    Reads only; call it before the sweep writes anything, so a bad name changes nothing.

    Args:
        store: the sweep's store, which must hold those experiments.
        names: the experiments to learn from.
        space: the sweep's search space.
        goal: the sweep's goal; each experiment's must be the same (a score means the same).
        experiment: the sweep's own name (it cannot warm-start from itself).

    Raises:
        ConfigError: `warm_start` names the sweep itself, an experiment the store does not
            hold, or one with the other goal.
    """
    observations: list[Observation] = []
    for name in names:
        if name == experiment:
            raise ConfigError(
                "warm_start", f"names this experiment {name!r}; a sweep resumes its own runs by itself"
            )
        record = store.get_experiment(name) if store.exists() else None
        if record is None:
            raise ConfigError(
                "warm_start",
                f"no experiment named {name!r} in {store.url}; import it first "
                f"(sweepwise import {name} --csv FILE) or fix the name",
            )
        theirs: Any = (record.spec.get("spec") or {}).get("goal", "maximize")
        if theirs != goal:
            raise ConfigError(
                "warm_start",
                f"experiment {name!r} was to {theirs} its score and this one is to {goal} it; "
                "warm-start only from experiments with the same goal",
            )
        for run in store.fetch_runs({"group": name, "status": JobStatus.COMPLETED}):
            observation = observation_of(run)
            if observation is not None:
                observations.append(observation)
    return fit_to_space(observations, space)


__all__ = ["load_warm_start"]
