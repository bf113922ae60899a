"""The Pareto front of (score, cost): no other point scores at least as well for no more cost."""

from __future__ import annotations

import numpy as np


def pareto_front(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the front, cheapest first (higher score and lower cost are better).

    Among points of equal cost only the best-scoring one stays; a point stays when it
    scores strictly better than every cheaper point.
    """
    order = np.lexsort((-score, cost))  # by cost, then best score first
    front: list[int] = []
    best = -np.inf
    for index in order:
        if score[index] > best:
            front.append(int(index))
            best = score[index]
    return np.array(front, dtype=int)


__all__ = ["pareto_front"]
