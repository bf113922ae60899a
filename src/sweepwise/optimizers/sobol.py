"""Sobol search: a scrambled low-discrepancy sequence, point k for the k-th suggestion."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.stats import qmc

from sweepwise.optimizers import Goal, OptimizerSpec, parse_settings, register_optimizer, resolve_seed

if TYPE_CHECKING:
    from sweepwise.core.models import Observation
    from sweepwise.space import SearchSpace


class SobolOptimizer:
    """Scrambled Sobol points over the normalised box; reproducible from the seed.

    The k-th suggestion (k = observations + pending + position in the batch) is the
    k-th point of the sequence, so suggestions never depend on scores and a restart
    continues the sequence where it stopped.

    Args:
        space: the search space.
        seed: integer >= 0 that scrambles the sequence; None draws one.
    """

    def __init__(self, space: SearchSpace, *, seed: int | None = None) -> None:
        self.space = space
        self.seed = resolve_seed(seed)

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """The next `n_suggestions` points of the sequence."""
        start = len(observations) + len(pending or [])
        end = start + n_suggestions
        size = 1 << max(1, math.ceil(math.log2(max(end, 2))))
        points = qmc.Sobol(max(self.space.dim, 1), scramble=True, seed=self.seed).random(size)
        return [self.space.denormalize(2.0 * np.asarray(points[k]) - 1.0) for k in range(start, end)]


class SobolSettings(BaseModel):
    """Sobol takes no settings besides `seed`."""

    model_config = ConfigDict(extra="forbid")


@register_optimizer("sobol")
def make_sobol(spec: OptimizerSpec, space: SearchSpace, *, goal: Goal) -> SobolOptimizer:
    """Build a `SobolOptimizer` from an `optimizer: {type: sobol}` spec."""
    parse_settings(spec, SobolSettings)
    return SobolOptimizer(space, seed=spec.seed)


__all__ = ["SobolOptimizer", "SobolSettings", "make_sobol"]
