"""Optimizer benchmark: sweepwise's optimizers against Optuna and Ax, in the same run.

For every problem (Branin 30 evaluations; Hartmann-6, Rosenbrock-4, shifted Ackley-5
and a cost-aware training problem 60 each), mode (sequential; batches of 4) and seed,
each optimizer minimises the problem; the table gives the median and inter-quartile
range of the final log10 simple regret, the cumulative cost each needs to reach the
best peer's median score on the cost-aware problem, and seconds per suggestion.

    pip install -e '.[bench]'        # optuna, ax-platform (install torch==2.13.0 first)
    python benchmarks/optimizers.py --seeds 10 --workers 2 --out benchmarks/results/optimizers.json

`--suite real` runs Protein, random, Optuna TPE, Optuna GPSampler and Ax on models
trained on scikit-learn's bundled datasets (look-ups in benchmarks/real/tables; rebuilt
by benchmarks/real/build.py) and prints the median final regret, the median fit seconds
to reach the best peer's median final regret, and the issue's targets for Protein, with
how often each target holds when the seeds are drawn again (`verdict_odds`).
`--suite curves` spends a budget of training steps on the same tables' learning curves,
with and without Optuna's successive halving (benchmarks/real/curves.py).

    python benchmarks/optimizers.py --suite real --seeds 10 --workers 2
    python benchmarks/optimizers.py --suite curves --seeds 10 --workers 2

Every process runs its numeric libraries on one thread, so the workers do not fight
over cores and the seconds per suggestion are comparable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from problems import PROBLEMS, Problem  # noqa: E402
from real.problems import RealProblem, load_problems  # noqa: E402

SWEEPWISE = {
    "protein": {"type": "protein"},
    "protein-ei": {"type": "protein", "acquisition_fn": "ei"},
    "protein-ucb": {"type": "protein", "acquisition_fn": "ucb"},
    "protein-naive": {"type": "protein", "acquisition_fn": "naive"},
    # the same search on every kind of space: the `auto` settings at their continuous values
    "protein-fixed": {
        "type": "protein",
        "cost_penalty": None,
        "ei_margin": 0.0,
        "hyper_draws": 0,
        "random_suggestions": 512,
        "suggestions_per_pareto": 128,
    },
    "random": {"type": "random"},
    "sobol": {"type": "sobol"},
}
# variants measured on the real tables (benchmarks/results/real.md): run when named
OPT_IN = ("protein-fixed",)
PEERS = ["optuna-tpe", "optuna-gp", "ax"]
REAL = ["protein", "random", *PEERS]  # the optimizers of --suite real
TARGET_NAMES = ("protein", "optuna-tpe", "optuna-gp")  # the optimizers Protein's targets compare
_RESAMPLES = 1000  # bootstrap draws of the seeds behind `verdict_odds`
BATCH = 4
AnyProblem = Problem | RealProblem
Task = tuple[str, str, str, int]  # optimizer, problem, mode, seed
Results = dict[Task, dict[str, Any]]


# -- one optimizer on one problem -------------------------------------------------------------


def _vector(problem: Problem, params: dict[str, Any]) -> np.ndarray:
    return np.array([float(params[f"x{i}"]) for i in range(problem.dim)])


def _problem(name: str, budget_scale: float = 1.0) -> AnyProblem:
    """A synthetic problem by name, else a real one (its budget scaled)."""
    if name in PROBLEMS:
        return PROBLEMS[name]
    return load_problems()[name].scaled(budget_scale)


class _Run:
    """Bookkeeping of one run: best-so-far regret and cumulative cost after each evaluation."""

    def __init__(self, problem: AnyProblem, seed: int = 0) -> None:
        self.problem = problem
        self.seed = seed
        self.regret: list[float] = []
        self.cost: list[float] = []
        self.seconds = 0.0
        self.suggestions = 0
        self.duplicates = 0

    def record(self, params: dict[str, Any]) -> tuple[float, float]:
        if isinstance(self.problem, RealProblem):
            value, cost = self.problem.evaluate(params, self.seed)
            regret = self.problem.regret(value, self.seed)
        else:
            value, cost = self.problem.evaluate(_vector(self.problem, params))
            regret = self.problem.regret(value)
        best = min(self.regret[-1], regret) if self.regret else regret
        self.regret.append(best)
        self.cost.append((self.cost[-1] if self.cost else 0.0) + cost)
        return value, cost

    def batch_duplicates(self, batch: list[dict[str, Any]]) -> None:
        problem = self.problem
        if isinstance(problem, RealProblem):
            keys = {problem.key(p) for p in batch}
        else:
            keys = {tuple(round(float(p[f"x{i}"]), 9) for i in range(problem.dim)) for p in batch}
        self.duplicates += len(batch) - len(keys)

    def result(self) -> dict[str, Any]:
        log = not isinstance(self.problem, RealProblem)
        return {
            "regret": [float(np.log10(r)) if log else r for r in self.regret],
            "cost": self.cost,
            "seconds_per_suggestion": self.seconds / max(self.suggestions, 1),
            "duplicates": self.duplicates,
        }


def run_sweepwise(name: str, problem: AnyProblem, batch: int, seed: int) -> dict[str, Any]:
    from sweepwise.core.models import Observation
    from sweepwise.optimizers import OptimizerSpec, make_optimizer
    from sweepwise.space import SearchSpace

    optimizer = make_optimizer(
        OptimizerSpec(**SWEEPWISE[name], seed=seed),
        SearchSpace.from_dict(problem.parameters()),
        goal="minimize",
    )
    run, observations = _Run(problem, seed), []
    while len(observations) < problem.budget:
        k = min(batch, problem.budget - len(observations))
        start = time.perf_counter()
        suggestions = optimizer.suggest(observations, k)
        run.seconds += time.perf_counter() - start
        run.suggestions += k
        run.batch_duplicates(suggestions)
        for params in suggestions:
            value, cost = run.record(params)
            observations.append(Observation(value, cost, params))
    return run.result()


def run_optuna(name: str, problem: AnyProblem, batch: int, seed: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if name == "optuna-tpe"
        else optuna.samplers.GPSampler(seed=seed)
    )
    study = optuna.create_study(direction="minimize", sampler=sampler)
    run = _Run(problem, seed)
    while len(run.regret) < problem.budget:
        k = min(batch, problem.budget - len(run.regret))
        start = time.perf_counter()
        trials = [study.ask() for _ in range(k)]
        batch_params = [_optuna_params(problem, trial) for trial in trials]
        run.seconds += time.perf_counter() - start
        run.suggestions += k
        run.batch_duplicates(batch_params)
        for trial, params in zip(trials, batch_params, strict=True):
            study.tell(trial, run.record(params)[0])
    return run.result()


def _optuna_params(problem: AnyProblem, trial: Any) -> dict[str, Any]:
    if isinstance(problem, RealProblem):
        return problem.optuna_params(trial)
    params = {}
    for i, (lo, hi) in enumerate(problem.bounds):
        if problem.kind(i) == "pow2":
            params[f"x{i}"] = 2 ** trial.suggest_int(f"x{i}", int(np.log2(lo)), int(np.log2(hi)))
        else:
            params[f"x{i}"] = trial.suggest_float(f"x{i}", lo, hi)
    return params


def run_ax(name: str, problem: AnyProblem, batch: int, seed: int) -> dict[str, Any]:
    import torch
    from ax import Client, RangeParameterConfig

    torch.set_num_threads(1)
    _quiet_ax()
    client = Client(random_seed=seed)
    parameters = []
    if isinstance(problem, RealProblem):
        parameters = problem.ax_parameters()
    else:
        for i, (lo, hi) in enumerate(problem.bounds):
            if problem.kind(i) == "pow2":
                parameters.append(RangeParameterConfig(f"x{i}", (int(np.log2(lo)), int(np.log2(hi))), "int"))
            else:
                parameters.append(RangeParameterConfig(f"x{i}", (lo, hi), "float"))
    client.configure_experiment(parameters=parameters)
    client.configure_optimization(objective="-value")
    run = _Run(problem, seed)
    while len(run.regret) < problem.budget:
        k = min(batch, problem.budget - len(run.regret))
        start = time.perf_counter()
        trials = client.get_next_trials(max_trials=k)
        run.seconds += time.perf_counter() - start
        run.suggestions += len(trials)
        batch_params = [_from_ax(problem, p) for p in trials.values()]
        run.batch_duplicates(batch_params)
        for index, params in zip(trials, batch_params, strict=True):
            client.complete_trial(trial_index=index, raw_data={"value": run.record(params)[0]})
    return run.result()


def _quiet_ax() -> None:
    """Keep Ax's per-trial INFO lines off stderr, where they would bury the progress line.

    Ax sets a level on each of its module loggers, so the parent's level does not reach them;
    its stream handler's level does."""
    import logging

    from ax.utils.common.logger import set_stderr_log_level

    set_stderr_log_level(logging.ERROR)


