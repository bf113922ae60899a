"""Cost-aware search on a mixed, conditional space: Protein against Optuna's TPE and GP samplers.

A stylised training run: an ordinal learning rate (log-spaced values), whole-number
iterations, an ordinal width, a categorical optimizer, and a conditional parameter per
optimizer (`momentum` when sgd, an ordinal `beta2` when adam). More iterations and a wider
model lower the loss and raise the cost, which is iterations x width (not uniform).
Every optimizer is sweepwise's (Optuna through its adapter: define-by-run, ordinals as an
index). The table gives the final log10 regret and the cumulative cost each needs to reach
the best peer's median final regret.

    python benchmarks/mixed.py --seeds 5 --workers 2
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

PARAMETERS: dict[str, Any] = {
    "lr": {"distribution": "ordinal", "values": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], "log": True},
    "iterations": {"distribution": "int_uniform", "min": 100, "max": 5000},
    "width": {"distribution": "ordinal", "values": [16, 32, 64, 128, 256, 512]},
    "optimizer": {"choices": ["sgd", "adam"]},
    "momentum": {"distribution": "uniform", "min": 0.0, "max": 0.99, "when": {"optimizer": "sgd"}},
    "beta2": {"distribution": "ordinal", "values": [0.9, 0.99, 0.999], "when": {"optimizer": "adam"}},
}
OPTIMIZERS = {
    "protein": {"type": "protein"},
    "optuna-tpe": {"type": "optuna", "sampler": "tpe"},
    "optuna-gp": {"type": "optuna", "sampler": "gp"},
    "random": {"type": "random"},
}
BUDGET = 50
OPTIMUM = 2.0 / math.sqrt(50.0) + 1.0 / math.sqrt(32.0)


def loss(s: dict[str, Any]) -> float:
    log_lr = math.log10(s["lr"])
    if s["optimizer"] == "adam":
        fit = 0.3 * (log_lr + 3.0) ** 2 + 0.2 * (3.0 + math.log10(1.0 - s["beta2"])) ** 2
    else:
        fit = 0.05 + 0.3 * (log_lr + 1.5) ** 2 + 2.0 * (s["momentum"] - 0.9) ** 2
    return fit + 2.0 / math.sqrt(s["iterations"] / 100.0) + 1.0 / math.sqrt(s["width"] / 16.0)


def cost(s: dict[str, Any]) -> float:
    return float(s["iterations"] * s["width"] / 1000.0)


def run(task: tuple[str, int]) -> tuple[tuple[str, int], dict[str, list[float]]]:
    from sweepwise.core.models import Observation
    from sweepwise.optimizers import OptimizerSpec, make_optimizer
    from sweepwise.space import SearchSpace

    name, seed = task
    space = SearchSpace.from_dict(PARAMETERS)
    optimizer = make_optimizer(OptimizerSpec(**OPTIMIZERS[name], seed=seed), space, goal="minimize")
    observations: list[Observation] = []
    regret: list[float] = []
    spent: list[float] = []
    while len(observations) < BUDGET:
        (s,) = optimizer.suggest(observations, 1)
        space.validate_suggestion(s)
        value, c = loss(s), cost(s)
        observations.append(Observation(value, c, s))
        regret.append(min(regret[-1] if regret else math.inf, math.log10(max(value - OPTIMUM, 1e-12))))
        spent.append((spent[-1] if spent else 0.0) + c)
    return task, {"regret": regret, "cost": spent}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tasks = [(name, seed) for name in OPTIMIZERS for seed in range(args.seeds)]
    if args.workers > 1:
        from _pool import worker_pool

        with worker_pool(args.workers) as pool:
            results = dict(pool.map(run, tasks))
    else:
        results = dict(map(run, tasks))
    final = {
        n: float(np.median([results[(n, s)]["regret"][-1] for s in range(args.seeds)])) for n in OPTIMIZERS
    }
    peers = [n for n in OPTIMIZERS if n.startswith("optuna")]
    best_peer = min(peers, key=lambda n: final[n])
    target = final[best_peer]
    print(f"## Mixed conditional space, {BUDGET} evaluations, {args.seeds} seeds\n")
    print(f"target: log10 regret {target:.2f} ({best_peer}'s median final)\n")
    print("| optimizer | final log10 regret (median) | median cost to reach target | seeds reaching it |")
    print("| --- | --- | --- | --- |")
    for n in OPTIMIZERS:
        reach = []
        for s in range(args.seeds):
            r, c = results[(n, s)]["regret"], results[(n, s)]["cost"]
            hit = next((c[i] for i in range(len(r)) if r[i] <= target), math.inf)
            reach.append(hit)
        median = float(np.median(reach))
        hits = sum(math.isfinite(x) for x in reach)
        shown = f"{median:,.0f}" if math.isfinite(median) else "inf"
        print(f"| {n} | {final[n]:.2f} | {shown} | {hits}/{args.seeds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
