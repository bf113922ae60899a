"""Suggestions as feature vectors for the GP: numbers in [-1, 1], categoricals one-hot.

One-hot blocks keep the GP from reading an order into categorical choices. Every
vector can be snapped onto the grid of what is really suggestable (whole numbers,
powers of two, one choice per categorical), so two candidates that would round to the
same suggestion get the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sweepwise.space import Distribution, SearchSpace


@dataclass(frozen=True, slots=True)
class _Block:
    name: str
    start: int
    width: int  # 1 for numbers, len(choices) for categoricals
    categorical: bool
    discrete: bool


class Encoder:
    """Maps suggestions of a `SearchSpace` to feature vectors and back.

    Args:
        space: the search space.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        blocks = []
        start = 0
        for name in space.names:
            spec = space.specs[name]
            categorical = spec.distribution is Distribution.CATEGORICAL
            width = len(spec.choices or []) if categorical else 1
            discrete = categorical or spec.levels is not None
            blocks.append(_Block(name, start, width, categorical, discrete))
            start += width
        self.blocks = tuple(blocks)
        self.width = start
        self.numeric = np.array([not b.categorical for b in blocks for _ in range(b.width)], dtype=bool)

    def encode(self, suggestion: dict[str, Any]) -> np.ndarray:
        """The feature vector of a suggestion (values outside the range are clipped)."""
        out = np.zeros(self.width)
        for block in self.blocks:
            spec = self.space.specs[block.name]
            u = spec.to_unit(suggestion[block.name])
            if block.categorical:
                out[block.start + int(round((u + 1.0) / 2.0 * (block.width - 1)))] = 1.0
            else:
                out[block.start] = u
        return out

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """The suggestion a feature vector stands for."""
        out: dict[str, Any] = {}
        for block in self.blocks:
            spec = self.space.specs[block.name]
            if block.categorical:
                index = int(np.argmax(x[block.start : block.start + block.width]))
                out[block.name] = (spec.choices or [])[index]
            else:
                out[block.name] = spec.from_unit(float(x[block.start]))
        return out

    def snap(self, xs: np.ndarray) -> np.ndarray:
        """Move each row (shape (m, width)) onto the suggestable grid."""
        xs = np.clip(np.array(xs, dtype=float), -1.0, 1.0)
        for block in self.blocks:
            cols = slice(block.start, block.start + block.width)
            if block.categorical:
                hot = np.argmax(xs[:, cols], axis=1)
                xs[:, cols] = 0.0
                xs[np.arange(len(xs)), block.start + hot] = 1.0
            elif block.discrete:  # whole numbers and powers of two are evenly spaced in [-1, 1]
                steps = (self.space.specs[block.name].levels or 1) - 1
                if steps == 0:
                    xs[:, block.start] = 0.0
                else:
                    index = np.floor((xs[:, block.start] + 1.0) / 2.0 * steps + 0.5)
                    xs[:, block.start] = 2.0 * index / steps - 1.0
        return xs

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` uniform feature vectors (a random choice per categorical)."""
        xs = rng.uniform(-1.0, 1.0, (n, self.width))
        for block in self.blocks:
            if block.categorical:
                xs[:, block.start : block.start + block.width] = 0.0
                xs[np.arange(n), block.start + rng.integers(0, block.width, n)] = 1.0
        return xs

    def perturb(
        self, centers: np.ndarray, sigma: np.ndarray, rng: np.random.Generator, flip: float
    ) -> np.ndarray:
        """Gaussian steps of per-row size `sigma` around `centers`; categoricals re-drawn with prob `flip`."""
        xs = centers + rng.standard_normal(centers.shape) * sigma[:, None] * self.numeric
        for block in self.blocks:
            if block.categorical:
                redraw = rng.random(len(xs)) < flip
                cols = slice(block.start, block.start + block.width)
                xs[redraw, cols] = 0.0
                xs[np.flatnonzero(redraw), block.start + rng.integers(0, block.width, int(redraw.sum()))] = (
                    1.0
                )
        clipped: np.ndarray = np.clip(xs, -1.0, 1.0)
        return clipped

    @staticmethod
    def key(x: np.ndarray) -> tuple[float, ...]:
        """A hashable identity of a snapped vector."""
        return tuple(np.round(x, 9).tolist())


__all__ = ["Encoder"]
