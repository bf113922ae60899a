"""Build the real-problem tables: models trained on scikit-learn's bundled datasets over a grid.

Every grid point is fitted once per seed (a seed is a train/validation split and the
model's random state) on one thread; the table keeps the validation loss after each
step of training (boosting iterations, MLP epochs; one step for an SVM) and the fit's
cumulative wall time up to that step, so a run stopped at step t costs what it spent.

    python benchmarks/real/build.py                      # every problem, one process
    python benchmarks/real/build.py --problems svc-digits --jobs 2

Tables go to benchmarks/real/tables/<problem>.json.gz. Losses are minimised: log loss
(HGB, MLP classifiers), error rate (SVC), 1 - R^2 (regressors).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import itertools
import json
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/, run as a script
from _pool import worker_pool  # noqa: E402

TABLES = Path(__file__).resolve().parent / "tables"


@dataclass(frozen=True)
class Grid:
    """A problem's grid: parameters by name, each with its kind and values."""

    params: dict[str, dict[str, Any]]
    steps: list[int]  # training steps (iterations, epochs) at which the loss is recorded
    step_param: str | None = None  # a parameter that picks the step (HGB's max_iter), not fitted apart

    def points(self) -> list[dict[str, Any]]:
        """Every grid point; a conditional parameter only where its condition holds."""
        names = [n for n in self.params if n != self.step_param and "when" not in self.params[n]]
        out = []
        for values in itertools.product(*(self.params[n]["values"] for n in names)):
            point = dict(zip(names, values, strict=True))
            extra = [
                n
                for n, p in self.params.items()
                if "when" in p and all(point.get(k) == v for k, v in p["when"].items())
            ]
            for more in itertools.product(*(self.params[n]["values"] for n in extra)):
                out.append(point | dict(zip(extra, more, strict=True)))
        return out


@dataclass(frozen=True)
class Spec:
    """One problem: a model family on a dataset, its grid and its seeds."""

    name: str
    model: str  # hgb, mlp, svm
    dataset: str
    task: str  # classification, regression
    grid: Grid
    seeds: int = 10  # ten splits: a benchmark's ten run seeds face ten different functions
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        if self.task == "regression":
            return "1 - R^2"
        return "error rate" if self.model == "svm" else "log loss"


def _log(*values: float) -> dict[str, Any]:
    return {"kind": "log", "values": list(values)}


