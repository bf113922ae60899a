"""One registry style for every plug-in part: dispatchers, schedulers, optimizers and stores.

A `Registry` maps names to parts from three sources, in this order:

1. parts registered in this process (`register`, usually through a decorator such as
   `@register_dispatcher("mine")`);
2. built-ins, each a module imported only when its name is first asked for (the module
   registers its part when imported, so `local` never loads `ray`);
3. entry points of the registry's group (`sweepwise.dispatchers`, ...), so a separately
   installed package adds a part without being imported by hand. An entry point names
   the part itself (`mine = my_pkg.backend:MyDispatcher`) or a module that registers it
   when imported (`mine = my_pkg.backend`). They are loaded on the lookup of a name
   nobody else provides; listing their names loads nothing.

A name is taken once: registering a name that is built-in or already registered is
refused unless `replace=True` (registering the same definition again, as a module reload
does, is allowed).

Example:
    >>> registry: Registry[type] = Registry("widget", field="widget", group="example.widgets")
    >>> @registry.decorator("plain")
    ... class Plain: ...
    >>> registry.get("plain") is Plain
    True
    >>> registry.names()
    ['plain']
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sweepwise.core.errors import ConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

T = TypeVar("T")
_D = TypeVar("_D")


def qualified_name(obj: object) -> str:
    """`module.QualName` of a class or function (what tells two definitions apart)."""
    target = obj[-1] if isinstance(obj, tuple) and obj else obj  # a scheduler's (config, class)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


class Registry(Generic[T]):
    """Names to parts of one kind: registered ones, lazily imported built-ins and entry points.

    Args:
        kind: what a part is called in messages (`dispatcher`).
        field: the spec field an unknown name is reported on (`dispatcher`, `scheduler.type`).
        group: the entry-point group other packages add parts through (`sweepwise.dispatchers`).
        builtins: name -> the module that registers it when imported.
        from_entry_point: turns what an entry point loads (when not a module) into a part;
            raises `ConfigError` for an object that cannot be one. Default: the object itself.
    """

    def __init__(
        self,
        kind: str,
        *,
        field: str,
        group: str,
        builtins: Mapping[str, str] | None = None,
        from_entry_point: Callable[[str, Any], T] | None = None,
    ) -> None:
        self.kind = kind
        self.field = field
        self.group = group
        self.builtins: dict[str, str] = dict(builtins or {})
        self._parts: dict[str, T] = {}
        self._from_entry_point = from_entry_point

    # -- registering -------------------------------------------------------------------

    def register(self, name: str, part: T, *, replace: bool = False) -> None:
        """Register `part` under `name`.

        Raises:
            ValueError: `name` is empty, or taken (built-in or registered by another
                definition) and `replace` is False.
        """
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if not replace:
            module = self.builtins.get(name)
            if module is not None and not _defined_in(part, module):
                raise ValueError(
                    f"{self.kind} {name!r} is built in ({module}); choose another name, "
                    f"or pass replace=True to replace it"
                )
            existing = self._parts.get(name)
            if existing is not None and qualified_name(existing) != qualified_name(part):
                raise ValueError(
                    f"{self.kind} {name!r} is already registered by {qualified_name(existing)}; "
                    f"choose another name, or pass replace=True to replace it"
                )
        self._parts[name] = part

    def decorator(self, name: str, *, replace: bool = False) -> Callable[[_D], _D]:
        """A decorator that registers what it decorates under `name` and returns it unchanged."""

        def decorate(part: _D) -> _D:
            self.register(name, part, replace=replace)  # type: ignore[arg-type]  # _D is the part
            return part

        return decorate

    def unregister(self, name: str) -> None:
        """Forget a registered part (for tests).

        A built-in comes back on its next lookup only if its module was not imported yet.
        """
        self._parts.pop(name, None)

    # -- looking up --------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every name a lookup may find: registered, built-in and entry points, sorted."""
        return sorted({*self._parts, *self.builtins, *(ep.name for ep in self._entry_points())})

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._parts or name in self.builtins or name in self.names()

    def canonical(self, name: str) -> str:
        """The known name that `name` spells, matched case-insensitively (`LOCAL` -> `local`).

        An exact match wins; otherwise the one known name equal to `name` but for case.
        `name` comes back unchanged when it matches none (or several), for `get` to refuse.
        """
        name = str(name)  # a StrEnum member is its value
        if name in self._parts or name in self.builtins:
            return name
        known = self.names()
        if name in known:
            return name
        matches = [known_name for known_name in known if known_name.casefold() == name.casefold()]
        return matches[0] if len(matches) == 1 else name

    def registered(self, name: str) -> T | None:
        """The part registered as `name` so far, importing nothing; None if none is."""
        return self._parts.get(name)

    def find(self, name: str) -> T | None:
        """The part registered as `name`, importing its built-in module or entry point; None if unknown.

        Raises:
            ConfigError: the name's entry point fails to load, or names a module that does
                not register it.
        """
        part = self._parts.get(name)
        if part is not None:
            return part
        module = self.builtins.get(name)
        if module is not None:
            try:
                importlib.import_module(module)  # registers itself
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise  # the part exists but one of its own imports is missing
            part = self._parts.get(name)
            if part is None and module in sys.modules:
                raise ConfigError(
                    self.field,
                    f"{self.kind} {name!r} is not available: {module} does not register it",
                )
            if part is not None:
                return part
        return self._load_entry_point(name)

    def get(self, name: str) -> T:
        """The part registered as `name` (see `find`).

        Raises:
            ConfigError: no part has that name (on `field`, listing the names there are).
        """
        part = self.find(name)
        if part is None:
            choices = ", ".join(self.names()) or "none"
            raise ConfigError(self.field, f"unknown {self.kind} {name!r}; choose one of: {choices}")
        return part

    # -- entry points ------------------------------------------------------------------

    def _entry_points(self) -> list[EntryPoint]:
        from importlib.metadata import entry_points  # ~30 ms to import: only when a plug-in is looked for

        return list(entry_points(group=self.group))

    def _load_entry_point(self, name: str) -> T | None:
        for entry_point in self._entry_points():
            if entry_point.name != name:
                continue
            where = f"entry point {entry_point.value!r} of group {self.group}"
            try:
                loaded = entry_point.load()
            except Exception as exc:  # the plug-in's own code failed: say which plug-in, in one line
                raise ConfigError(
                    self.field, f"{self.kind} {name!r}: {where} failed to load: {type(exc).__name__}: {exc}"
                ) from None
            if not isinstance(loaded, types.ModuleType):
                part = self._from_entry_point(name, loaded) if self._from_entry_point else loaded
                self.register(name, part, replace=True)
            if name not in self._parts:
                raise ConfigError(
                    self.field,
                    f"{self.kind} {name!r}: {where} names a module that does not register it; "
                    f"register it in that module, or point the entry point at the {self.kind} itself",
                )
            return self._parts[name]
        return None


def _defined_in(part: object, module: str) -> bool:
    """Whether `part` (or a scheduler's class) was defined in `module` or one of its submodules."""
    target = part[-1] if isinstance(part, tuple) and part else part
    owner = str(getattr(target, "__module__", ""))
    return owner == module or owner.startswith(f"{module}.")


__all__ = ["Registry", "qualified_name"]
