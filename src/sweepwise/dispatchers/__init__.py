"""Dispatchers start jobs on some compute and report what happens to them.

A registry (`sweepwise.core.registry.Registry`) maps names (the spec's `dispatcher:`
field) to factories. Built-in backends are imported only when asked for, so `local`
never loads `ray` and the like; other packages add backends through the entry-point
group `sweepwise.dispatchers` (docs/backends.md, "Plug-in door").

Example:
    >>> from pathlib import Path
    >>> from sweepwise.dispatchers import make_dispatcher
    >>> dispatcher = make_dispatcher("local", runs_root=Path("runs"), experiment="demo")
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar

from sweepwise.core.protocols import Dispatcher
from sweepwise.core.registry import Registry

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
    SLURM = "slurm"


# Built-in dispatchers: name -> the module that registers it when imported.
_BUILTIN: dict[str, str] = {
    "local": "sweepwise.dispatchers.local",
    "ray": "sweepwise.dispatchers.ray",
    "simulated": "sweepwise.dispatchers.simulated",
    "skypilot": "sweepwise.dispatchers.skypilot",
    "slurm": "sweepwise.dispatchers.slurm",
}

DISPATCHERS: Registry[Callable[..., Any]] = Registry(
    "dispatcher", field="dispatcher", group="sweepwise.dispatchers", builtins=_BUILTIN
)
"""The dispatcher registry (use the functions below; this is for listing and tests)."""


def register_dispatcher(name: str, *, replace: bool = False) -> Callable[[_Factory], _Factory]:
    """Register a dispatcher class (or factory function) under `name`.

    The contract: `sweepwise run` builds it as

        factory(runs_root: Path, experiment: str, *, incarnation: str | None = None, **options)

    where `runs_root` is the root of the run directories (`<runs_root>/<experiment>/<run_id>/`
    is a run's directory), `experiment` the experiment's name, `incarnation` the id of
    this incarnation of the experiment (to tell its jobs from those of a deleted
    experiment of the same name; None when unknown), and `options` the keys of the spec's
    `dispatcher:` (or `eval_dispatcher:`) mapping other than `type`. Option names the
    factory does not accept are refused when the spec is loaded (unless it takes
    `**options`). The `simulated` dispatcher is the one exception: it is built with its
    virtual clock.

    The instance must be a `sweepwise.core.protocols.Dispatcher` (`dispatch`, `poll`,
    `cancel`); it may add the optional capabilities `Reattachable` (`find`, `reattach`:
    a restarted controller reattaches to running jobs instead of losing them),
    `Waitable` (`wait`: wake the controller as soon as a job event is ready),
    `LogReader` (`read_log`: `sweepwise logs` reads logs kept outside the run
    directory), a `close()` method, called when the controller stops, and an
    `end_sweep()` method, called once the sweep is complete (every job settled), to
    release what the dispatcher keeps on its engine.

    Example:
        >>> @register_dispatcher("mine")
        ... class MyDispatcher: ...

    Args:
        name: the name used in specs (`dispatcher: mine`) and on the command line.
        replace: replace a built-in or an already registered dispatcher of that name.

    Returns:
        A decorator that registers its argument and returns it unchanged.

    Raises:
        ValueError: the name is taken (built-in or registered) and `replace` is False.
    """
    return DISPATCHERS.decorator(name, replace=replace)


def available_dispatchers() -> list[str]:
    """The names `make_dispatcher` may know (registered, built-in and entry points), sorted."""
    return DISPATCHERS.names()


def dispatcher_factory(name: str) -> Callable[..., Any]:
    """The class (or factory) registered as `name`, importing its module if needed.

    Raises:
        ConfigError: the name is unknown (field `dispatcher`).
    """
    return DISPATCHERS.get(name)


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
    dispatcher: Dispatcher = dispatcher_factory(name)(**kwargs)
    return dispatcher


__all__ = [
    "DISPATCHERS",
    "DispatcherType",
    "available_dispatchers",
    "dispatcher_factory",
    "make_dispatcher",
    "register_dispatcher",
]
