"""Learning-curve suite: a budget of training steps spent with or without early stopping.

Every real problem with more than one recorded step (boosting iterations, MLP epochs) gives
each configuration a learning curve; a sweep pays one unit of budget per recorded step it
trains, and a trial that is stopped early pays only for the steps it ran (and the seconds
its fit spent up to there). A sweep's result is the best final-step loss among the trials
it trained to the end, reported as regret above the table's best final-step loss.

    python benchmarks/optimizers.py --suite curves --seeds 10

Methods: Optuna's random and TPE samplers without stopping and with Optuna's
SuccessiveHalvingPruner; sweepwise's random search and Protein without stopping and with
sweepwise's own `asha` stopper; Ray Tune's random search with its ASHA scheduler. Every
stopper has grace period `GRACE_PERIOD`, reduction factor `REDUCTION_FACTOR` and `max_t` the
last step.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from real.problems import RealProblem, load_problems

STEP_BUDGET = 15  # full trainings' worth of recorded steps per sweep
GRACE_PERIOD = 3  # steps every trial trains before a stopper may judge it (every stopper)
REDUCTION_FACTOR = 2  # every stopper keeps the best half at each rung
METHODS = [
    "random",
    "tpe",
    "random+sha",
    "tpe+sha",
    "sweepwise-random",
    "sweepwise-random+asha",
    "sweepwise-protein",
    "sweepwise-protein+asha",
    "raytune-random+asha",
]


def curve_problems() -> dict[str, RealProblem]:
    """The real problems whose tables hold more than one step of training."""
    return {name: p for name, p in load_problems().items() if len(p.steps) > 1}


def step_budget(problem: RealProblem, scale: float = 1.0) -> int:
    """Recorded steps a sweep may train (at least one full training)."""
    return max(len(problem.steps), round(STEP_BUDGET * len(problem.steps) * scale))


def run_sweepwise(method: str, problem: RealProblem, seed: int, budget: int) -> dict[str, Any]:
    """One sweep with a sweepwise optimizer, with sweepwise's own stopper or none, under `budget` steps.

    The stopper is `sweepwise.engine.stopping.Stopper` itself, fed each trial's curve one
    report at a time as the controller feeds it the jobs' reports; a stopped trial is an
    observation at the step it reached, as a STOPPED run is, and every observation carries
    the values at the rungs it passed, as `observation/rungs` does.
    """
    from sweepwise.core import keys
    from sweepwise.core.models import Observation, RunInfo
    from sweepwise.engine.stopping import Stopper, StopperSpec
    from sweepwise.optimizers import OptimizerSpec, make_optimizer
    from sweepwise.space import SearchSpace

    optimizer_name, _, stopper_name = method.removeprefix("sweepwise-").partition("+")
    space = SearchSpace.from_dict(problem.parameters(with_step=False))
    optimizer = make_optimizer(OptimizerSpec(type=optimizer_name, seed=seed), space, goal="minimize")
    spec = StopperSpec(
        type=stopper_name or "none",
        grace_period=GRACE_PERIOD,
        reduction_factor=REDUCTION_FACTOR,
        max_t=len(problem.steps),
    )
    stopper = Stopper(spec, "loss", "minimize")
    observations: list[Observation] = []
    spent, seconds, best, started, completed = 0, 0.0, math.inf, 0, 0
    while spent < budget:
        (params,) = optimizer.suggest(observations, 1)
        losses, costs = problem.curve(params, seed)
        started += 1
        rungs: dict[str, float] = {}
        for t, loss in enumerate(losses):
            spent += 1
            report = {keys.TRAIN_METRICS: {"step": t + 1, "loss": float(loss)}, keys.RUNGS: rungs}
            decision = stopper.decide(RunInfo(f"trial{started}", summary=report))
            if decision is not None:
                rungs = decision.rungs
            if t + 1 == len(losses):
                seconds += float(costs[t])
                earlier = {int(k): float(v) for k, v in rungs.items() if int(k) < t + 1}
                observations.append(
                    Observation(float(loss), float(costs[t]), params, step=t + 1, rungs=earlier)
                )
                best, completed = min(best, float(loss)), completed + 1
            elif spent >= budget or (decision is not None and decision.stop):
                seconds += float(costs[t])
                stopped = decision is not None and decision.stop
                earlier = {int(k): float(v) for k, v in rungs.items() if int(k) < t + 1}
                observations.append(
                    Observation(
                        float(loss), float(costs[t]), params, step=t + 1, stopped=stopped, rungs=earlier
                    )
                )
                break
    return _sweep_result(problem, seed, best, seconds, started, completed)


def run_optuna(method: str, problem: RealProblem, seed: int, budget: int) -> dict[str, Any]:
    """One sweep with an Optuna sampler, with or without successive halving, under `budget` steps."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler_name, _, stopper = method.partition("+")
    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if sampler_name == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    pruner = (
        optuna.pruners.SuccessiveHalvingPruner(min_resource=GRACE_PERIOD, reduction_factor=REDUCTION_FACTOR)
        if stopper == "sha"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
    spent, seconds, best, started, completed = 0, 0.0, math.inf, 0, 0
    while spent < budget:
        trial = study.ask()
        losses, costs = problem.curve(problem.optuna_params(trial, with_step=False), seed)
        started += 1
        for t, loss in enumerate(losses):
            spent += 1
            trial.report(float(loss), t + 1)
            if t + 1 == len(losses):
                seconds += float(costs[t])
                study.tell(trial, float(loss))
                best, completed = min(best, float(loss)), completed + 1
            elif spent >= budget or trial.should_prune():
                seconds += float(costs[t])
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
    return _sweep_result(problem, seed, best, seconds, started, completed)


def run_ray(method: str, problem: RealProblem, seed: int, budget: int) -> dict[str, Any]:
    """One sweep with Ray Tune's random search and its ASHA scheduler, under `budget` steps.

    Ray Tune's own `ASHAScheduler` (grace period `GRACE_PERIOD`, reduction factor
    `REDUCTION_FACTOR`, `max_t` the last step, as every stopper here) decides after each
    report, called as Tune's controller calls it, one trial at a time; the configurations are
    drawn from Ray Tune's own search-space domains. Tune's actor runtime is left out: it
    changes how long a sweep takes, not what it decides.
    """
    from types import SimpleNamespace

    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    np.random.seed(seed)  # the scheduler draws its bracket from numpy's global generator
    random_state = np.random.RandomState(seed)
    scheduler = ASHAScheduler(
        metric="loss",
        mode="min",
        max_t=len(problem.steps),
        grace_period=GRACE_PERIOD,
        reduction_factor=REDUCTION_FACTOR,
    )
    domains: dict[str, Any] = {}
    for name, p in problem.params.items():
        if name == problem.step_param:
            continue
        values = p["values"]
        if p["kind"] == "log":
            domains[name] = tune.loguniform(min(values), max(values))
        elif p["kind"] == "int":
            domains[name] = tune.randint(min(values), max(values) + 1)
        else:
            domains[name] = tune.choice(values)
    spent, seconds, best, started, completed = 0, 0.0, math.inf, 0, 0
    while spent < budget:
        params = {name: domain.sample(random_state=random_state) for name, domain in domains.items()}
        losses, costs = problem.curve(params, seed)
        started += 1
        trial = SimpleNamespace(trial_id=f"trial{started}")
        scheduler.on_trial_add(None, trial)
        for t, loss in enumerate(losses):
            spent += 1
            result = {"training_iteration": t + 1, "loss": float(loss)}
            last = t + 1 == len(losses)
            if (
                last
                or spent >= budget
                or scheduler.on_trial_result(None, trial, result) == TrialScheduler.STOP
            ):
                scheduler.on_trial_complete(None, trial, result)
                seconds += float(costs[t])
                if last:
                    best, completed = min(best, float(loss)), completed + 1
                break
    return _sweep_result(problem, seed, best, seconds, started, completed)


def _sweep_result(
    problem: RealProblem, seed: int, best: float, seconds: float, started: int, completed: int
) -> dict[str, Any]:
    """One sweep's row: final regret above the table's best final-step loss, seconds, trials."""
    reference = float(problem.loss[:, seed % problem.seeds, -1].min())
    return {
        "regret": [max(best - reference, 0.0)],
        "cost": [seconds],
        "started": started,
        "completed": completed,
    }


def run_task(task: tuple[str, str, str, int], budget_scale: float = 1.0) -> tuple[Any, dict[str, Any]]:
    """One sweep (method, problem, mode, seed) of the curves suite; the mode is always seq."""
    method, name, _, seed = task
    problem = load_problems()[name]
    budget = step_budget(problem, budget_scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method.startswith("sweepwise-"):
            return task, run_sweepwise(method, problem, seed, budget)
        if method.startswith("raytune"):
            return task, run_ray(method, problem, seed, budget)
        return task, run_optuna(method, problem, seed, budget)


def summarise(results: dict[Any, dict[str, Any]]) -> str:
    """Per problem and method: median final regret [IQR], trials started/completed, fit seconds."""
    methods = [m for m in METHODS if any(k[0] == m for k in results)]
    problems = [p for p in load_problems() if any(k[1] == p for k in results)]
    lines = [
        f"## Learning curves: {STEP_BUDGET} full trainings' worth of steps per sweep",
        "",
        "Final regret (best final-step loss above the table's best): median [IQR]; "
        "trials started / trained to the end; fit seconds spent (medians over seeds)",
        "",
        "| problem | steps | " + " | ".join(methods) + " |",
        "| --- " * (2 + len(methods)) + "|",
    ]
    skipped = set()
    for p in problems:
        row = []
        for method in methods:
            runs = [r for k, r in results.items() if k[0] == method and k[1] == p]
            if not runs or "skipped" in runs[0]:
                skipped |= {r["skipped"] for r in runs if "skipped" in r}
                row.append("—")
                continue
            q1, med, q3 = np.percentile([r["regret"][-1] for r in runs], [25, 50, 75])
            started = np.median([r["started"] for r in runs])
            completed = np.median([r["completed"] for r in runs])
            seconds = np.median([r["cost"][-1] for r in runs])
            row.append(f"{med:.4f} [{q1:.4f}, {q3:.4f}]; {started:.0f}/{completed:.0f}; {seconds:.1f} s")
        steps = load_problems()[p].steps
        lines.append(f"| {p} | {len(steps)} | " + " | ".join(row) + " |")
    lines += [""] + [f"- {s}" for s in sorted(skipped)]
    return "\n".join(lines)