def _from_ax(problem: AnyProblem, p: dict[str, Any]) -> dict[str, Any]:
    if isinstance(problem, RealProblem):
        return dict(p)
    return {
        f"x{i}": (2 ** p[f"x{i}"] if problem.kind(i) == "pow2" else p[f"x{i}"]) for i in range(problem.dim)
    }


def run_task(task: Task, budget_scale: float = 1.0) -> tuple[Task, dict[str, Any]]:
    name, problem_name, mode, seed = task
    problem = _problem(problem_name, budget_scale)
    batch = 1 if mode == "seq" else BATCH
    runner: Callable[..., dict[str, Any]]
    if name in SWEEPWISE:
        runner = run_sweepwise
    elif name.startswith("optuna"):
        runner = run_optuna
    else:
        runner = run_ax
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return task, runner(name, problem, batch, seed)


# -- time per suggestion at 100 observations in 6 dimensions ----------------------------------------


def time_10d_pending(repeats: int = 5) -> dict[str, float]:
    """Seconds for one suggestion at 100 observations in 10 dimensions with 4 pending (median).

    Protein is given the 4 pending suggestions; Optuna's GPSampler holds 4 running trials.
    """
    import warnings

    from sweepwise.core.models import Observation
    from sweepwise.optimizers import OptimizerSpec, make_optimizer
    from sweepwise.space import SearchSpace

    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1, (104, 10))
    values = [float(np.sum((p - 0.3) ** 2)) for p in points]
    names = [f"x{i}" for i in range(10)]
    params = [dict(zip(names, map(float, p), strict=True)) for p in points]
    observations = [Observation(v, 1.0, q) for q, v in zip(params[:100], values[:100], strict=True)]
    space = {name: {"distribution": "uniform", "min": 0.0, "max": 1.0} for name in names}
    optimizer = make_optimizer(
        OptimizerSpec(type="protein", seed=0), SearchSpace.from_dict(space), goal="minimize"
    )
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        optimizer.suggest(observations, 1, pending=params[100:])
        times.append(time.perf_counter() - start)
    out = {"protein": float(np.median(times))}
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        distributions = {name: optuna.distributions.FloatDistribution(0.0, 1.0) for name in names}
        times = []
        for _ in range(repeats):
            study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0))
            for q, v in zip(params[:100], values[:100], strict=True):
                study.add_trial(optuna.trial.create_trial(params=q, distributions=distributions, value=v))
            for _ in range(4):  # running trials
                trial = study.ask()
                for name in names:
                    trial.suggest_float(name, 0.0, 1.0)
            start = time.perf_counter()
            trial = study.ask()
            for name in names:
                trial.suggest_float(name, 0.0, 1.0)
            times.append(time.perf_counter() - start)
    out["optuna-gp"] = float(np.median(times))
    return out


