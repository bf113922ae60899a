"""Acquisition functions on GP predictions, and the cost-target weight of the original Protein.

Inside Protein a higher score is always better (a minimised metric is negated before
it gets here), so every acquisition is "higher is better" too. That removes the
original's trap where a negative predicted score times a cost weight favoured
candidates far from the cost target.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def log_expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """log EI(x) of beating `best`, accurate far into the tail (no underflow to -inf)."""
    sd = np.maximum(sd, 1e-12)
    z = (mean - best) / sd
    out = np.empty_like(z)
    mid = z > -6.0
    zm = z[mid]
    h = np.exp(-0.5 * zm * zm - _LOG_SQRT_2PI) + zm * ndtr(zm)
    out[mid] = np.log(np.maximum(h, 1e-300))
    zt = z[~mid]  # Mills-ratio expansion: h(z) ~ phi(z) / z^2 * (1 - 3 / z^2)
    out[~mid] = -0.5 * zt * zt - _LOG_SQRT_2PI - 2.0 * np.log(-zt) + np.log1p(-3.0 / (zt * zt))
    result: np.ndarray = out + np.log(sd)
    return result


def upper_confidence_bound(mean: np.ndarray, sd: np.ndarray, beta: float) -> np.ndarray:
    """UCB: mean + sqrt(beta) * sd."""
    return mean + math.sqrt(beta) * sd


def cost_weight(predicted: np.ndarray, target: float) -> np.ndarray:
    """The original Protein's weight: 1 at the cost target, falling to 0 one unit away."""
    return np.maximum(0.0, 1.0 - np.abs(target - predicted))


def per_cost_weight(predicted: np.ndarray, penalty: float) -> np.ndarray:
    """exp(-penalty * predicted cost in [0, 1]): expected improvement per cost, on a log scale."""
    result: np.ndarray = np.exp(-penalty * np.asarray(predicted))
    return result


def naive(mean: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Predicted score rescaled to [0, 1] over the candidates, times the cost weight."""
    span = float(mean.max() - mean.min())
    score = (mean - mean.min()) / span if span > 0 else np.ones_like(mean)
    result: np.ndarray = score * weight
    return result


__all__ = ["cost_weight", "log_expected_improvement", "naive", "per_cost_weight", "upper_confidence_bound"]
