"""Schedulers: the experiment logic, and the registry that builds them from a spec."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from sweepwise.core.errors import ConfigError

SchedulerFactory = Callable[[Any], Any]

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


def scheduler_classes(name: str) -> tuple[type[BaseModel], Callable[..., Any]]:
    """The (config class, scheduler class) registered under `name`."""
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


__all__ = ["available_schedulers", "register_scheduler", "scheduler_classes"]