def _spin(stop: Any) -> None:
    while not stop.is_set():
        sum(range(10_000))


@contextlib.contextmanager
def busy_cores() -> Iterator[None]:
    """Every core kept busy by a spinning process meanwhile, as a local sweep's jobs keep them."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    spinners = [context.Process(target=_spin, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 1)]
    for process in spinners:
        process.start()
    try:
        time.sleep(1.0)  # the spinners running before the clock starts
        yield
    finally:
        stop.set()
        for process in spinners:
            process.join(10)


def time_at_100(repeats: int = 5) -> dict[str, float]:
    """Seconds for one suggestion given 100 observations of Hartmann-6 (median of `repeats`)."""
    import warnings

    from sweepwise.core.models import Observation
    from sweepwise.optimizers import OptimizerSpec, make_optimizer
    from sweepwise.space import SearchSpace

    problem = PROBLEMS["hartmann6"]
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1, (100, 6))
    values = [problem.fn(p) for p in points]
    observations = [
        Observation(v, 1.0, {f"x{i}": float(p[i]) for i in range(6)})
        for p, v in zip(points, values, strict=True)
    ]
    out = {}
    for name in ("protein", "protein-ei", "protein-ucb", "protein-naive"):
        optimizer = make_optimizer(
            OptimizerSpec(**SWEEPWISE[name], seed=0),
            SearchSpace.from_dict(problem.parameters()),
            goal="minimize",
        )
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            optimizer.suggest(observations, 1)
            times.append(time.perf_counter() - start)
        out[name] = float(np.median(times))
    import torch
    from ax import Client, RangeParameterConfig

    torch.set_num_threads(1)
    _quiet_ax()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = Client(random_seed=0)
        client.configure_experiment(
            parameters=[RangeParameterConfig(f"x{i}", (0.0, 1.0), "float") for i in range(6)]
        )
        client.configure_optimization(objective="-value")
        for obs in observations:
            index = client.attach_trial(parameters=obs.suggestion)
            client.complete_trial(trial_index=index, raw_data={"value": obs.score})
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            trials = client.get_next_trials(max_trials=1)
            times.append(time.perf_counter() - start)
            for index in trials:
                client.mark_trial_abandoned(trial_index=index)
        out["ax"] = float(np.median(times))
    return out


# -- the table -----------------------------------------------------------------------------------


# Two runs on different splits that end at the same grid point's loss gap can get regrets a
# rounding error apart (0.0038 as 0.003799999999999998 and 0.0038000000000000256): a regret
# this close to a target reaches it, in every table (docs/optimizers.md, "Benchmarks").
_ROUNDING = 1e-12


def reaches(regret: Any, target: float) -> Any:
    """Whether a regret (or an array of them) reaches `target`, rounding errors forgiven."""
    return regret <= target + _ROUNDING


def cost_to_reach(results: Results, cell: tuple[str, str, str], target: float) -> list[float]:
    """Per seed of a cell (optimizer, problem, mode): the cumulative cost at which the
    best-so-far regret first reaches `target` (inf when it never does)."""
    spent = []
    for k, r in results.items():
        if k[:3] != cell:
            continue
        hit = next(
            (c for g, c in zip(r["regret"], r["cost"], strict=True) if reaches(g, target)), float("inf")
        )
        spent.append(hit)
    return spent


def final_regrets(results: Results, cell: tuple[str, str, str]) -> list[float]:
    """Per seed of a cell (optimizer, problem, mode): the final best-so-far regret."""
    return list(_finals_by_seed(results, cell).values())


def _finals_by_seed(results: Results, cell: tuple[str, str, str]) -> dict[int, float]:
    """The final best-so-far regret of a cell (optimizer, problem, mode), by seed."""
    return {k[3]: r["regret"][-1] for k, r in results.items() if k[:3] == cell}


def summarise(results: Results, timing: dict[str, float]) -> str:
    names = sorted({k[0] for k in results}, key=lambda n: (n not in SWEEPWISE, n))
    problems = [p for p in PROBLEMS if any(k[1] == p for k in results)]
    modes = [m for m in ("seq", "batch") if any(k[2] == m for k in results)]
    lines = ["## Final log10 simple regret: median [IQR] over seeds (lower is better)", ""]
    lines.append("| optimizer | " + " | ".join(f"{p} {m}" for p in problems for m in modes) + " |")
    lines.append("| --- " * (1 + len(problems) * len(modes)) + "|")
    medians: dict[tuple[str, str, str], float] = {}
    for name in names:
        cells = []
        for p in problems:
            for m in modes:
                finals = final_regrets(results, (name, p, m))
                if not finals:
                    cells.append("—")
                    continue
                q1, med, q3 = np.percentile(finals, [25, 50, 75])
                medians[(name, p, m)] = float(med)
                cells.append(f"{med:.2f} [{q1:.2f}, {q3:.2f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Protein against the peers", ""]
    peers = [n for n in names if n not in SWEEPWISE]
    wins = cells_total = 0
    for p in problems:
        for m in modes:
            if ("protein", p, m) not in medians or not peers:
                continue
            ours = medians[("protein", p, m)]
            tpe = medians.get(("optuna-tpe", p, m), float("inf"))
            best_peer = min(medians.get((n, p, m), float("inf")) for n in peers)
            cells_total += 1
            wins += ours <= best_peer
            lines.append(
                f"- {p} {m}: protein {ours:.2f}, TPE {tpe:.2f} ({'ok' if ours <= tpe else 'WORSE'}), "
                f"best peer {best_peer:.2f} ({'at or below' if ours <= best_peer else 'above'})"
            )
    lines.append(f"- at or below the best peer in {wins} of {cells_total} cells")
    if "training" in problems:
        lines += [
            "",
            "## Cost-aware problem: cumulative cost to reach the best peer's median final score",
            "",
        ]
        for m in modes:
            peer_scores = {n: medians[(n, "training", m)] for n in peers if (n, "training", m) in medians}
            if not peer_scores:
                continue
            best = min(peer_scores, key=lambda n: peer_scores[n])
            target = peer_scores[best]
            peer_cost = float(
                np.median([r["cost"][-1] for k, r in results.items() if k[:3] == (best, "training", m)])
            )
            lines.append(f"{m}: target log10 regret {target:.2f} ({best}, total cost {peer_cost:,.0f})")
            lines.append("")
            lines.append(
                "| optimizer | median cost to reach target | seeds reaching it | / peer's total cost |"
            )
            lines.append("| --- | --- | --- | --- |")
            for name in names:
                spent = cost_to_reach(results, (name, "training", m), target)
                if spent:
                    med = float(np.median(spent))
                    reached = sum(np.isfinite(spent))
                    ratio = f"{med / peer_cost:.2f}" if np.isfinite(med) else "—"
                    lines.append(f"| {name} | {med:,.0f} | {reached}/{len(spent)} | {ratio} |")
            lines.append("")
    lines += ["## Seconds per suggestion (mean over a run)", ""]
    lines.append("| optimizer | " + " | ".join(f"{p} {m}" for p in problems for m in modes) + " |")
    lines.append("| --- " * (1 + len(problems) * len(modes)) + "|")
    for name in names:
        cells = []
        for p in problems:
            for m in modes:
                secs = [r["seconds_per_suggestion"] for k, r in results.items() if k[:3] == (name, p, m)]
                cells.append(f"{np.mean(secs):.4f}" if secs else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    duplicates = sum(
        r["duplicates"] for k, r in results.items() if k[0].startswith("protein") and k[2] == "batch"
    )
    lines += ["", f"Duplicate suggestions within a batch (protein, all batch runs): {duplicates}"]
    if timing:
        lines += ["", "## One suggestion at 100 observations, 6 dimensions (Hartmann-6)", ""]
        for name, secs in timing.items():
            lines.append(f"- {name}: {secs:.3f} s")
        if "ax" in timing and "protein" in timing:
            lines.append(f"- protein / ax: {timing['protein'] / timing['ax']:.3f}")
    return "\n".join(lines)


def summarise_real(results: Results) -> str:
    """The real suite's tables: final regret, cost to reach the best peer's score, the targets."""
    names = [n for n in REAL if any(k[0] == n for k in results)]
    names += sorted({k[0] for k in results} - set(names))
    problems = [p for p in load_problems() if any(k[1] == p for k in results)]
    modes = [m for m in ("seq", "batch") if any(k[2] == m for k in results)]
    cells = [(p, m) for p in problems for m in modes]
    header = ["| problem | mode | " + " | ".join(names) + " |", "| --- " * (2 + len(names)) + "|"]
    lines = [
        "## Final regret (validation loss above the table's best): median [IQR] over seeds",
        "",
        *header,
    ]
    medians: dict[tuple[str, str, str], float] = {}
    for p, m in cells:
        row = []
        for name in names:
            finals = final_regrets(results, (name, p, m))
            if not finals:
                row.append("—")
                continue
            q1, med, q3 = np.percentile(finals, [25, 50, 75])
            medians[(name, p, m)] = float(med)
            row.append(f"{med:.4f} [{q1:.4f}, {q3:.4f}]")
        lines.append(f"| {p} | {m} | " + " | ".join(row) + " |")
    lines += [
        "",
        "## Median cost (fit seconds) to reach the best peer's median final regret [seeds reaching it]",
        "",
        *header,
    ]
    peers = [n for n in names if n in PEERS]
    costs: dict[tuple[str, str, str], float] = {}
    targets_by_cell: dict[tuple[str, str], float] = {}
    for p, m in cells:
        targets = [medians[(n, p, m)] for n in peers if (n, p, m) in medians]
        if not targets:
            continue
        target, row = min(targets), []
        targets_by_cell[(p, m)] = target
        for name in names:
            spent = cost_to_reach(results, (name, p, m), target)
            med = float(np.median(spent)) if spent else float("inf")
            costs[(name, p, m)] = med
            row.append(f"{med:.2f} [{sum(np.isfinite(spent))}/{len(spent)}]" if spent else "—")
        lines.append(f"| {p} | {m} | " + " | ".join(row) + " |")
    lines += ["", "## Protein against the issue's targets", ""]
    for m in modes:
        ps = [p for p in problems if ("protein", p, m) in medians]
        if not ps or not set(TARGET_NAMES) <= set(names):
            continue
        verdicts = {
            p: _meets_targets(
                {n: medians[(n, p, m)] for n in TARGET_NAMES},
                {n: costs.get((n, p, m), np.inf) for n in TARGET_NAMES},
            )
            for p in ps
        }
        regret_ok = [p for p in ps if verdicts[p][0]]
        cost_ok = [p for p in ps if verdicts[p][1]]
        need_regret, need_cost = _needed(len(ps))
        lines.append(
            f"- {m}: regret at or below TPE and GP on {len(regret_ok)} of {len(ps)} problems "
            f"(target {need_regret}: {'met' if len(regret_ok) >= need_regret else 'NOT met'}); "
            f"target reached at <= 3/4 of the cheaper of TPE's and GP's cost on {len(cost_ok)} of {len(ps)} "
            f"(target {need_cost}: {'met' if len(cost_ok) >= need_cost else 'NOT met'})"
        )
        missed = sorted(set(ps) - set(regret_ok))
        if missed:
            lines.append(f"  - regret above TPE or GP: {', '.join(missed)}")
        odds = verdict_odds(results, [(p, m) for p in ps], [n for n in names if n == "protein" or n in peers])
        if odds is not None:
            lines.append(
                f"  - over {_RESAMPLES} resamples of the seeds (drawn with replacement, the same draw for "
                f"every optimizer): the regret target met in {odds[0]:.0%} of them, the cost target in "
                f"{odds[1]:.0%}"
            )
    lines += ["", *seed_by_seed(results, cells, names)]
    splits = by_table_seed(results, targets_by_cell, names)
    lines += ["", *splits] if splits else []
    return "\n".join(lines)


def _meets_targets(median: dict[str, float], cost: dict[str, float]) -> tuple[bool, bool]:
    """Protein's two targets on one cell: final regret at or below TPE's and GP's, and the cost
    to reach the best peer's median at most 3/4 of the cheaper of theirs (by optimizer name)."""
    regret = reaches(median["protein"], min(median["optuna-tpe"], median["optuna-gp"]))
    cheaper = min(cost["optuna-tpe"], cost["optuna-gp"])
    return regret, math.isfinite(cost["protein"]) and cost["protein"] <= 0.75 * cheaper


