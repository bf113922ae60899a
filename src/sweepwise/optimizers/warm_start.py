"""Warm start: an optimizer that also learns from finished runs of other experiments.

`WarmStarted` wraps any optimizer and hands it the warm-start observations ahead of
the sweep's own at every call. Optimizers are stateless (`sweepwise.core.protocols.Optimizer`):
they are rebuilt from the observations they are given, and the sweep's own come from its
runs. So a restarted controller that wraps its optimizer again with the same observations
sees each of them once, never twice (docs/stores.md, "Export and import").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import Observation

if TYPE_CHECKING:
    from sweepwise.core.protocols import Optimizer
    from sweepwise.space import SearchSpace


@dataclass(frozen=True)
class Fitted:
    """Observations mapped onto a search space, and how many did not fit it."""

    observations: list[Observation]
    skipped: int


def fit_to_space(observations: Iterable[Observation], space: SearchSpace) -> Fitted:
    """Each observation with its suggestion cut down to `space`'s parameters.

    An observation whose suggestion misses one of the space's parameters, or holds a value
    outside its range or choices, is skipped; parameters the space does not have are dropped.

    Args:
        observations: finished runs of other experiments.
        space: this experiment's search space.
    """
    kept: list[Observation] = []
    skipped = 0
    for observation in observations:
        names = sorted(space.active(observation.suggestion))
        if any(name not in observation.suggestion for name in names):
            skipped += 1
            continue
        suggestion = {name: observation.suggestion[name] for name in names}
        try:
            space.validate_suggestion(suggestion)
        except ConfigError:
            skipped += 1
            continue
        kept.append(replace(observation, suggestion=suggestion))  # its step and stopped flag kept
    return Fitted(kept, skipped)


class WarmStarted:
    """An optimizer that sees `warm` observations before the sweep's own.

    Args:
        optimizer: the optimizer to wrap.
        warm: the warm-start observations (already fitted to the optimizer's space).
    """

    def __init__(self, optimizer: Optimizer, warm: Sequence[Observation]) -> None:
        self.optimizer = optimizer
        self.warm = list(warm)

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """The wrapped optimizer's suggestions from the warm observations followed by `observations`."""
        return self.optimizer.suggest([*self.warm, *observations], n_suggestions, pending)


__all__ = ["Fitted", "WarmStarted", "fit_to_space"]
