"""Optimizers and the registry that builds one from an `OptimizerSpec`.

Each optimizer lives in its own module and registers a factory under its name with
`register_optimizer`. Built-in modules are imported only when their optimizer is
asked for, so `import sweepwise.optimizers` stays cheap (no numpy, no extras).

Example:
    >>> from sweepwise.optimizers import OptimizerSpec, make_optimizer
    >>> from sweepwise.space import SearchSpace
    >>> space = SearchSpace.from_dict({"x": {"distribution": "uniform", "min": 0, "max": 1}})
    >>> optimizer = make_optimizer(OptimizerSpec(type="random", seed=0), space)
    >>> len(optimizer.suggest([], n_suggestions=2))
    2
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from sweepwise.core.errors import ConfigError
from sweepwise.core.registry import Registry

if TYPE_CHECKING:
    from sweepwise.core.protocols import Optimizer
    from sweepwise.space import SearchSpace


class Goal(enum.StrEnum):
    """Whether a higher or a lower score is better."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class OptimizerSpec(BaseModel):
    """Which optimizer to use; fields other than `type` and `seed` are its own settings.

    Attributes:
        type: the registered name: `protein` (the default), `random`, `sobol`, `grid`, ...
        seed: seeds the optimizer's random state; None draws a fresh seed.
    """

    model_config = ConfigDict(extra="allow")

    type: str = "protein"
    seed: int | None = None

    @property
    def settings(self) -> dict[str, Any]:
        """The optimizer-specific settings: every field besides `type` and `seed`."""
        return dict(self.model_extra or {})


class OptimizerFactory(Protocol):
    """Builds an optimizer; what `register_optimizer` decorates."""

    def __call__(self, spec: OptimizerSpec, space: SearchSpace, *, goal: Goal) -> Optimizer:
        """Build the optimizer `spec` describes for `space`.

        Raises:
            ConfigError: a setting in `spec` is invalid (field `optimizer.<setting>`).
        """
        ...


_F = TypeVar("_F", bound=OptimizerFactory)
_M = TypeVar("_M", bound=BaseModel)

# Built-in optimizers: name -> module that registers it when imported.
_BUILTIN_MODULES: dict[str, str] = {
    "ax": "sweepwise.optimizers.ax_adapter",
    "grid": "sweepwise.optimizers.grid",
    "optuna": "sweepwise.optimizers.optuna_adapter",
    "protein": "sweepwise.optimizers.protein",
    "random": "sweepwise.optimizers.random",
    "sobol": "sweepwise.optimizers.sobol",
}

OPTIMIZERS: Registry[OptimizerFactory] = Registry(
    "optimizer", field="optimizer.type", group="sweepwise.optimizers", builtins=_BUILTIN_MODULES
)
"""The optimizer registry (see `sweepwise.core.registry.Registry`)."""


def register_optimizer(name: str, *, replace: bool = False) -> Callable[[_F], _F]:
    """Register a factory (or a class with the same call signature) under `name`.

    Args:
        name: the value of `optimizer.type` that selects it.
        replace: replace a built-in or an already registered optimizer of that name.

    Raises:
        ValueError: the name is empty, or taken by another definition (built-in or
            registered) and `replace` is False.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"optimizer name must be a non-empty string, got {name!r}")
    return OPTIMIZERS.decorator(name, replace=replace)


def available_optimizers() -> list[str]:
    """Names `optimizer.type` accepts: built-in, registered and entry points, sorted."""
    return OPTIMIZERS.names()


def make_optimizer(spec: OptimizerSpec, space: SearchSpace, *, goal: Goal | str = Goal.MAXIMIZE) -> Optimizer:
    """Build the optimizer that `spec` names.

    Args:
        spec: the optimizer's type, seed and settings.
        space: the search space it suggests in.
        goal: `maximize` or `minimize` the score.

    Raises:
        ConfigError: unknown type (field `optimizer.type`), unknown goal (field `goal`)
            or a bad setting (field `optimizer.<setting>`).
    """
    factory = OPTIMIZERS.get(spec.type)
    try:
        goal = Goal(goal)
    except ValueError:
        raise ConfigError("goal", f"unknown goal {goal!r}; use maximize or minimize") from None
    return factory(spec, space, goal=goal)


def resolve_seed(seed: object) -> int:
    """A validated seed, or a fresh random one for None.

    Raises:
        ConfigError: `seed` is negative or not an integer (field `optimizer.seed`).
    """
    if seed is None:
        import secrets

        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("optimizer.seed", f"must be an integer >= 0 (got {seed!r}); or omit it")
    return seed


def parse_settings(spec: OptimizerSpec, model: type[_M], *, field: str = "optimizer") -> _M:
    """Validate `spec.settings` with an optimizer's settings model (for factories).

    Args:
        spec: the optimizer spec whose extra fields are the settings.
        model: a pydantic model, usually with `extra="forbid"`.
        field: the path of the spec in the user's config, for error messages.

    Raises:
        ConfigError: the first invalid setting, with field `optimizer.<setting>`.
    """
    try:
        return model.model_validate(spec.settings)
    except ValidationError as exc:
        errors = exc.errors()
        error = errors[0]
        parts = error["loc"]
        # a setting that takes a number or a word (`auto`): each kind reports; name the
        # setting once and join what each kind asks for
        union = [e for e in errors if e["loc"][:1] == parts[:1] and len(e["loc"]) == 2]
        if len(union) > 1 and any(str(e["loc"][1]).startswith("literal[") for e in union):
            parts = parts[:1]
            asks = [e["msg"].removeprefix("Input should be ") for e in union]
            error = {**error, "msg": "Input should be " + ", or ".join(dict.fromkeys(asks))}
        loc = ".".join(str(part) for part in parts)
        if error["type"] == "extra_forbidden":
            valid = ", ".join(["type", "seed", *sorted(model.model_fields)])
            message = f"unknown setting for optimizer '{spec.type}'; valid settings are: {valid}"
        else:
            message = f"{error['msg']} (got {error['input']!r})"
        raise ConfigError(f"{field}.{loc}" if loc else field, " ".join(message.split())) from None


__all__ = [
    "OPTIMIZERS",
    "Goal",
    "OptimizerFactory",
    "OptimizerSpec",
    "available_optimizers",
    "make_optimizer",
    "parse_settings",
    "register_optimizer",
    "resolve_seed",
]
