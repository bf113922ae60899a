"""Real problems for the optimizer benchmark: look-ups in the tables `build.py` writes.

A problem is a model family on one of scikit-learn's bundled datasets, tabulated on a grid:
for each grid point and seed (a train/validation split) the validation loss after each step
of training and the fit's cumulative wall time. An evaluation snaps its parameters to the
nearest grid point, so a benchmark run is a table look-up. Losses are minimised; the regret
of a value is how far it lies above the best the table holds for that seed.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

TABLES = Path(__file__).resolve().parent / "tables"
BUDGETS = {"hgb": 40, "mlp": 40, "svm": 30}  # evaluations per run, by model family


def sweepwise_parameters(params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A table's grid as a sweepwise parameter spec.

    A log grid is an `ordinal` spaced on a log scale, an ordinal list an `ordinal`, an int
    grid `int_uniform` over its range, a categorical a categorical; a conditional parameter
    carries its `when:` (docs/optimizers.md, "Parameter specs").
    """
    out: dict[str, dict[str, Any]] = {}
    for name, p in params.items():
        values = p["values"]
        if p["kind"] == "log":
            spec: dict[str, Any] = {"distribution": "ordinal", "values": list(values), "log": True}
        elif p["kind"] == "ordinal":
            spec = {"distribution": "ordinal", "values": list(values)}
        elif p["kind"] == "int":
            spec = {"distribution": "int_uniform", "min": min(values), "max": max(values)}
        else:
            spec = {"distribution": "categorical", "choices": list(values)}
        if p.get("when"):
            spec["when"] = dict(p["when"])
        out[name] = spec
    return out


def _nearest(p: dict[str, Any], value: Any) -> int:
    """Index of the grid value nearest `value` (on a log scale for a log grid)."""
    values = p["values"]
    if p["kind"] == "categorical":
        return int(values.index(value))
    if p["kind"] == "log":
        return int(np.argmin([abs(math.log(float(value)) - math.log(v)) for v in values]))
    return int(np.argmin([abs(float(value) - v) for v in values]))


@dataclass(frozen=True, eq=False)
class RealProblem:
    """One table: its grid, losses and costs; evaluations are look-ups."""

    name: str
    model: str
    dataset: str
    metric: str
    params: dict[str, dict[str, Any]]
    names: list[str]  # the fitted parameters, in the order of a point's indices
    step_param: str | None
    steps: list[int]
    seeds: int
    loss: np.ndarray  # [point, seed, step]
    cost: np.ndarray  # cumulative seconds, [point, seed, step]
    rows: dict[tuple[int, ...], int]
    budget: int
    log_regret = False  # regrets are reported in the metric's units (a grid optimum is reachable)

    @classmethod
    def load(cls, path: Path) -> RealProblem:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
        return cls(
            name=data["name"],
            model=data["model"],
            dataset=data["dataset"],
            metric=data["metric"],
            params=data["params"],
            names=data["names"],
            step_param=data["step_param"],
            steps=data["steps"],
            seeds=data["seeds"],
            loss=np.array(data["loss"], dtype=float),
            cost=np.array(data["cost"], dtype=float),
            rows={tuple(point): i for i, point in enumerate(data["points"])},
            budget=BUDGETS[data["model"]],
        )

    def scaled(self, scale: float) -> RealProblem:
        """The problem with its budget scaled (at least 2 evaluations)."""
        return replace(self, budget=max(2, round(self.budget * scale)))

    def parameters(self, *, with_step: bool = True) -> dict[str, dict[str, Any]]:
        """The sweepwise parameter spec (without the step parameter for an early-stopping sweep)."""
        params = {n: p for n, p in self.params.items() if with_step or n != self.step_param}
        return sweepwise_parameters(params)

    def row(self, params: dict[str, Any]) -> int:
        """The grid point nearest `params`."""
        key = []
        for name in self.names:
            p = self.params[name]
            active = all(params.get(k) == v for k, v in p.get("when", {}).items())
            key.append(_nearest(p, params[name]) if active else -1)
        return self.rows[tuple(key)]

    def step_index(self, params: dict[str, Any], step: int | None = None) -> int:
        """Index of the training step: `step` if given, else the step parameter's, else the last."""
        if step is None and self.step_param is not None:
            step = params[self.step_param]
        if step is None:
            return len(self.steps) - 1
        return _nearest({"kind": "int", "values": self.steps}, step)

    def evaluate(self, params: dict[str, Any], seed: int, step: int | None = None) -> tuple[float, float]:
        """(validation loss, cumulative seconds) at the nearest grid point and step, for `seed`."""
        row, t, s = self.row(params), self.step_index(params, step), seed % self.seeds
        return float(self.loss[row, s, t]), float(self.cost[row, s, t])

    def curve(self, params: dict[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The learning curve at the nearest grid point: losses and cumulative seconds per step."""
        row, s = self.row(params), seed % self.seeds
        return self.loss[row, s], self.cost[row, s]

    def best(self, seed: int) -> float:
        """The lowest loss an evaluation can reach for `seed` (any step if a parameter picks it)."""
        s = seed % self.seeds
        return float(self.loss[:, s].min() if self.step_param else self.loss[:, s, -1].min())

    def regret(self, value: float, seed: int) -> float:
        return max(value - self.best(seed), 0.0)

    # -- the peers' own spaces ---------------------------------------------------------------

    def optuna_params(self, trial: Any, *, with_step: bool = True) -> dict[str, Any]:
        """Suggest a point with an Optuna trial: log and int ranges, choices, conditions by run."""
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if name == self.step_param and not with_step:
                continue
            if any(out.get(k) != v for k, v in p.get("when", {}).items()):
                continue
            values = p["values"]
            if p["kind"] == "log":
                out[name] = trial.suggest_float(name, min(values), max(values), log=True)
            elif p["kind"] == "int":
                out[name] = trial.suggest_int(name, min(values), max(values))
            else:
                out[name] = trial.suggest_categorical(name, values)
        return out

    def ax_parameters(self) -> list[Any]:
        """Ax parameter configs: log and int ranges, ordered and unordered choices."""
        from ax import ChoiceParameterConfig, RangeParameterConfig

        out: list[Any] = []
        for name, p in self.params.items():
            values = p["values"]
            if p["kind"] == "log":
                out.append(RangeParameterConfig(name, (min(values), max(values)), "float", scaling="log"))
            elif p["kind"] == "int":
                out.append(RangeParameterConfig(name, (min(values), max(values)), "int"))
            else:
                kind = "str" if isinstance(values[0], str) else "int"
                out.append(ChoiceParameterConfig(name, values, kind, is_ordered=p["kind"] == "ordinal"))
        return out

    def key(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """What makes two suggestions the same evaluation: their grid point and step."""
        return (self.row(params), self.step_index(params))


@cache
def load_problems(tables: Path = TABLES) -> dict[str, RealProblem]:
    """Every table in `tables`, by problem name (in build order where the names match)."""
    problems = {p.name: p for p in map(RealProblem.load, sorted(tables.glob("*.json.gz")))}
    order = ["hgb", "mlp", "svc", "svr"]
    return dict(sorted(problems.items(), key=lambda kv: (order.index(kv[0].split("-")[0]), kv[0])))
