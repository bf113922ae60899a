"""Dispatchers start jobs on some compute and report what happens to them.

A small registry maps names (the spec's `dispatcher:` field) to factories. Built-in
backends are imported only when asked for, so `local` never loads `ray` and the like.

Example:
    >>> from pathlib import Path
    >>> from sweepwise.dispatchers import make_dispatcher
    >>> dispatcher = make_dispatcher("local", runs_root=Path("runs"), experiment="demo")
"""

from __future__ import annotations

import enum
import importlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from sweepwise.core.errors import ConfigError
from sweepwise.core.protocols import Dispatcher

_Factory = TypeVar("_Factory", bound=Callable[..., Any])


class DispatcherType(enum.StrEnum):
    """The built-in dispatchers, by their registered names (seed 002's `DispatcherType`).

    A member is its name: `dispatcher_type=DispatcherType.LOCAL` and `dispatcher_type="local"`
    are the same.
    """

    LOCAL = "local"
    RAY = "ray"
    SIMULATED = "simulated"
    SKYPILOT = "skypilot"


_REGISTRY: dict[str, Callable[..., Any]] = {}
_BUILTIN: dict[str, str] = {
    "local": "sweepwise.dispatchers.local",
    "ray": "sweepwise.dispatchers.ray",
    "simulated": "sweepwise.dispatchers.simulated",
    "skypilot": "sweepwise.dispatchers.skypilot",
}


def register_dispatcher(name: str) -> Callable[[_Factory], _Factory]:
    """Register a dispatcher class (or factory function) under `name`.

    Example:
        >>> @register_dispatcher("mine")
        ... class MyDispatcher: ...

    Args:
        name: the name used in specs and on the command line.

    Returns:
        A decorator that registers its argument and returns it unchanged.
    """

    def decorator(factory: _Factory) -> _Factory:
        _REGISTRY[name] = factory
        return factory

    return decorator


def available_dispatchers() -> list[str]:
    """The names `make_dispatcher` may know (registered and built-in), sorted."""
    return sorted({*_REGISTRY, *_BUILTIN})


def make_dispatcher(name: str, **kwargs: Any) -> Dispatcher:
    """Build the dispatcher registered as `name`.

    Args:
        name: e.g. `local` or `simulated`.
        **kwargs: passed to the dispatcher's constructor.

    Returns:
        The dispatcher.

    Raises:
        ConfigError: the name is unknown (field `dispatcher`).
    """
    if name not in _REGISTRY and name in _BUILTIN:
        module = _BUILTIN[name]
        try:
            importlib.import_module(module)  # registers itself
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise  # the backend exists but one of its own imports is missing
    factory = _REGISTRY.get(name)
    if factory is None and _BUILTIN.get(name) in sys.modules:
        raise ConfigError(
            "dispatcher",
            f"dispatcher {name!r} is not available: {_BUILTIN[name]} does not register it "
            f"(it needs @register_dispatcher({name!r}))",
        )
    if factory is None:
        choices = ", ".join(available_dispatchers())
        raise ConfigError("dispatcher", f"unknown dispatcher {name!r}; choose one of: {choices}")
    dispatcher: Dispatcher = factory(**kwargs)
    return dispatcher


__all__ = ["DispatcherType", "available_dispatchers", "make_dispatcher", "register_dispatcher"]