def _needed(problems: int) -> tuple[int, int]:
    """How many problems must meet the regret target (7 of 8) and the cost target (6 of 8)."""
    return math.ceil(7 / 8 * problems), math.ceil(6 / 8 * problems)


def verdict_odds(
    results: Results, cells: list[tuple[str, str]], names: list[str], rounds: int = _RESAMPLES
) -> tuple[float, float] | None:
    """How often Protein meets the issue's regret and cost targets when the seeds are drawn again.

    Each round draws as many seeds as were run, with replacement, the same draw for every
    optimizer and problem (a seed number is a train/validation split, the same function for
    all of them), and judges the cells as `summarise_real` does: the fraction of rounds in
    which the regret target holds, and the cost target. A verdict met in half the rounds is
    one the seeds decide, not the optimizers. None without Protein, TPE and GP on the cells.
    """
    if not set(TARGET_NAMES) <= set(names):
        return None
    peers = [n for n in names if n in PEERS]
    seeds = sorted(
        set.intersection(*(set(_finals_by_seed(results, (n, p, m))) for p, m in cells for n in names))
    )
    if len(seeds) < 2:
        return None
    curves: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
    for p, m in cells:
        for n in names:
            runs = [results[(n, p, m, s)] for s in seeds]
            width = max(len(r["regret"]) for r in runs)
            pad = [
                (
                    r["regret"] + r["regret"][-1:] * (width - len(r["regret"])),
                    r["cost"] + r["cost"][-1:] * (width - len(r["cost"])),
                )
                for r in runs
            ]
            curves[(n, p, m)] = (np.array([a for a, _ in pad]), np.array([b for _, b in pad]))
    need_regret, need_cost = _needed(len(cells))
    rng = np.random.default_rng(0)
    met = np.zeros(2)
    for _ in range(rounds):
        draw = rng.integers(0, len(seeds), len(seeds))
        regret_ok = cost_ok = 0
        for p, m in cells:
            regret = {n: curves[(n, p, m)][0][draw] for n in names}
            medians = {n: float(np.median(regret[n][:, -1])) for n in names}
            target = min(medians[n] for n in peers)
            spent = {}
            for n in TARGET_NAMES:
                reached = reaches(regret[n], target)
                first = reached.argmax(axis=1)
                cost = np.where(reached.any(axis=1), curves[(n, p, m)][1][draw, first], np.inf)
                spent[n] = float(np.median(cost))
            regret_met, cost_met = _meets_targets(medians, spent)
            regret_ok += regret_met
            cost_ok += cost_met
        met += (regret_ok >= need_regret, cost_ok >= need_cost)
    return float(met[0] / rounds), float(met[1] / rounds)


