"""Parameter importance: how much each parameter explains the score, from a scikit-learn random forest."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SAMPLES_PER_TREE = 2000


def encode(points: Sequence[Mapping[str, Any]], parameters: Sequence[str]) -> np.ndarray:
    """The trials' parameters as a float matrix (trials x parameters).

    A number is itself; any other value (a choice) is the index of its first appearance; a
    parameter a trial does not have (a conditional one) is one below the column's smallest value.
    """
    matrix = np.full((len(points), len(parameters)), np.nan)
    for j, name in enumerate(parameters):
        codes: dict[str, int] = {}
        for i, point in enumerate(points):
            value = point["params"].get(name)
            if value is None:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                matrix[i, j] = float(value)
            else:
                matrix[i, j] = codes.setdefault(repr(value), len(codes))
        column = matrix[:, j]
        present = column[~np.isnan(column)]
        column[np.isnan(column)] = (present.min() - 1.0) if present.size else 0.0
    return matrix


def parameter_importance(points: Sequence[Mapping[str, Any]], parameters: Sequence[str]) -> dict[str, float]:
    """Each parameter's share of the forest's impurity decrease in predicting the score (sums to 1).

    Empty when there are fewer than two scored trials or the scores are all equal: nothing to explain.
    """
    scores = np.array([point["score"] for point in points], dtype=float)
    if len(points) < 2 or not parameters or np.ptp(scores) == 0:
        return {}
    from sklearn.ensemble import RandomForestRegressor

    # each tree sees at most SAMPLES_PER_TREE trials: 10,000 trials cost what 2,000 do
    samples = min(len(points), SAMPLES_PER_TREE)
    forest = RandomForestRegressor(n_estimators=64, max_samples=samples, random_state=0)
    forest.fit(encode(points, parameters), scores)
    shares = np.nan_to_num(np.asarray(forest.feature_importances_, dtype=float))
    return {name: float(share) for name, share in zip(parameters, shares, strict=True)}


__all__ = ["SAMPLES_PER_TREE", "encode", "parameter_importance"]
