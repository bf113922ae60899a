"""The grid optimizer (`optimizer: {type: grid}`): each point of the cartesian product once, then again."""

from __future__ import annotations

import pytest

from sweepwise.core.models import Observation
from sweepwise.optimizers import OptimizerSpec, make_optimizer
from sweepwise.optimizers.grid import GridOptimizer
from sweepwise.space import SearchSpace

SPACE = SearchSpace.from_dict(
    {
        "lr": {"distribution": "log_normal", "min": 1e-4, "max": 1e-2},
        "act": {"choices": ["relu", "tanh"]},
    }
)


def test_walks_the_grid_once_skipping_observed_and_pending_points_then_starts_over() -> None:
    optimizer = make_optimizer(OptimizerSpec(type="grid", points=3), SPACE)
    assert isinstance(optimizer, GridOptimizer) and len(optimizer) == 6
    grid = optimizer.suggest([], n_suggestions=6)
    assert len({tuple(sorted(point.items())) for point in grid}) == 6
    assert sorted({point["lr"] for point in grid}) == pytest.approx([1e-4, 1e-3, 1e-2])  # even in log
    observed = [Observation(score=1.0, cost=1.0, suggestion=point) for point in grid[:2]]
    assert optimizer.suggest(observed, n_suggestions=3, pending=[grid[2]]) == grid[3:]
    assert optimizer.suggest(observed, n_suggestions=5, pending=grid[2:4]) == grid[4:] + grid[:3]