def by_table_seed(results: Results, targets: dict[tuple[str, str], float], names: list[str]) -> list[str]:
    """How many runs reach the cost table's target, split by the table seed they faced.

    A table holds ten train/validation splits (its seeds); run seed s faces split s mod 10,
    so thirty runs face each function three times. A cost cell needs more than half its runs
    to reach the target: this shows on which splits they were won or lost. Nothing when no
    split was faced twice (then it says no more than the seeds themselves).
    """
    problems = load_problems()
    seeds_run = {k[3] for k in results}
    if all(len(seeds_run) <= problems[p].seeds for p, _ in targets):
        return []
    lines = [
        "## Runs reaching the best peer's median final regret, by table seed "
        "(the split run seed s faces: s mod the table's seeds)",
        "",
        "| problem | mode | " + " | ".join(names) + " |",
        "| --- " * (2 + len(names)) + "|",
    ]
    for (p, m), target in targets.items():
        splits = problems[p].seeds
        row = []
        for name in names:
            finals = _finals_by_seed(results, (name, p, m))
            parts = []
            for t in range(splits):
                mine = [r for s, r in finals.items() if s % splits == t]
                if mine:
                    parts.append(f"{sum(reaches(r, target) for r in mine)}/{len(mine)}")
            row.append(" · ".join(parts) if parts else "—")
        lines.append(f"| {p} | {m} | " + " | ".join(row) + " |")
    return lines


