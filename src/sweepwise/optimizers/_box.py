"""Suggestions as coordinates for an outside optimizer: numbers in [-1, 1], discrete values by index.

The optuna and ax adapters search this box, so every distribution's scale (log, logit,
powers of two) carries over, and whole numbers and choices stay on their grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweepwise.core.errors import ConfigError
from sweepwise.space import SearchSpace


def to_box(space: SearchSpace, suggestion: Mapping[str, Any]) -> dict[str, float | int] | None:
    """Box coordinates of `suggestion` by parameter name, or None if it does not fit the space."""
    try:
        point = space.normalize(suggestion)
    except ConfigError:
        return None
    out: dict[str, float | int] = {}
    for name, u in zip(space.names, point.tolist(), strict=True):
        levels = space.specs[name].levels
        out[name] = u if levels is None else int(round((u + 1.0) / 2.0 * max(levels - 1, 0)))
    return out


def from_box(space: SearchSpace, coords: Mapping[str, Any]) -> dict[str, Any]:
    """The suggestion at box coordinates `coords` (by parameter name)."""
    point = []
    for name in space.names:
        levels = space.specs[name].levels
        value = float(coords[name])
        point.append(value if levels is None else (-1.0 + 2.0 * value / (levels - 1) if levels > 1 else 0.0))
    return space.denormalize(point)


__all__ = ["from_box", "to_box"]
