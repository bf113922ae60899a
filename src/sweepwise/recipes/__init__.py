"""Python recipes: functions that return an `AdaptiveTool`, run with `sweepwise run pkg.mod.func k=v`.

Names load lazily: the in-job runner needs only `classify`, not the scheduler stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers see; at run time `__getattr__` imports on first use
    from sweepwise.recipes.classify import Classification as Classification
    from sweepwise.recipes.classify import classify as classify
    from sweepwise.recipes.describe import describe_recipe as describe_recipe
    from sweepwise.recipes.tool import AdaptiveTool as AdaptiveTool
    from sweepwise.recipes.tool import call_recipe as call_recipe
    from sweepwise.recipes.tool import load_recipe as load_recipe
    from sweepwise.recipes.tool import override_tool as override_tool

_EXPORTS: dict[str, str] = {
    "AdaptiveTool": "sweepwise.recipes.tool",
    "Classification": "sweepwise.recipes.classify",
    "call_recipe": "sweepwise.recipes.tool",
    "classify": "sweepwise.recipes.classify",
    "describe_recipe": "sweepwise.recipes.describe",
    "load_recipe": "sweepwise.recipes.tool",
    "override_tool": "sweepwise.recipes.tool",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sweepwise.recipes' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