def _hgb_grid(max_iter: int) -> Grid:
    steps = list(range(max_iter // 10, max_iter + 1, max_iter // 10))
    return Grid(
        {
            "learning_rate": _log(0.01, 0.03, 0.1, 0.3, 1.0),
            "max_iter": {"kind": "int", "values": steps},
            "max_leaf_nodes": {"kind": "int", "values": [4, 8, 16, 31, 64]},
            "l2_regularization": _log(1e-3, 1e-1, 10.0),
            "max_bins": {"kind": "ordinal", "values": [15, 63, 255]},
        },
        steps,
        step_param="max_iter",
    )


def _mlp_grid(epochs: int) -> Grid:
    return Grid(
        {
            "width": {"kind": "ordinal", "values": [16, 64, 256]},
            "alpha": _log(1e-4, 1e-2, 1.0),
            "learning_rate_init": _log(1e-4, 1e-3, 1e-2, 1e-1),
            "activation": {"kind": "categorical", "values": ["relu", "tanh", "logistic"]},
            "batch_size": {"kind": "ordinal", "values": [32, 128, 512]},
        },
        list(range(1, epochs + 1)),
    )


def _svm_grid() -> Grid:
    return Grid(
        {
            "C": _log(*(10.0**e for e in range(-2, 4))),
            "gamma": _log(*(10.0**e for e in range(-4, 2))),
            "kernel": {"kind": "categorical", "values": ["rbf", "poly", "sigmoid"]},
            "degree": {"kind": "int", "values": [2, 3, 4], "when": {"kernel": "poly"}},
        },
        [1],
    )


SPECS = {
    s.name: s
    for s in [
        Spec("hgb-wine", "hgb", "wine", "classification", _hgb_grid(100)),
        Spec("hgb-breast-cancer", "hgb", "breast_cancer", "classification", _hgb_grid(100)),
        Spec("hgb-diabetes", "hgb", "diabetes", "regression", _hgb_grid(100)),
        Spec("mlp-digits", "mlp", "digits", "classification", _mlp_grid(15)),
        Spec("mlp-breast-cancer", "mlp", "breast_cancer", "classification", _mlp_grid(20)),
        Spec("mlp-diabetes", "mlp", "diabetes", "regression", _mlp_grid(20)),
        Spec("svc-digits", "svm", "digits", "classification", _svm_grid()),
        Spec("svc-breast-cancer", "svm", "breast_cancer", "classification", _svm_grid()),
        Spec("svr-diabetes", "svm", "diabetes", "regression", _svm_grid()),
    ]
}


# -- one fit -------------------------------------------------------------------------------------

_DATA: dict[tuple[str, int], tuple[np.ndarray, ...]] = {}


def _split(spec: Spec, seed: int) -> tuple[np.ndarray, ...]:
    """Train/validation split `seed` (3/4, 1/4; stratified for classes); features standardised."""
    key = (spec.dataset, seed)
    if key not in _DATA:
        from sklearn import datasets
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        x, y = getattr(datasets, f"load_{spec.dataset}")(return_X_y=True)
        strat = y if spec.task == "classification" else None
        xt, xv, yt, yv = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=strat)
        scaler = StandardScaler().fit(xt)
        xt, xv = scaler.transform(xt), scaler.transform(xv)
        if spec.task == "regression":
            mu, sd = yt.mean(), yt.std()
            yt, yv = (yt - mu) / sd, (yv - mu) / sd
        _DATA[key] = (xt, xv, yt, yv)
    return _DATA[key]


def _loss(spec: Spec, model: Any, xv: np.ndarray, yv: np.ndarray, classes: np.ndarray) -> float:
    from sklearn.metrics import log_loss, r2_score

    if spec.task == "regression":
        pred = model.predict(xv)
        value = 1.0 - r2_score(yv, pred) if np.all(np.isfinite(pred)) else np.inf
        cap = 3.0
    elif spec.model == "svm":
        value, cap = float(np.mean(model.predict(xv) != yv)), 1.0
    else:
        proba = model.predict_proba(xv)
        value = log_loss(yv, proba, labels=classes) if np.all(np.isfinite(proba)) else np.inf
        cap = 3.0 * np.log(len(classes))  # three times the loss of a uniform guess
    return float(min(value, cap)) if np.isfinite(value) else float(cap)


def _fit_hgb(spec: Spec, point: dict[str, Any], seed: int) -> tuple[list[float], list[float]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    xt, xv, yt, yv = _split(spec, seed)
    cls = HistGradientBoostingRegressor if spec.task == "regression" else HistGradientBoostingClassifier
    model = cls(**point, early_stopping=False, warm_start=True, random_state=seed)
    losses, costs, spent = [], [], 0.0
    for step in spec.grid.steps:
        model.set_params(max_iter=step)
        start = time.perf_counter()
        model.fit(xt, yt)
        spent += time.perf_counter() - start
        losses.append(_loss(spec, model, xv, yv, np.unique(yt)))
        costs.append(spent)
    return losses, costs


def _fit_mlp(spec: Spec, point: dict[str, Any], seed: int) -> tuple[list[float], list[float]]:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    xt, xv, yt, yv = _split(spec, seed)
    classes = np.unique(yt)
    cls = MLPRegressor if spec.task == "regression" else MLPClassifier
    model = cls(
        hidden_layer_sizes=(point["width"],),
        alpha=point["alpha"],
        learning_rate_init=point["learning_rate_init"],
        activation=point["activation"],
        batch_size=point["batch_size"],
        random_state=seed,
    )
    losses, costs, spent = [], [], 0.0
    for _ in spec.grid.steps:
        start = time.perf_counter()
        if spec.task == "regression":
            model.partial_fit(xt, yt)
        else:
            model.partial_fit(xt, yt, classes=classes)
        spent += time.perf_counter() - start
        losses.append(_loss(spec, model, xv, yv, classes))
        costs.append(spent)
    return losses, costs


def _fit_svm(spec: Spec, point: dict[str, Any], seed: int) -> tuple[list[float], list[float]]:
    from sklearn.svm import SVC, SVR

    xt, xv, yt, yv = _split(spec, seed)
    cls = SVR if spec.task == "regression" else SVC
    model = cls(**point, max_iter=20_000, cache_size=100)
    if spec.task != "regression":
        model.set_params(random_state=seed)
    start = time.perf_counter()
    model.fit(xt, yt)
    spent = time.perf_counter() - start
    return [_loss(spec, model, xv, yv, np.unique(yt))], [spent]


FITS: dict[str, Callable[[Spec, dict[str, Any], int], tuple[list[float], list[float]]]] = {
    "hgb": _fit_hgb,
    "mlp": _fit_mlp,
    "svm": _fit_svm,
}


def fit_point(task: tuple[str, int, int]) -> tuple[tuple[str, int, int], list[float], list[float]]:
    """Fit one grid point of one problem for one seed, on one thread."""
    from threadpoolctl import threadpool_limits

    name, index, seed = task
    spec = SPECS[name]
    point = spec.grid.points()[index]
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        losses, costs = FITS[spec.model](spec, point, seed)
    return task, losses, costs


# -- the table -----------------------------------------------------------------------------------


def _sig(x: float) -> float:
    return float(f"{x:.4g}")


def table(spec: Spec, fitted: dict[tuple[int, int], tuple[list[float], list[float]]]) -> dict[str, Any]:
    """The JSON table of one problem: grid, points (as value indices; -1 = inactive), curves."""
    points = spec.grid.points()
    names = [n for n in spec.grid.params if n != spec.grid.step_param]
    index = [[spec.grid.params[n]["values"].index(p[n]) if n in p else -1 for n in names] for p in points]
    return {
        "name": spec.name,
        "model": spec.model,
        "dataset": spec.dataset,
        "task": spec.task,
        "metric": spec.metric,
        "params": spec.grid.params,
        "step_param": spec.grid.step_param,
        "steps": spec.grid.steps,
        "seeds": spec.seeds,
        "names": names,
        "points": index,
        # loss[point][seed][step] and cumulative seconds cost[point][seed][step]
        "loss": [
            [[_sig(v) for v in fitted[(i, s)][0]] for s in range(spec.seeds)] for i in range(len(points))
        ],
        "cost": [
            [[_sig(v) for v in fitted[(i, s)][1]] for s in range(spec.seeds)] for i in range(len(points))
        ],
    }


def write_table(path: Path, data: dict[str, Any]) -> None:
    """Write a table whole or not at all: a build stopped mid-write leaves the table before it."""
    from sweepwise.app.transfer.export import write_atomically

    def dump(tmp: Path) -> None:
        with gzip.open(tmp, "wt", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"))

    write_atomically(path, dump)


def build(names: list[str], jobs: int, limit: int | None = None, out: Path = TABLES) -> dict[str, float]:
    """Fit every point of the named problems and write each table once its fits are in;
    the seconds of fitting per problem."""
    tasks = [
        (name, i, s)
        for name in names
        for i in range(len(SPECS[name].grid.points()) if limit is None else limit)
        for s in range(SPECS[name].seeds)
    ]
    fitted: dict[str, dict[tuple[int, int], tuple[list[float], list[float]]]] = {n: {} for n in names}
    fits_of = Counter(name for name, _, _ in tasks)
    start = time.time()
    seconds: dict[str, float] = {}
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if jobs > 1:
            pool = stack.enter_context(worker_pool(jobs))
            done_iter = pool.imap_unordered(fit_point, tasks, chunksize=4)
        else:
            done_iter = map(fit_point, tasks)
        for done, ((name, i, s), losses, costs) in enumerate(done_iter, 1):
            fitted[name][(i, s)] = (losses, costs)
            if len(fitted[name]) == fits_of[name]:
                seconds[name] = sum(c[-1] for _, c in fitted[name].values())
                if limit is None:  # a trial run (limit) is timed, not written
                    write_table(out / f"{name}.json.gz", table(SPECS[name], fitted[name]))
            if done % 50 == 0 or done == len(tasks):
                progress = f"\r{done}/{len(tasks)} fits, {time.time() - start:.0f} s"
                print(progress, end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", default=",".join(SPECS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="fit only the first N points; write nothing")
    parser.add_argument("--out", type=Path, default=TABLES, help="where the tables go (default: %(default)s)")
    args = parser.parse_args(argv)
    names = args.problems.split(",")
    for name in names:
        if name not in SPECS:
            parser.error(f"unknown problem {name!r}; choose from {', '.join(SPECS)}")
    seconds = build(names, args.jobs, args.limit, args.out)
    for name, secs in seconds.items():
        n = args.limit or len(SPECS[name].grid.points())
        print(f"{name}: {n} points x {SPECS[name].seeds} seeds, {secs:.1f} s of fitting")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
