"""Protein, sweepwise's default optimizer: cost-aware Bayesian search (README, "Protein")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sweepwise.optimizers import Goal, OptimizerSpec, parse_settings, register_optimizer
from sweepwise.optimizers.protein.settings import ProteinConfig, ProteinSettings

if TYPE_CHECKING:
    from sweepwise.optimizers.protein.optimizer import ProteinOptimizer
    from sweepwise.space import SearchSpace


@register_optimizer("protein")
def make_protein(spec: OptimizerSpec, space: SearchSpace, *, goal: Goal) -> ProteinOptimizer:
    """Build Protein from an `optimizer: {type: protein, ...}` spec."""
    from sweepwise.optimizers.protein.optimizer import ProteinOptimizer

    settings = parse_settings(spec, ProteinSettings)
    return ProteinOptimizer(space, goal=goal.value, settings=settings, seed=spec.seed)


def __getattr__(name: str) -> object:
    if name == "ProteinOptimizer":
        from sweepwise.optimizers.protein.optimizer import ProteinOptimizer

        return ProteinOptimizer
    raise AttributeError(name)


__all__ = ["ProteinConfig", "ProteinOptimizer", "ProteinSettings", "make_protein"]
