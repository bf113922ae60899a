"""Grid search: the cartesian product of every parameter's values, in order, each point once."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sweepwise.optimizers import Goal, OptimizerSpec, parse_settings, register_optimizer

if TYPE_CHECKING:
    from sweepwise.core.models import Observation
    from sweepwise.space import SearchSpace


def _key(suggestion: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in suggestion.items()))


class GridOptimizer:
    """Walks the grid in order and skips points already observed or pending.

    Discrete parameters (choices, whole numbers, powers of two) contribute every value;
    continuous ones `points` values evenly spaced in their normalised range (so a
    log-normal parameter is spaced evenly in log). A conditional parameter is left out of
    the points where its condition fails, and the points that then coincide are one point.
    Once the grid is used up, it starts over from the beginning.

    Args:
        space: the search space.
        points: values per continuous parameter.
    """

    def __init__(self, space: SearchSpace, *, points: int = 5) -> None:
        self.space = space
        axes = []
        for name in space.names:
            spec = space.specs[name]
            values = spec.discrete_values()
            if values is None:
                values = [spec.from_unit(float(u)) for u in np.linspace(-1.0, 1.0, points)]
            axes.append([(name, value) for value in dict.fromkeys(values)])
        self._axes = axes
        self._cache: list[dict[str, Any]] | None = None

    def _points(self) -> list[dict[str, Any]]:
        """Every grid point once, in order."""
        if self._cache is None:
            points: list[dict[str, Any]] = [dict(point) for point in itertools.product(*self._axes)]
            if self.space.conditional:
                points = list({_key(p): p for p in map(self.space.prune, points)}.values())
            self._cache = points
        return self._cache

    def __len__(self) -> int:
        if self.space.conditional:
            return len(self._points())
        size = 1
        for axis in self._axes:
            size *= len(axis)
        return size

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """The next `n_suggestions` grid points not yet observed or pending."""
        seen = {_key(obs.suggestion) for obs in observations} | {_key(p) for p in pending or []}
        out: list[dict[str, Any]] = []
        points = self._points()
        for suggestion in points:
            if len(out) == n_suggestions:
                break
            if _key(suggestion) not in seen:
                out.append(dict(suggestion))
                seen.add(_key(suggestion))
        again = itertools.cycle(points)  # the grid is used up: start over
        while len(out) < n_suggestions:
            out.append(dict(next(again)))
        return out


class GridSettings(BaseModel):
    """Grid settings: how many values a continuous parameter gets."""

    model_config = ConfigDict(extra="forbid", strict=True)  # `points: yes` is not a number

    points: int = Field(default=5, ge=2)


@register_optimizer("grid")
def make_grid(spec: OptimizerSpec, space: SearchSpace, *, goal: Goal) -> GridOptimizer:
    """Build a `GridOptimizer` from an `optimizer: {type: grid, points: N}` spec."""
    settings = parse_settings(spec, GridSettings)
    return GridOptimizer(space, points=settings.points)


__all__ = ["GridOptimizer", "GridSettings", "make_grid"]
