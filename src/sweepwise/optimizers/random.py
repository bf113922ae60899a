"""Random search: uniform samples of the normalised box, without repeats where possible."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from sweepwise.core.errors import ConfigError
from sweepwise.optimizers import Goal, OptimizerSpec, parse_settings, register_optimizer, resolve_seed

if TYPE_CHECKING:
    from sweepwise.core.models import Observation
    from sweepwise.space import SearchSpace

# Finite spaces up to this many points are enumerated, so every point is tried once
# before any repeats; larger ones use rejection sampling.
_ENUMERATE_LIMIT = 4096
# Draws per suggestion before a repeat is accepted (the space is nearly exhausted).
_MAX_ATTEMPTS = 64

_Key = tuple[float, ...]


class RandomOptimizer:
    """Uniform random search, reproducible from its seed and its inputs.

    Each call seeds a fresh generator with `(seed, len(observations), len(pending))`:
    the optimizer keeps no state, a restart given the same observations repeats the
    same suggestions, and successive calls (with more observations) differ.

    Args:
        space: the search space.
        seed: integer >= 0; None draws one at construction (see `seed`).

    Raises:
        ConfigError: `seed` is negative or not an integer (field `optimizer.seed`).
    """

    def __init__(self, space: SearchSpace, *, seed: int | None = None) -> None:
        self.space = space
        self.seed = resolve_seed(seed)
        self._continuous = all(spec.levels is None for spec in space.specs.values())

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Return `n_suggestions` uniform samples not yet observed, pending or in this batch.

        Args:
            observations: finished runs; their suggestions (failed ones too) are avoided.
            n_suggestions: how many suggestions to return (>= 0).
            pending: suggestions still running, also avoided.

        Returns:
            Flat `{dot.path: value}` dicts of plain Python scalars. Repeats happen only
            when the space has no unused point left.
        """
        if n_suggestions < 0:
            raise ValueError(f"n_suggestions must be >= 0, got {n_suggestions}")
        pending = list(pending or [])
        rng = np.random.default_rng([self.seed, len(observations), len(pending)])
        if self._continuous:  # two uniform draws never coincide: no need to look at the past
            return [self.space.sample_uniform(rng, 1)[0] for _ in range(n_suggestions)]
        seen = [obs.suggestion for obs in observations] + pending
        taken = {key for key in map(self._key, seen) if key is not None}
        size = self.space.cardinality
        if size is not None and size <= _ENUMERATE_LIMIT:
            return self._from_enumeration(rng, taken, n_suggestions)
        return self._by_rejection(rng, taken, n_suggestions)

    def _key(self, suggestion: dict[str, Any]) -> _Key | None:
        """Where `suggestion` lands in the box (None if it does not fit the space)."""
        try:
            return tuple(self.space.normalize(suggestion).tolist())
        except ConfigError:
            return None

    def _from_enumeration(self, rng: np.random.Generator, taken: set[_Key], n: int) -> list[dict[str, Any]]:
        names = self.space.names
        grids = [self.space.specs[name].discrete_values() or [] for name in names]
        points = [dict(zip(names, values, strict=True)) for values in itertools.product(*grids)]
        if self.space.conditional:  # inactive parameters dropped: points that then coincide are one
            points = list({self._key(p): p for p in map(self.space.prune, points)}.values())
        fresh = [point for point in points if self._key(point) not in taken]
        chosen = [fresh[i] for i in self._order(rng, fresh)[:n]]
        while len(chosen) < n:
            # Every point has been used: repeat, but spread the repeats over the space.
            chosen.extend(points[i] for i in self._order(rng, points)[: n - len(chosen)])
        return [dict(point) for point in chosen]

    def _order(self, rng: np.random.Generator, points: list[dict[str, Any]]) -> np.ndarray:
        """A random order of `points`: uniform, or weighted by the values' chances where a
        parameter has unequal ones (a `log: true` ordinal; a weighted shuffle)."""
        weighted = {
            name: dict(zip(spec.values or [], weights, strict=True))
            for name, spec in self.space.specs.items()
            if (weights := spec.value_weights()) is not None
        }
        if not weighted:
            return rng.permutation(len(points))
        weight = np.ones(len(points))
        for name, chance in weighted.items():
            weight *= [chance.get(point[name], 1.0) if name in point else 1.0 for point in points]
        keys = np.log(rng.random(len(points))) / weight  # larger keys first (Efraimidis-Spirakis)
        order: np.ndarray = np.argsort(-keys)
        return order

    def _by_rejection(self, rng: np.random.Generator, taken: set[_Key], n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(n):
            for _attempt in range(_MAX_ATTEMPTS):
                candidate = self.space.sample_uniform(rng, 1)[0]
                key = self._key(candidate)
                if key not in taken:
                    break
            if key is not None:
                taken.add(key)
            out.append(candidate)
        return out


class RandomSettings(BaseModel):
    """Settings of the random optimizer: none besides `seed`."""

    model_config = ConfigDict(extra="forbid")


@register_optimizer("random")
def make_random(spec: OptimizerSpec, space: SearchSpace, *, goal: Goal) -> RandomOptimizer:
    """Build a `RandomOptimizer` from its spec (the goal does not matter to it)."""
    parse_settings(spec, RandomSettings)
    return RandomOptimizer(space, seed=spec.seed)


__all__ = ["RandomOptimizer", "RandomSettings", "make_random"]
