"""The search space: named parameter specs and the map between suggestions and [-1, 1]^dim.

Every parameter has one normalised dimension; optimizers work in that box and
`SearchSpace.denormalize` turns a point back into a suggestion of plain Python scalars.
A conditional parameter (`when: {kernel: poly}`) is active only when its parents have
the given values; suggestions omit it otherwise, and in the box it sits at 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from sweepwise.core.errors import ConfigError
from sweepwise.space._errors import config_error
from sweepwise.space.aliases import from_optuna
from sweepwise.space.spec import Distribution, ParameterSpec

_WORD = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")
"""One word of a parameter name: it becomes a `key=value` argument of the job."""


def _is_spec(value: object) -> bool:
    """A mapping is a spec when it names a distribution or choices, or holds a non-mapping."""
    if not isinstance(value, Mapping) or not value:
        return False
    if "distribution" in value or "choices" in value:
        return True
    return any(not isinstance(v, Mapping) for v in value.values())


def _flatten(mapping: Mapping[Any, Any], field: str, prefix: str, out: dict[str, tuple[str, Any]]) -> None:
    for key, value in mapping.items():
        if not isinstance(key, str) or not all(_WORD.fullmatch(word) for word in key.split(".")):
            raise ConfigError(
                field,
                f"parameter name {key!r} is not a dot path of words like 'trainer.lr' "
                "(letters, digits, _ and - inside); rename it",
            )
        name, path = (f"{prefix}.{key}" if prefix else key), f"{field}.{key}"
        if _is_spec(value):
            if name in out:
                raise ConfigError(path, f"parameter '{name}' is defined twice; keep one definition")
            out[name] = (path, value)
        elif isinstance(value, Mapping) and value:
            _flatten(value, path, name, out)
        else:
            raise ConfigError(
                path, f"expected a parameter spec (a mapping with 'distribution' or 'choices'), got {value!r}"
            )


class SearchSpace(BaseModel):
    """Named parameters and the map between suggestions and the box [-1, 1]^dim.

    Dimension i of a normalised point is parameter `names[i]`.
    """

    model_config = ConfigDict(extra="forbid")

    specs: dict[str, ParameterSpec]
    _order: list[str] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any, /) -> None:
        """Order the names once: parents before their children."""
        done: dict[str, None] = {}
        visiting: set[str] = set()  # `from_dict` rejects cycles; this only keeps a direct build finite

        def visit(name: str) -> None:
            if name not in done and name not in visiting:
                visiting.add(name)
                for parent in self.specs[name].when or {}:
                    if parent in self.specs:
                        visit(parent)
                done[name] = None

        for name in sorted(self.specs):
            visit(name)
        self._order = list(done)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], *, field: str = "parameters") -> SearchSpace:
        """Build a space from flat dot-path names or nested groups of specs.

        Args:
            mapping: `{"trainer.lr": {...}}` or `{"trainer": {"lr": {...}}}` (or a mix).
            field: the path of `mapping` in the user's config, used in error messages.

        Raises:
            ConfigError: a spec is invalid; `field` names it, e.g. `parameters.trainer.lr.min`.
        """
        if not isinstance(mapping, Mapping) or not mapping:
            raise ConfigError(field, f"expected a mapping of parameter names to specs, got {mapping!r}")
        raw: dict[str, tuple[str, Any]] = {}
        _flatten(mapping, field, "", raw)
        specs: dict[str, ParameterSpec] = {}
        for name in sorted(raw):
            path, value = raw[name]
            try:
                specs[name] = ParameterSpec.model_validate(value)
            except ValidationError as exc:
                raise config_error(path, exc) from None
        _resolve_conditions(specs, {name: path for name, (path, _) in raw.items()})
        return cls(specs=specs)

    @classmethod
    def from_optuna(cls, distributions: Mapping[str, Any]) -> SearchSpace:
        """The space of an Optuna search space (`{name: FloatDistribution(...), ...}`), as
        `from_dict` reads Optuna's spellings (docs/optimizers.md, "Parameter specs")."""
        return cls.from_dict({name: from_optuna(d) for name, d in distributions.items()})

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Flat `{name: spec}` that `from_dict` reads back to an equal space."""
        return {name: self.specs[name].to_dict() for name in self.names}

    @property
    def names(self) -> list[str]:
        """The parameters' dot paths, sorted: the order of the normalised dimensions."""
        return sorted(self.specs)

    @property
    def dim(self) -> int:
        """Number of normalised dimensions (one per parameter)."""
        return len(self.specs)

    @property
    def cardinality(self) -> int | None:
        """How many distinct suggestions exist, or None when any parameter is continuous."""
        total = 1
        for spec in self.specs.values():
            levels = spec.levels
            if levels is None:
                return None
            total *= levels
        return total

    @property
    def conditional(self) -> bool:
        """Some parameter has a `when` condition."""
        return any(spec.when for spec in self.specs.values())

    def order(self) -> list[str]:
        """The names with every parent before its children (else sorted)."""
        return list(self._order)

    def active(self, suggestion: Mapping[str, Any]) -> set[str]:
        """The parameters that exist in `suggestion`: each parent active with the given value."""
        out: set[str] = set()
        for name in self.order():
            when = self.specs[name].when or {}
            if all(
                p in out and p in suggestion and self.specs[p].same_value(suggestion[p], v)
                for p, v in when.items()
            ):
                out.add(name)
        return out

    def prune(self, suggestion: Mapping[str, Any]) -> dict[str, Any]:
        """`suggestion` without its inactive parameters (and without names not in the space)."""
        active = self.active(suggestion)
        return {name: suggestion[name] for name in self.names if name in active and name in suggestion}

    def normalize(self, suggestion: Mapping[str, Any]) -> np.ndarray:
        """A suggestion as a point of [-1, 1]^dim, shape `(dim,)`; extra keys are ignored.

        An inactive parameter sits at 0, whether or not the suggestion holds it.

        Raises:
            ConfigError: a parameter is missing or its value is not a number / not a choice.
        """
        out = np.empty(self.dim, dtype=float)
        active = self.active(suggestion) if self.conditional else set(self.names)
        for i, name in enumerate(self.names):
            if name not in active:
                out[i] = 0.0
                continue
            if name not in suggestion:
                raise ConfigError(name, "missing from the suggestion; every parameter needs a value")
            try:
                out[i] = self.specs[name].to_unit(suggestion[name])
            except ValueError as exc:
                raise ConfigError(name, str(exc)) from None
        return out

    def denormalize(self, x: np.ndarray | list[float]) -> dict[str, Any]:
        """A point of [-1, 1]^dim (clipped first) as a suggestion of plain Python scalars.

        Inactive parameters are left out.
        """
        point = np.asarray(x, dtype=float).reshape(-1)
        if point.shape != (self.dim,):
            raise ValueError(f"expected a point of shape ({self.dim},), got {np.shape(x)}")
        out = {name: self.specs[name].from_unit(float(u)) for name, u in zip(self.names, point, strict=True)}
        return self.prune(out) if self.conditional else out

    def center(self) -> dict[str, Any]:
        """Every active parameter at its `mean`."""
        out = {name: self.specs[name].mean for name in self.names}
        return self.prune(out) if self.conditional else out

    def sample_uniform(self, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
        """`n` suggestions drawn uniformly in normalised space.

        Continuous parameters are uniform in their natural space (log-uniform for
        log_normal); discrete ones (ints, powers of two, choices) give each value the
        same chance, but a `log: true` ordinal its share of the log scale
        (`ParameterSpec.value_weights`).

        Args:
            rng: the random state to draw from.
            n: how many suggestions (>= 0).
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        points = np.empty((n, self.dim), dtype=float)
        for j, name in enumerate(self.names):
            levels = self.specs[name].levels
            if levels is None:
                points[:, j] = rng.uniform(-1.0, 1.0, size=n)
            elif levels == 1:
                points[:, j] = 0.0
            elif not self.specs[name].evenly_spaced:
                weights = self.specs[name].value_weights()
                index = (
                    rng.integers(0, levels, size=n) if weights is None else rng.choice(levels, n, p=weights)
                )
                points[:, j] = np.asarray(self.specs[name].unit_levels())[index]
            else:
                points[:, j] = -1.0 + 2.0 * rng.integers(0, levels, size=n) / (levels - 1)
        return [self.denormalize(row) for row in points]

    def validate_suggestion(self, suggestion: Mapping[str, Any]) -> None:
        """Check that `suggestion` has the space's active names, each with a valid value.

        An inactive parameter may be missing; when present it is not checked.

        Raises:
            ConfigError: the field is the offending parameter's name.
        """
        unknown = sorted(set(suggestion) - set(self.specs))
        if unknown:
            raise ConfigError(unknown[0], f"unknown parameter; the space has: {', '.join(self.names)}")
        active = self.active(suggestion) if self.conditional else set(self.names)
        for name in self.names:
            if name not in active:
                continue
            if name not in suggestion:
                raise ConfigError(name, "missing from the suggestion; every parameter needs a value")
            try:
                self.specs[name].check_value(suggestion[name])
            except ValueError as exc:
                raise ConfigError(name, str(exc)) from None


def _resolve_conditions(specs: dict[str, ParameterSpec], paths: dict[str, str]) -> None:
    """Check every `when` and rewrite it with full parent names and the parents' own values.

    A parent is named by its full dot path, or by its name within the child's group.

    Raises:
        ConfigError: a parent is missing, not categorical or ordinal, the value is not one of
            its values, or the conditions form a cycle (field `<parameter>.when.<parent>`).
    """
    for name, spec in specs.items():
        if not spec.when:
            continue
        group = name.rsplit(".", 1)[0] + "." if "." in name else ""
        resolved: dict[str, Any] = {}
        for parent, value in spec.when.items():
            field = f"{paths[name]}.when.{parent}"
            full = parent if parent in specs else group + parent
            if full not in specs or full == name:
                what = "is the parameter itself" if full == name else "is not a parameter of the space"
                raise ConfigError(field, f"'{parent}' {what}; name a categorical or ordinal parameter")
            parent_spec = specs[full]
            values = parent_spec.discrete_values()
            if parent_spec.distribution not in (Distribution.CATEGORICAL, Distribution.ORDINAL):
                raise ConfigError(
                    field,
                    f"'{full}' is {parent_spec.distribution.value}; a condition needs a categorical "
                    "or ordinal parent",
                )
            match = [v for v in values or [] if parent_spec.same_value(v, value)]
            if not match:
                raise ConfigError(field, f"{value!r} is not one of the values {values!r} of '{full}'")
            resolved[full] = match[0]
        spec.when = resolved
    state: dict[str, str] = {}  # "open" while its parents are followed, then "done"

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "open":  # following parents led back here: a cycle
            start = chain.index(name)
            loop = " -> ".join([*chain[start:], name])
            message = f"the conditions form a cycle ({loop}); remove one of them"
            raise ConfigError(f"{paths[name]}.when", message)
        if name not in state:
            state[name] = "open"
            for parent in specs[name].when or {}:
                visit(parent, [*chain, name])
            state[name] = "done"

    for name in sorted(specs):
        visit(name, [])


__all__ = ["SearchSpace"]