def seed_by_seed(results: Results, cells: list[tuple[str, str]], names: list[str]) -> list[str]:
    """Protein against each other optimizer on the same seeds: wins/losses and mean final regret.

    Runs of the same seed number share the table's train/validation split, so they face the
    same function. Where a few seeds decide a median (the final regrets cluster on a handful
    of grid points), this shows which optimizer is ahead seed for seed.
    """
    others = [n for n in names if n != "protein"]
    lines = [
        "## Protein against each optimizer, seed by seed: the seeds where Protein ends lower/higher; "
        "mean final regret (a peer's over the seeds both ran)",
        "",
        "| problem | mode | protein | " + " | ".join(others) + " |",
        "| --- " * (3 + len(others)) + "|",
    ]
    for p, m in cells:
        mine = _finals_by_seed(results, ("protein", p, m))
        if not mine:
            continue
        row = [f"{np.mean(list(mine.values())):.4f}"]
        for name in others:
            theirs = _finals_by_seed(results, (name, p, m))
            seeds = sorted(mine.keys() & theirs.keys())
            if not seeds:
                row.append("—")
                continue
            wins = sum(mine[s] < theirs[s] - _ROUNDING for s in seeds)
            losses = sum(mine[s] > theirs[s] + _ROUNDING for s in seeds)
            row.append(f"{wins}/{losses}; {np.mean([theirs[s] for s in seeds]):.4f}")
        lines.append(f"| {p} | {m} | " + " | ".join(row) + " |")
    return lines


