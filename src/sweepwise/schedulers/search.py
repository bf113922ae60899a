"""The search a scheduler config describes: its space, goal, optimizer and metric.

A config gives its search space in `parameters` or, as seed 000 writes it, in
`protein_config` (a `ProteinConfig`: metric, goal, parameters and Protein's settings).
`search_of` reads either, so the schedulers, `AdaptiveTool` and the load-time checks
all see the same search. A parameter named `gpus` or `nodes` is the run's resource
request (`split_resources`), not a config override of its jobs.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import Observation
from sweepwise.optimizers import OptimizerSpec
from sweepwise.optimizers.protein.settings import ProteinConfig, ProteinSettings

if TYPE_CHECKING:
    from sweepwise.space import SearchSpace

RESOURCE_PARAMETERS: dict[str, int] = {"gpus": 0, "nodes": 1}
"""Searched parameters that set a training job's resources, with their least value."""
_RESOURCE_WORDS = {"gpus": "GPU count", "nodes": "node count"}

GoalName = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Search:
    """What a config searches, wherever it wrote it.

    Attributes:
        parameters: the search space (empty: no search; runs train the fixed overrides).
        field: where `parameters` came from, for errors (`parameters` or
            `protein_config.parameters`).
        goal: `maximize` or `minimize`.
        optimizer: the optimizer, with `protein_config.settings` under its own settings.
        metric: `protein_config.metric`, or None when the config has no `protein_config`.
    """

    parameters: dict[str, Any]
    field: str
    goal: GoalName
    optimizer: OptimizerSpec
    metric: str | None


def search_of(config: Any) -> Search:
    """The search `config` describes: its own `parameters`, `goal`, `optimizer`, else `protein_config`'s.

    Args:
        config: a scheduler config; the fields it lacks count as unset.
    """
    protein: ProteinConfig | None = getattr(config, "protein_config", None)
    own = dict(getattr(config, "parameters", None) or {})
    if own or protein is None or not protein.parameters:
        parameters, field = own, "parameters"
    else:
        parameters, field = dict(protein.parameters), "protein_config.parameters"
    goal: GoalName = getattr(config, "goal", None) or (protein.goal if protein is not None else "maximize")
    optimizer = getattr(config, "optimizer", None)
    if not isinstance(optimizer, OptimizerSpec):
        optimizer = OptimizerSpec()
    if protein is not None and optimizer.type == "protein":
        settings = {**protein.settings.model_dump(exclude_defaults=True), **optimizer.settings}
        optimizer = OptimizerSpec(type="protein", seed=optimizer.seed, **settings)
    return Search(parameters, field, goal, optimizer, protein.metric if protein is not None else None)


def check_protein_config(protein: ProteinConfig, data: Mapping[str, Any]) -> None:
    """Refuse a `protein_config` that contradicts the config's own search fields.

    Args:
        protein: the config's `protein_config`.
        data: the config's other fields (`parameters`, `goal`, `optimizer`), as validated so far.

    Raises:
        ValueError: both give a search space and they differ, both give a goal and they
            differ, or Protein settings with another optimizer; one line naming both fields.
    """
    own = data.get("parameters") or {}
    if own and protein.parameters:
        mine, theirs = _flat(own), _flat(protein.parameters)
        if mine != theirs:
            differ = sorted(name for name in {*mine, *theirs} if mine.get(name) != theirs.get(name))
            raise ValueError(
                f"its parameters differ from parameters (in {', '.join(differ)}); "
                "give the search space once, in parameters or in protein_config.parameters"
            )
    goal = data.get("goal")
    if goal is not None and goal != protein.goal:
        raise ValueError(
            f"its goal {protein.goal!r} differs from goal {goal!r}; "
            "set the goal once, in goal or in protein_config.goal"
        )
    optimizer = data.get("optimizer")
    other_optimizer = isinstance(optimizer, OptimizerSpec) and optimizer.type != "protein"
    if other_optimizer and protein.settings != ProteinSettings():
        raise ValueError(
            f"its settings are Protein's but optimizer.type is {getattr(optimizer, 'type', None)!r}; "
            "remove protein_config.settings or use optimizer type protein"
        )


def _flat(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A search space by flat name with every default filled in, so equal spaces compare equal."""
    from sweepwise.space import SearchSpace

    try:
        return dict(SearchSpace.from_dict(parameters).to_dict())
    except ConfigError:  # invalid: compared as written (and refused when the scheduler is built)
        return dict(parameters)


def check_resource_parameters(space: SearchSpace, field: str = "parameters") -> None:
    """Refuse a searched `gpus` / `nodes` whose values are not whole numbers of devices.

    Args:
        space: the search space.
        field: where the space is written, for the error (`parameters`).

    Raises:
        ConfigError: a resource parameter is continuous, has a value that is not a whole
            number, or one below its least value (`gpus` >= 0, `nodes` >= 1).
    """
    for name, least in RESOURCE_PARAMETERS.items():
        spec = space.specs.get(name)
        if spec is None:
            continue
        values = spec.discrete_values()
        counts = [int(v) for v in values or [] if isinstance(v, int | float) and _is_count(v)]
        if values is None or len(counts) != len(values) or min(counts) < least:
            got = f"choices {values}" if values is not None else f"a {spec.distribution.value} range"
            raise ConfigError(
                f"{field}.{name}",
                f"sets each run's {_RESOURCE_WORDS[name]}, so its values must be whole numbers "
                f">= {least} (got {got}); use int_uniform with min >= {least}, or choices of whole numbers",
            )


def split_resources(suggestion: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, Any]]:
    """A suggestion's resource requests (`gpus`, `nodes`) and the rest of it (the job's overrides).

    Raises:
        ConfigError: a resource value is not a whole number, or below its least value.
    """
    resources: dict[str, int] = {}
    for name, least in RESOURCE_PARAMETERS.items():
        if name not in suggestion:
            continue
        value = suggestion[name]
        if not _is_count(value) or int(value) < least:
            raise ConfigError(
                f"parameters.{name}", f"must be a whole number >= {least} (suggested {value!r})"
            )
        resources[name] = int(value)
    rest = {key: value for key, value in suggestion.items() if key not in RESOURCE_PARAMETERS}
    return resources, rest


def _is_count(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, float) and value.is_integer()


class NoSearch:
    """The optimizer of an empty search space: every suggestion is empty.

    Each run of such a sweep trains with the config's fixed `train_overrides`.
    """

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """`n_suggestions` empty suggestions."""
        return [{} for _ in range(n_suggestions)]


__all__ = [
    "RESOURCE_PARAMETERS",
    "NoSearch",
    "Search",
    "check_protein_config",
    "check_resource_parameters",
    "search_of",
    "split_resources",
]
