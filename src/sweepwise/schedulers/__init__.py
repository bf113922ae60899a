"""Schedulers: the experiment logic, and the registry that builds them from a spec.

The registry is a `sweepwise.core.registry.Registry`: built-in schedulers load when
first named, `register_scheduler` adds one, and other packages add theirs through the
entry-point group `sweepwise.schedulers` (pointing at the module that registers it).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from sweepwise.core.errors import ConfigError
from sweepwise.core.registry import Registry

SchedulerFactory = Callable[[Any], Any]
_S = TypeVar("_S", bound=Callable[..., Any])


class SchedulerType(enum.StrEnum):
    """The built-in schedulers, by their registered names (seed 002's `SchedulerType`).

    A member is its name: `AdaptiveTool(scheduler_type=SchedulerType.TRAIN_AND_EVAL)` and
    `scheduler_type="train_and_eval"` are the same. Names are matched case-insensitively
    (`scheduler_type=TRAIN_AND_EVAL` on the command line), and a scheduler registered with
    `register_scheduler` is named by its string.
    """

    TRAIN_AND_EVAL = "train_and_eval"
    BATCHED_SYNCED = "batched_synced"
    ASYNC_CAPPED = "async_capped"
    GRID_SEARCH = "grid_search"


def _from_entry_point(name: str, loaded: Any) -> tuple[type[BaseModel], Callable[..., Any]]:
    raise ConfigError(
        "scheduler.type",
        f"the entry point of scheduler {name!r} names {loaded!r}; point it at the module that "
        "registers the scheduler with @register_scheduler (its config class goes with it)",
    )


# Built-in schedulers: name -> the module that registers it when imported.
_BUILTIN: dict[str, str] = {
    "train_and_eval": "sweepwise.schedulers.train_and_eval",
    "batched_synced": "sweepwise.schedulers.batched_synced",
    "async_capped": "sweepwise.schedulers.async_capped",
    "grid_search": "sweepwise.schedulers.grid_search",
}

SCHEDULERS: Registry[tuple[type[BaseModel], Callable[..., Any]]] = Registry(
    "scheduler",
    field="scheduler.type",
    group="sweepwise.schedulers",
    builtins=_BUILTIN,
    from_entry_point=_from_entry_point,
)
"""The scheduler registry: name -> (config class, scheduler class)."""


def register_scheduler(
    name: str, config_cls: type[BaseModel], *, replace: bool = False
) -> Callable[[_S], _S]:
    """Register a scheduler class (or factory) under `name`, with its typed config class.

    The scheduler is built as `scheduler_cls(config)` with `config` an instance of
    `config_cls` (validated from the spec's `scheduler:` mapping, or a recipe's typed config).

    Args:
        name: the value of `scheduler.type` (and a recipe's `scheduler_type`) that selects it.
        config_cls: its pydantic config class.
        replace: replace a built-in or an already registered scheduler of that name.

    Raises:
        ValueError: the name is taken (built-in or registered) and `replace` is False.
    """

    def decorate(cls: _S) -> _S:
        SCHEDULERS.register(name, (config_cls, cls), replace=replace)
        return cls

    return decorate


def available_schedulers() -> list[str]:
    """Names usable as `scheduler.type` in a spec (registered, built-in and entry points)."""
    return SCHEDULERS.names()


def canonical_scheduler_name(name: str) -> str:
    """The registered name that `name` spells, matched case-insensitively (`TRAIN_AND_EVAL`).

    An exact match wins; otherwise the one registered name equal to `name` but for case.
    A `SchedulerType` member gives its value. A name that matches none (or several names
    that differ only in case) is returned as it is, for `scheduler_classes` to refuse.
    """
    return SCHEDULERS.canonical(name)


def scheduler_classes(name: str) -> tuple[type[BaseModel], Callable[..., Any]]:
    """The (config class, scheduler class) registered under `name` (see `canonical_scheduler_name`).

    Raises:
        ConfigError: no scheduler is registered under that name.
    """
    return SCHEDULERS.get(canonical_scheduler_name(name))


__all__ = [
    "SCHEDULERS",
    "SchedulerType",
    "available_schedulers",
    "canonical_scheduler_name",
    "register_scheduler",
    "scheduler_classes",
]
