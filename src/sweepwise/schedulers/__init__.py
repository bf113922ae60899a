"""Schedulers: the experiment logic, and the registry that builds them from a spec."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from sweepwise.core.errors import ConfigError

SchedulerFactory = Callable[[Any], Any]


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


_REGISTRY: dict[str, tuple[str, str, str]] = {
    # name: (module, config class, scheduler class) — imported on first use
    "train_and_eval": ("sweepwise.schedulers.train_and_eval", "TrainAndEvalConfig", "TrainAndEvalScheduler"),
    "batched_synced": (
        "sweepwise.schedulers.batched_synced",
        "BatchedSyncedSchedulerConfig",
        "BatchedSyncedOptimizingScheduler",
    ),
    "async_capped": (
        "sweepwise.schedulers.async_capped",
        "AsyncCappedSchedulerConfig",
        "AsyncCappedOptimizingScheduler",
    ),
    "grid_search": ("sweepwise.schedulers.grid_search", "GridSearchConfig", "GridSearchScheduler"),
}
_CUSTOM: dict[str, tuple[type[BaseModel], Callable[..., Any]]] = {}


def register_scheduler(
    name: str, config_cls: type[BaseModel]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a scheduler class (or factory) under `name`, with its typed config class."""

    def decorate(cls: Callable[..., Any]) -> Callable[..., Any]:
        _CUSTOM[name] = (config_cls, cls)
        return cls

    return decorate


def available_schedulers() -> list[str]:
    """Names usable as `scheduler.type` in a spec."""
    return sorted({*_REGISTRY, *_CUSTOM})


def canonical_scheduler_name(name: str) -> str:
    """The registered name that `name` spells, matched case-insensitively (`TRAIN_AND_EVAL`).

    An exact match wins; otherwise the one registered name equal to `name` but for case.
    A `SchedulerType` member gives its value. A name that matches none (or several names
    that differ only in case) is returned as it is, for `scheduler_classes` to refuse.
    """
    name = str(name)  # a `SchedulerType` member is its value
    known = available_schedulers()
    if name in known:
        return name
    matches = [known_name for known_name in known if known_name.casefold() == name.casefold()]
    return matches[0] if len(matches) == 1 else name


def scheduler_classes(name: str) -> tuple[type[BaseModel], Callable[..., Any]]:
    """The (config class, scheduler class) registered under `name` (see `canonical_scheduler_name`).

    Raises:
        ConfigError: no scheduler is registered under that name.
    """
    name = canonical_scheduler_name(name)
    if name in _CUSTOM:
        return _CUSTOM[name]
    if name not in _REGISTRY:
        raise ConfigError(
            "scheduler.type",
            f"unknown scheduler {name!r}; choose one of: {', '.join(available_schedulers())}",
        )
    import importlib

    module_name, config_name, class_name = _REGISTRY[name]
    module = importlib.import_module(module_name)
    if name == "train_and_eval":
        from sweepwise.schedulers.base import TrainAndEvalConfig

        return TrainAndEvalConfig, getattr(module, class_name)
    return getattr(module, config_name), getattr(module, class_name)


__all__ = [
    "SchedulerType",
    "available_schedulers",
    "canonical_scheduler_name",
    "register_scheduler",
    "scheduler_classes",
]
