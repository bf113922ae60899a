"""Importing user code: recipe functions, entrypoint modules, and a spec's `imports:`.

User modules are imported from the current directory first (as `python -m` would), then
from installed packages and `PYTHONPATH`; the controller and the jobs follow the same rule.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
import typing
from collections.abc import Callable
from typing import Any

from sweepwise.core.errors import ConfigError
from sweepwise.recipes.values import suggest


def ensure_on_path(directory: str | os.PathLike[str] | None = None) -> None:
    """Put `directory` (default: the current directory) first on `sys.path`, once."""
    entry = os.path.abspath(directory if directory is not None else os.getcwd())
    if entry not in sys.path:
        sys.path.insert(0, entry)


def import_module(name: str, *, field: str) -> types.ModuleType:
    """Import a user module, turning any failure into a one-line `ConfigError` on `field`."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        hint = (
            f"; is {exc.name!r} installed, or run from the directory that holds it?"
            if exc.name and name.startswith(exc.name)
            else ""
        )
        raise ConfigError(field, f"cannot import module {name!r} ({exc}){hint}") from None
    except Exception as exc:  # the module's own code raised: say what, in one line
        raise ConfigError(field, f"importing module {name!r} failed: {type(exc).__name__}: {exc}") from None


def module_function(module: types.ModuleType, attr: str, *, field: str) -> Callable[..., Any]:
    """`module.attr`, which must be callable.

    Raises:
        ConfigError: on `field`, with the closest names the module does have.
    """
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        public = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        hint = suggest(attr, public, what="names")
        raise ConfigError(field, f"module {module.__name__!r} has no function {attr!r}; {hint}")
    return typing.cast(Callable[..., Any], fn)


def load_function(target: str, *, field: str | None = None) -> Callable[..., Any]:
    """Import `package.module.function` and return the function.

    Args:
        target: the dotted path (`module:function` is accepted too).
        field: the config field named in errors (default: `target` itself).

    Raises:
        ConfigError: the module does not import, or has no such callable (with the
            closest names it does have).
    """
    name = field or target
    module_name, _, attr = target.replace(":", ".").rpartition(".")
    if not module_name or not attr:
        raise ConfigError(name, f"{target!r} is not a module.function path (e.g. pkg.recipes.train)")
    return module_function(import_module(module_name, field=name), attr, field=name)


__all__ = ["ensure_on_path", "import_module", "load_function", "module_function"]
