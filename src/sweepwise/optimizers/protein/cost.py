"""Protein's cost model: log cost as a linear model of the parameters plus a GP on the rest.

Wall time usually multiplies: iterations x width x ..., so log cost is a sum of the
parameters' logs. The linear part is a ridge regression of log cost on the encoded
parameters (log-scale ones are already logs there) and on the log of every positive
linear-scale number (`Encoder.log_features`); a GP fitted to what it leaves over learns
whatever is not log-linear (docs/optimizers.md, "The cost model").
"""

from __future__ import annotations

import numpy as np

from sweepwise.optimizers.protein.encoding import Encoder
from sweepwise.optimizers.protein.gp import GaussianProcess

_RIDGE = 0.1
"""The ridge penalty per coefficient, on features in [-1, 1] (the intercept goes free)."""


class CostModel:
    """Predicts the log cost of encoded suggestions.

    Args:
        encoder: the search space's encoder.
        x: encoded observations, shape (n, width), optionally followed by more inputs
            (a fidelity column), which enter the regression and the GP as they are.
        log_cost: their natural-log costs, shape (n,).
        rng: draws the GP fit's restart points.
        nu: the GP's Matérn smoothness.
        groups: the GP's length-scale group of each column of `x` (default: the encoder's).
    """

    def __init__(
        self,
        encoder: Encoder,
        x: np.ndarray,
        log_cost: np.ndarray,
        rng: np.random.Generator,
        *,
        nu: float,
        groups: np.ndarray | None = None,
    ) -> None:
        self.encoder = encoder
        phi = self._features(x)
        penalty = _RIDGE * np.eye(phi.shape[1])
        penalty[0, 0] = 0.0
        self.coef = np.linalg.solve(phi.T @ phi + penalty, phi.T @ log_cost)
        residual = log_cost - phi @ self.coef
        groups = encoder.groups if groups is None else groups
        self.gp = GaussianProcess(x, residual, rng, nu=nu, restarts=0, groups=groups)

    def _features(self, xs: np.ndarray) -> np.ndarray:
        return np.hstack([np.ones((len(xs), 1)), xs, self.encoder.log_features(xs[:, : self.encoder.width])])

    def predict(self, xs: np.ndarray) -> np.ndarray:
        """Predicted natural-log cost at `xs`, shape (m,)."""
        xs = np.atleast_2d(xs)
        linear: np.ndarray = self._features(xs) @ self.coef
        result: np.ndarray = linear + self.gp.predict(xs)[0]
        return result


__all__ = ["CostModel"]
