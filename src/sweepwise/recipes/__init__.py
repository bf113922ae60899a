"""Python recipes: functions that return an `AdaptiveTool`, run with `sweepwise run pkg.mod.func k=v`.

`classify` is imported eagerly: it shares its name with its module, and binding the
function here keeps `sweepwise.recipes.classify` the function however the module was
first imported. The other names load lazily, so the in-job runner does not import the
scheduler stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from sweepwise.recipes.classify import Classification, classify

if TYPE_CHECKING:  # what type checkers see; at run time `__getattr__` imports on first use
    from sweepwise.dispatchers import DispatcherType as DispatcherType
    from sweepwise.recipes.describe import describe_recipe as describe_recipe
    from sweepwise.recipes.tool import AdaptiveConfig as AdaptiveConfig
    from sweepwise.recipes.tool import AdaptiveTool as AdaptiveTool
    from sweepwise.recipes.tool import call_recipe as call_recipe
    from sweepwise.recipes.tool import load_recipe as load_recipe
    from sweepwise.recipes.tool import override_tool as override_tool
    from sweepwise.schedulers import SchedulerType as SchedulerType

_LAZY: dict[str, str] = {
    "AdaptiveConfig": "sweepwise.recipes.tool",
    "AdaptiveTool": "sweepwise.recipes.tool",
    "DispatcherType": "sweepwise.dispatchers",
    "SchedulerType": "sweepwise.schedulers",
    "call_recipe": "sweepwise.recipes.tool",
    "describe_recipe": "sweepwise.recipes.describe",
    "load_recipe": "sweepwise.recipes.tool",
    "override_tool": "sweepwise.recipes.tool",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sweepwise.recipes' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AdaptiveConfig",
    "AdaptiveTool",
    "Classification",
    "DispatcherType",
    "SchedulerType",
    "call_recipe",
    "classify",
    "describe_recipe",
    "load_recipe",
    "override_tool",
]
