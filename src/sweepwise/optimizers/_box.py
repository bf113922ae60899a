"""Suggestions as coordinates for an outside optimizer: numbers in [-1, 1], discrete values by index.

The optuna and ax adapters search this box, so every distribution's scale (log, logit,
powers of two) carries over, and whole numbers, ordinal values and choices stay on their
grid. An inactive conditional parameter gets the index of the value nearest the box's
centre (`SearchSpace.normalize` puts it at 0); `from_box` leaves it out.
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
        spec = space.specs[name]
        out[name] = u if spec.levels is None else spec.level_index(u)
    return out


def from_box(space: SearchSpace, coords: Mapping[str, Any]) -> dict[str, Any]:
    """The suggestion at box coordinates `coords` (by parameter name)."""
    point = []
    for name in space.names:
        levels = space.specs[name].unit_levels()
        value = coords.get(name, 0.0)  # an inactive parameter the caller left out
        point.append(float(value) if levels is None else levels[int(value)])
    return space.denormalize(point)


__all__ = ["from_box", "to_box"]
