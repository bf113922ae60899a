"""Suggestions as feature vectors for the GP: numbers in [-1, 1], categoricals one-hot.

One-hot blocks keep the GP from reading an order into categorical choices; an ordinal
parameter is one number, its rank (or its log10 with `log: true`) mapped to [-1, 1].
Every vector can be snapped onto the grid of what is really suggestable (whole numbers,
powers of two, ordinal values, one choice per categorical), so the acquisition is only
ever scored at points that can be suggested, and two candidates that would round to the
same suggestion get the same key. An inactive conditional parameter takes a fixed
neutral value (0 for a number, all zeros for a one-hot block), so the GP sees one
vector per suggestion whatever the inactive parameters were (docs/optimizers.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweepwise.space import Distribution, SearchSpace

_TOUCH = 1e-9  # a value whose share only touches the design box is in it
_KEEP_ENCODED = 1 << 14  # suggestions whose vectors an encoder keeps (then it starts afresh): some MB


@dataclass(frozen=True, slots=True)
class _Block:
    name: str
    start: int
    width: int  # 1 for numbers, len(choices) for categoricals
    categorical: bool
    discrete: bool


@dataclass(frozen=True, slots=True)
class _Condition:
    child: int  # block index
    parent: int  # block index
    level: int  # index of the parent's value that makes the child active


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
        self.groups = np.array([i for i, b in enumerate(blocks) for _ in range(b.width)], dtype=int)
        """Block index of each column: a categorical's one-hot columns share one length scale."""
        index = {b.name: i for i, b in enumerate(blocks)}
        conditions = []
        for name in space.order():
            for parent, value in (space.specs[name].when or {}).items():
                values = space.specs[parent].discrete_values() or []
                level = next(k for k, v in enumerate(values) if space.specs[parent].same_value(v, value))
                conditions.append(_Condition(index[name], index[parent], level))
        self._conditions = tuple(conditions)
        self.wide_integers = tuple(
            (b.start, float(spec.min or 1), float(spec.max or 1))
            for b in blocks
            if (spec := space.specs[b.name]).distribution is Distribution.INT_UNIFORM
            and (spec.min or 0) >= 1
            and (spec.max or 0) >= 10 * (spec.min or 1)
        )
        """(column, min, max) of each integer that starts at 1 or more and spans 10 times or more."""
        self._levels = {
            i: np.asarray(space.specs[b.name].unit_levels())
            for i, b in enumerate(blocks)
            if b.discrete and not b.categorical and not space.specs[b.name].evenly_spaced
        }
        self._encoded: dict[tuple[Any, ...], np.ndarray] = {}

    def encode(self, suggestion: dict[str, Any]) -> np.ndarray:
        """The feature vector of a suggestion (values outside the range are clipped).

        A sweep hands Protein its finished runs at every suggestion, so each suggestion's
        vector is kept (by its names, values and their types: `True` is not 1) and encoded
        once per optimizer, not once per call (docs/optimizers.md, "Speed").

        Raises:
            ValueError: an active parameter is missing, not a number, NaN, or not a choice.
        """
        try:
            key = tuple((name, type(value), value) for name, value in suggestion.items())
            known = self._encoded.get(key)
        except TypeError:  # an unhashable value: encoded every time
            return self._encode(suggestion)
        if known is None:
            known = self._encode(suggestion)
            if len(self._encoded) >= _KEEP_ENCODED:
                self._encoded.clear()
            self._encoded[key] = known
        return known.copy()

    def _encode(self, suggestion: dict[str, Any]) -> np.ndarray:
        out = np.zeros(self.width)
        active = self.space.active(suggestion) if self._conditions else None
        for block in self.blocks:
            if active is not None and block.name not in active:
                continue  # neutral: 0, or no choice hot
            spec = self.space.specs[block.name]
            if block.name not in suggestion:
                raise ValueError(f"has no value for parameter {block.name!r}")
            try:
                u = spec.to_unit(suggestion[block.name])
            except ValueError as exc:
                raise ValueError(f"parameter {block.name!r}: {exc}") from None
            if math.isnan(u):
                raise ValueError(f"parameter {block.name!r} is NaN, not a value of its range")
            if block.categorical:
                out[block.start + int(round((u + 1.0) / 2.0 * (block.width - 1)))] = 1.0
            else:
                out[block.start] = u
        return out

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """The suggestion a (snapped) feature vector stands for, without its inactive parameters."""
        active = self.active(x[None])[0]
        out: dict[str, Any] = {}
        for i, block in enumerate(self.blocks):
            if not active[i]:
                continue
            spec = self.space.specs[block.name]
            if block.categorical:
                index = int(np.argmax(x[block.start : block.start + block.width]))
                out[block.name] = (spec.choices or [])[index]
            else:
                out[block.name] = spec.from_unit(float(x[block.start]))
        return out

    def _level(self, xs: np.ndarray, i: int) -> np.ndarray:
        """The index of each row's value of discrete block `i` (rows already snapped)."""
        block = self.blocks[i]
        if block.categorical:
            index: np.ndarray = np.argmax(xs[:, block.start : block.start + block.width], axis=1)
            return index
        u = xs[:, block.start]
        if i in self._levels:
            levels = self._levels[i]
            return np.searchsorted((levels[1:] + levels[:-1]) / 2.0, u, side="right")
        steps = max((self.space.specs[block.name].levels or 1) - 1, 0)
        return np.floor((u + 1.0) / 2.0 * steps + 0.5).astype(int)

    def active(self, xs: np.ndarray) -> np.ndarray:
        """Which blocks are active in each row, shape (m, len(blocks)), parents before children."""
        mask = np.ones((len(xs), len(self.blocks)), dtype=bool)
        for c in self._conditions:  # in the space's order: a parent's mask is final before its child's
            mask[:, c.child] &= mask[:, c.parent] & (self._level(xs, c.parent) == c.level)
        return mask

    def snap(self, xs: np.ndarray) -> np.ndarray:
        """Move each row (shape (m, width)) onto the suggestable grid; inactive blocks neutral."""
        xs = np.clip(np.array(xs, dtype=float), -1.0, 1.0)
        for i, block in enumerate(self.blocks):
            cols = slice(block.start, block.start + block.width)
            if block.categorical:
                hot = np.argmax(xs[:, cols], axis=1)
                xs[:, cols] = 0.0
                xs[np.arange(len(xs)), block.start + hot] = 1.0
            elif i in self._levels:  # unevenly spaced (a log ordinal): the nearest level
                levels = self._levels[i]
                index = np.searchsorted((levels[1:] + levels[:-1]) / 2.0, xs[:, block.start], side="right")
                xs[:, block.start] = levels[index]
            elif block.discrete:  # whole numbers, powers of two, ranks are evenly spaced in [-1, 1]
                steps = (self.space.specs[block.name].levels or 1) - 1
                if steps == 0:
                    xs[:, block.start] = 0.0
                else:
                    index = np.floor((xs[:, block.start] + 1.0) / 2.0 * steps + 0.5)
                    xs[:, block.start] = 2.0 * index / steps - 1.0
        if self._conditions:
            mask = self.active(xs)
            for i, block in enumerate(self.blocks):
                xs[~mask[:, i], block.start : block.start + block.width] = 0.0
        return xs

    def neighbours(self, centers: np.ndarray) -> np.ndarray:
        """Every one-step move of each (snapped) row on the grid: a discrete number one level up or
        down, a categorical to each other choice. Continuous columns are left to `perturb`."""
        moves = []
        for i, block in enumerate(self.blocks):
            if not block.discrete:
                continue
            if block.categorical:
                for choice in range(block.width):
                    moved = centers.copy()
                    moved[:, block.start : block.start + block.width] = 0.0
                    moved[:, block.start + choice] = 1.0
                    moves.append(moved)
                continue
            for step in (-1, 1):
                moved = centers.copy()
                moved[:, block.start] = self._moved(i, centers[:, block.start], step)
                moves.append(moved)
        return np.vstack(moves) if moves else np.zeros((0, self.width))

    def _moved(self, i: int, u: np.ndarray, step: int) -> np.ndarray:
        """Values `u` of discrete number block `i` moved `step` levels (held at the ends)."""
        if i in self._levels:
            values = self._levels[i]
            index = np.searchsorted((values[1:] + values[:-1]) / 2.0, u, side="right")
            moved: np.ndarray = values[np.clip(index + step, 0, len(values) - 1)]
            return moved
        steps = (self.space.specs[self.blocks[i].name].levels or 1) - 1
        if steps == 0:
            return np.zeros_like(u)
        index = np.clip(np.floor((u + 1.0) / 2.0 * steps + 0.5) + step, 0, steps)  # no list of the levels:
        out: np.ndarray = 2.0 * index / steps - 1.0  # an integer may have 10**15 of them
        return out

    def design(self, u: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """The point of unit-cube row `u` in the design box `center` ± `scale` (snap it after).

        A continuous number is `center + (2u - 1) * scale`. A discrete number takes each of its
        values whose share of [-1, 1] (the points that snap to it) meets the box, with equal
        chances: a box that spans the range reaches every value, the lowest of an even count
        too (its middle value is above the centre). A categorical takes a choice by `u`.
        """
        x: np.ndarray = center + (2.0 * u - 1.0) * scale
        for i, block in enumerate(self.blocks):
            v = float(u[block.start])
            if block.categorical:
                x[block.start : block.start + block.width] = 0.0
                x[block.start + min(int(v * block.width), block.width - 1)] = 1.0
            elif block.discrete:
                low, high = center[block.start] - scale[block.start], center[block.start] + scale[block.start]
                x[block.start] = self._level_in(i, low - _TOUCH, high + _TOUCH, v)
        return x

    def _level_in(self, i: int, low: float, high: float, v: float) -> float:
        """The value of discrete number block `i` at fraction `v` of those whose share meets [low, high]."""
        if i in self._levels:
            values = self._levels[i]
            middles = (values[1:] + values[:-1]) / 2.0
            meets = np.flatnonzero(
                (np.append(middles, np.inf) >= low) & (np.insert(middles, 0, -np.inf) <= high)
            )
            return float(values[meets[min(int(v * len(meets)), len(meets) - 1)]])
        steps = (self.space.specs[self.blocks[i].name].levels or 1) - 1
        if steps == 0:
            return 0.0
        # value k sits at 2k/steps - 1 and has the points within 1/steps of it (no list of the
        # values: an integer may have 10**15 of them)
        first = max(0, math.ceil((low + 1.0) / 2.0 * steps - 0.5))
        last = min(steps, math.floor((high + 1.0) / 2.0 * steps + 0.5))
        count = max(last - first + 1, 1)
        return 2.0 * (first + min(int(v * count), count - 1)) / steps - 1.0

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
        """Gaussian steps of per-row size `sigma` around `centers`; categoricals re-drawn with prob `flip`.

        An inactive (all-zero) categorical block is always re-drawn, so that it has a choice
        should its parent change.
        """
        xs = centers + rng.standard_normal(centers.shape) * sigma[:, None] * self.numeric
        for block in self.blocks:
            if block.categorical:
                cols = slice(block.start, block.start + block.width)
                redraw = (rng.random(len(xs)) < flip) | ~xs[:, cols].any(axis=1)
                xs[redraw, cols] = 0.0
                xs[np.flatnonzero(redraw), block.start + rng.integers(0, block.width, int(redraw.sum()))] = (
                    1.0
                )
        clipped: np.ndarray = np.clip(xs, -1.0, 1.0)
        return clipped

    def log_features(self, xs: np.ndarray) -> np.ndarray:
        """log10 of each positive linear-scale number (uniform, int_uniform, ordinal by rank),
        mapped to [-1, 1]: costs that multiply such numbers are linear in these (shape (m, k))."""
        out = []
        for block in self.blocks:
            spec = self.space.specs[block.name]
            u = xs[:, block.start]
            if spec.distribution in (Distribution.UNIFORM, Distribution.INT_UNIFORM) and (spec.min or 0) > 0:
                lo, hi = float(spec.min or 1), float(spec.max or 1)
                natural = np.log10(lo + (u + 1.0) / 2.0 * (hi - lo))
            elif spec.distribution is Distribution.ORDINAL and not spec.log and (spec.values or [0])[0] > 0:
                values = np.log10(np.asarray(spec.values, dtype=float))
                if len(values) < 2:
                    continue
                natural = np.interp((u + 1.0) / 2.0 * (len(values) - 1), np.arange(len(values)), values)
                lo, hi = 10 ** values[0], 10 ** values[-1]
            else:
                continue
            span = math.log10(hi) - math.log10(lo)
            out.append(2.0 * (natural - math.log10(lo)) / span - 1.0 if span > 0 else 0.0 * natural)
        return np.stack(out, axis=1) if out else np.zeros((len(xs), 0))

    def log_integers(self, xs: np.ndarray) -> np.ndarray:
        """`xs` with each wide integer (`wide_integers`) on a log scale, still in [-1, 1].

        Counts (iterations, leaves, units) act by their ratios: 8 and 16 leaves differ as
        much as 32 and 64 (docs/optimizers.md, "Encoding").
        """
        if not self.wide_integers:
            return xs
        out = xs.copy()
        for column, lo, hi in self.wide_integers:
            value = np.clip(lo + (xs[:, column] + 1.0) / 2.0 * (hi - lo), lo, hi)
            out[:, column] = 2.0 * np.log(value / lo) / math.log(hi / lo) - 1.0
        return out

    @staticmethod
    def key(x: np.ndarray) -> tuple[float, ...]:
        """A hashable identity of a snapped vector."""
        return tuple(np.round(x, 9).tolist())


__all__ = ["Encoder"]
