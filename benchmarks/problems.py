"""Benchmark problems for the optimizer comparison: classic test functions and a cost-aware one.

Every problem is minimised; `regret(x)` is the value above the known optimum. Each
evaluation returns (value, cost); the cost is 1 except on the cost-aware problem.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Problem:
    """A box-bounded minimisation problem with a known optimum."""

    name: str
    bounds: list[tuple[float, float]]
    fn: Callable[[np.ndarray], float]
    optimum: float
    budget: int
    cost_fn: Callable[[np.ndarray], float] | None = None
    kinds: tuple[str, ...] = field(default_factory=tuple)  # per dim: "float" (default) or "pow2"

    @property
    def dim(self) -> int:
        return len(self.bounds)

    def kind(self, i: int) -> str:
        return self.kinds[i] if i < len(self.kinds) else "float"

    def parameters(self) -> dict[str, dict[str, object]]:
        """The problem's box as a sweepwise parameter spec (x0, x1, ...)."""
        out: dict[str, dict[str, object]] = {}
        for i, (lo, hi) in enumerate(self.bounds):
            kind = "uniform_pow2" if self.kind(i) == "pow2" else "uniform"
            out[f"x{i}"] = {"distribution": kind, "min": lo, "max": hi}
        return out

    def evaluate(self, x: np.ndarray) -> tuple[float, float]:
        cost = self.cost_fn(x) if self.cost_fn else 1.0
        return self.fn(x), cost

    def regret(self, value: float) -> float:
        return max(value - self.optimum, 1e-12)


def branin(x: np.ndarray) -> float:
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x: np.ndarray) -> float:
    return float(-(_H_ALPHA * np.exp(-(_H_A * (x - _H_P) ** 2).sum(1))).sum())


def rosenbrock(x: np.ndarray) -> float:
    return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())


_ACKLEY_SHIFT = np.array([7.3, -11.1, 4.2, 15.6, -3.9])


def ackley_shifted(x: np.ndarray) -> float:
    z = x - _ACKLEY_SHIFT[: len(x)]
    d = len(z)
    return float(
        -20 * math.exp(-0.2 * math.sqrt((z * z).sum() / d))
        - math.exp(np.cos(2 * math.pi * z).sum() / d)
        + 20
        + math.e
    )


# A stylised training run: log10 learning rate and weight decay have an optimum; more steps
# and a wider model (powers of two) lower the loss and raise the cost (steps x width).
def training_loss(x: np.ndarray) -> float:
    log_lr, log_wd, steps, width = x[0], x[1], x[2], x[3]
    return float(
        0.3 * (log_lr + 2.5) ** 2
        + 0.1 * (log_wd + 4.0) ** 2
        + 2.0 / math.sqrt(steps / 100.0)
        + 1.0 / math.sqrt(width / 16.0)
    )


def training_cost(x: np.ndarray) -> float:
    return float(x[2] * x[3] / 1000.0)


PROBLEMS = {
    "branin": Problem("branin", [(-5.0, 10.0), (0.0, 15.0)], branin, 0.397887357729738, 30),
    "hartmann6": Problem("hartmann6", [(0.0, 1.0)] * 6, hartmann6, -3.322368011391339, 60),
    "rosenbrock4": Problem("rosenbrock4", [(-5.0, 10.0)] * 4, rosenbrock, 0.0, 60),
    "ackley5": Problem("ackley5", [(-32.768, 32.768)] * 5, ackley_shifted, 0.0, 60),
    "training": Problem(
        "training",
        [(-5.0, 0.0), (-7.0, -1.0), (128.0, 8192.0), (16.0, 1024.0)],
        training_loss,
        2.0 / math.sqrt(81.92) + 1.0 / math.sqrt(64.0),
        60,
        cost_fn=training_cost,
        kinds=("float", "float", "pow2", "pow2"),
    ),
}