def save_results(path: Path, results: Results, timing: dict[str, float] | None = None) -> None:
    """Write every run's trace as JSON (atomically: a killed run leaves the last whole file).

    A write that fails (a full disk, a folder not writable) exits with one line; the file
    keeps the runs of the last write that succeeded, and a rerun resumes from them.
    """
    from sweepwise.app.transfer.export import write_atomically

    text = json.dumps({"|".join(map(str, k)): v for k, v in results.items()} | {"timing": timing or {}})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda tmp: tmp.write_text(text))
    except OSError as exc:
        raise SystemExit(
            f"--out {path}: cannot write it ({exc.strerror or exc}); it keeps the runs saved before, "
            "and the same command resumes from them once there is room"
        ) from None


def load_results(path: Path) -> Results:
    """The runs a `save_results` file holds (its timing left out)."""
    data = json.loads(path.read_text())
    data.pop("timing", None)
    out: Results = {}
    for key, value in data.items():
        name, problem, mode, seed = key.split("|")
        out[(name, problem, mode, int(seed))] = value
    return out


def run_all(
    runner: Callable[..., tuple[Task, dict[str, Any]]],
    tasks: list[Task],
    workers: int,
    checkpoint: Path | None = None,
    **options: Any,
) -> Results:
    """Run every task (in a pool of `workers` processes when above 1), printing progress.

    With `checkpoint`, the runs done so far are saved there after each one, and runs the
    file already holds are not run again: an interrupted benchmark resumes where it stopped.
    The file keeps the runs it holds outside `tasks` too (another selection of optimizers,
    problems or seeds run on the same file); the runs returned are those of `tasks`.
    Stopped by SIGTERM, it ends its workers before it exits (exit code 143, with or without them).
    """
    import functools

    results: Results = {}
    others: Results = {}
    if checkpoint is not None and checkpoint.exists():
        done_before = load_results(checkpoint)
        wanted = set(tasks)
        results = {task: done_before[task] for task in tasks if task in done_before}
        others = {task: run for task, run in done_before.items() if task not in wanted}
        tasks = [task for task in tasks if task not in done_before]
        if results:
            print(f"{len(results)} runs read back from {checkpoint}", file=sys.stderr)
    start = time.time()
    run = functools.partial(runner, **options)

    def finished(done: int, task: Task, result: dict[str, Any]) -> None:
        results[task] = result
        if checkpoint is not None:
            save_results(checkpoint, others | results)
        print(f"\r{done}/{len(tasks)} runs, {time.time() - start:.0f} s", end="", file=sys.stderr, flush=True)

    from _pool import sigterm_exits, worker_pool

    if workers > 1:
        with worker_pool(workers) as pool:
            for done, (task, result) in enumerate(pool.imap_unordered(run, tasks), 1):
                finished(done, task, result)
    else:
        with sigterm_exits():  # as with a pool: exit code 143, and no half-written out file left
            for done, task in enumerate(tasks, 1):
                finished(done, task, run(task)[1])
    print(file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--suite",
        choices=["synthetic", "real", "curves"],
        default="synthetic",
        help="test functions (default); models trained on scikit-learn's datasets (tables in "
        "benchmarks/real/tables); or their learning curves under a budget of training steps",
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--problems", default=None, help="comma-separated (default: the suite's all)")
    parser.add_argument("--optimizers", default=None, help="comma-separated (default: the suite's all)")
    parser.add_argument("--modes", default="seq,batch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--budget-scale",
        type=float,
        default=1.0,
        help="scale the real problems' budgets (e.g. 0.1 for a smoke run)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write every run's trace as JSON, after each run; runs the file already holds are "
        "not run again (an interrupted benchmark resumes; stopped by Ctrl-C or SIGTERM, it ends "
        "its workers first), and it keeps those of other optimizers, problems or seeds; a second "
        "benchmark on the same file is refused while this one runs",
    )
    parser.add_argument("--no-timing", action="store_true", help="skip the 100-observation timing")
    parser.add_argument("--timing-only", action="store_true", help="only the 100-observation timing")
    args = parser.parse_args(argv)
    from _out_lock import sole_writer

    with sole_writer(args.out):  # a second copy on the same --out would overwrite this one's runs
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The benchmark `main` parsed: the timing, or a suite's runs and its tables."""
    if args.timing_only:
        print(summarise({}, time_at_100()))
        pending = time_10d_pending()
        with busy_cores():
            busy = time_10d_pending()
        print("\n## One suggestion at 100 observations, 10 dimensions, 4 pending\n")
        print("| optimizer | idle machine | every core busy |")
        print("| --- | --- | --- |")
        for name, secs in pending.items():
            print(f"| {name} | {secs:.3f} s | {busy[name]:.3f} s |")
        return 0
    if args.suite == "curves":
        from real import curves

        problems = args.problems.split(",") if args.problems else list(curves.curve_problems())
        methods = args.optimizers.split(",") if args.optimizers else list(curves.METHODS)
        tasks = [
            (method, p, "seq", seed) for method in methods for p in problems for seed in range(args.seeds)
        ]
        results = run_all(curves.run_task, tasks, args.workers, args.out, budget_scale=args.budget_scale)
        print(curves.summarise(results))
        return 0
    real = args.suite == "real"
    default_problems = list(load_problems()) if real else list(PROBLEMS)
    default_optimizers = REAL if real else [*(n for n in SWEEPWISE if n not in OPT_IN), *PEERS]
    tasks = [
        (name, problem, mode, seed)
        for name in (args.optimizers.split(",") if args.optimizers else default_optimizers)
        for problem in (args.problems.split(",") if args.problems else default_problems)
        for mode in args.modes.split(",")
        for seed in range(args.seeds)
    ]
    tasks.sort(key=lambda t: t[0] != "ax")  # the slowest first, so the pool ends together
    results = run_all(run_task, tasks, args.workers, args.out, budget_scale=args.budget_scale)
    timing = {} if args.no_timing or real else time_at_100()
    if args.out:  # with the file's runs of other selections, which run_all kept
        kept = load_results(args.out) if args.out.exists() else {}
        save_results(args.out, kept | results, timing)
    print(summarise_real(results) if real else summarise(results, timing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
