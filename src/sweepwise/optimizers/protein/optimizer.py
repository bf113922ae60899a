"""Protein: cost-aware Bayesian optimisation over the Pareto front of score and cost.

Stateless: each `suggest` rebuilds everything from the observations and pending
suggestions it is given, with a generator seeded by (seed, #observations, #pending),
so the same observations and pending suggestions give the same suggestions, in whatever
order they come: a restarted controller reads the finished runs in the order they were
created, where the one before it had them in the order they finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm, qmc, rankdata, yeojohnson

from sweepwise.core.models import Observation
from sweepwise.optimizers import resolve_seed
from sweepwise.optimizers.protein import acquisition
from sweepwise.optimizers.protein.cost import CostModel
from sweepwise.optimizers.protein.encoding import Encoder
from sweepwise.optimizers.protein.gp import GaussianProcess
from sweepwise.optimizers.protein.pareto import pareto_front
from sweepwise.optimizers.protein.settings import ProteinConfig, ProteinSettings, SpaceKind
from sweepwise.optimizers.protein.threads import one_blas_thread
from sweepwise.space import SearchSpace

_ZOOM_ROUNDS = 2
_ZOOM_KEEP = 8
_ZOOM_DRAWS = 64
_COST_VARIES = math.log(1.2)  # log-cost spread below this is treated as constant cost
_PORTFOLIO = ("ei", "naive", "ucb")  # `auto` on a space of continuous parameters only
_FEW_ROWS = 64  # up to this many GP rows the fit is least settled: restarts, and `hyper_draws`
_SMALL_GRID = 16  # the neighbour check runs when every parameter is discrete with at most this many values


@dataclass
class _Data:
    """Observations as arrays: features, internal score (higher is better), log cost."""

    x: np.ndarray  # (n, width), successes then failures
    y: np.ndarray  # (n_ok,) internal scores of the successes
    log_cost: np.ndarray  # (n,)
    n_ok: int
    fidelity: np.ndarray | None = None  # (n,) in [-1, 1], 1 = trained in full; None: no run was stopped
    early: _Early | None = None  # successes again, at earlier rungs (only with fidelity)


class _Early(NamedTuple):
    """Points observed again at rungs they passed: the score GP's lower-fidelity rows."""

    x: np.ndarray  # (m, width)
    fidelity: np.ndarray  # (m,)
    y: np.ndarray  # (m,) internal scores


class ProteinOptimizer:
    """Cost-aware GP search (README, "Protein").

    Args:
        space: the search space.
        goal: `maximize` or `minimize` the score.
        settings: how to search.
        seed: integer >= 0; None draws one at construction.
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        goal: str = "maximize",
        settings: ProteinSettings | None = None,
        seed: int | None = None,
    ) -> None:
        word = str(getattr(goal, "value", goal))  # a str or a str enum
        if word not in ("maximize", "minimize"):
            raise ValueError(f"goal must be 'maximize' or 'minimize' (got {goal!r})")
        self.space = space
        self.sign = 1.0 if word == "maximize" else -1.0
        self.settings = settings or ProteinSettings()
        self.seed = resolve_seed(seed)
        self.encoder = Encoder(space)
        self._scale = (
            np.array(
                [
                    min(2.0, 2.0 * space.specs[b.name].resolved_scale)  # scale 1: the whole range
                    for b in self.encoder.blocks
                    for _ in range(b.width)
                ]
            )
            * self.settings.global_search_scale
        )
        self._center = self.encoder.encode(space.center())
        # `auto`: on a grid (any discrete parameter) the portfolio's exploit and explore turns
        # spend evaluations on neighbours EI already weighs; there EI alone does better
        # (docs/optimizers.md, "How Protein searches")
        continuous = not any(block.discrete for block in self.encoder.blocks)
        self._portfolio = _PORTFOLIO if continuous else ("ei",)
        # the neighbour check, on a space that is all one small grid (docs/optimizers.md)
        self._check_neighbours = all(
            block.categorical or (block.discrete and (space.specs[block.name].levels or 0) <= _SMALL_GRID)
            for block in self.encoder.blocks
        )
        # the settings that depend on the kind of space (`auto`) resolve by it (docs/optimizers.md)
        self._kind: SpaceKind = (
            "continuous" if continuous else "small_grid" if self._check_neighbours else "discrete"
        )

    @classmethod
    def from_config(cls, config: ProteinConfig, seed: int | None = None) -> ProteinOptimizer:
        """Build from the seed's `ProteinConfig`."""
        space = SearchSpace.from_dict(config.parameters)
        return cls(space, goal=config.goal, settings=config.settings, seed=seed)

    # -- the public call -------------------------------------------------------------------

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Return `n_suggestions` new suggestions, distinct from each other, the observed and the pending.

        Args:
            observations: finished runs; failures (`is_failure`) steer the search away.
            n_suggestions: how many to return.
            pending: suggestions still running (treated as fantasies: predicted, not yet seen).
        """
        # One BLAS thread: Protein's matrices are small, and on a machine whose cores run the
        # sweep's jobs more threads only wait for them (docs/optimizers.md, "Speed").
        with one_blas_thread():
            return self._suggest(observations, n_suggestions, pending or [])

    def _suggest(
        self, observations: list[Observation], n_suggestions: int, pending: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        rng = np.random.default_rng([self.seed, len(observations), len(pending)])
        data = self._data(observations)
        taken = {Encoder.key(row) for row in self.encoder.snap(data.x)} if len(data.x) else set()
        chosen: list[np.ndarray] = [
            self.encoder.snap(self._encode(p, "pending suggestion", i)[None])[0]
            for i, p in enumerate(pending)
        ]
        taken.update(Encoder.key(row) for row in chosen)
        n_random = self.settings.num_random_samples
        if n_random is None:
            n_random = max(4, self.encoder.width + 1)
        model: _Model | None = None
        out: list[dict[str, Any]] = []
        for i in range(n_suggestions):
            index = len(observations) + len(chosen)  # repeats count, or a repeated point holds the design
            if index == 0 and self.settings.seed_with_search_center:
                x = self.encoder.snap(self._center[None])[0]
            elif index < n_random or data.n_ok < 2:
                x = self._design_point(index, rng, taken)
            else:
                if model is None:
                    model = _Model(self, data, rng)
                resample = self.settings.resample_frequency
                in_batch = {Encoder.key(row) for row in chosen}
                again = [f for f in model.front if Encoder.key(data.x[f]) not in in_batch]
                if resample and (index + 1) % resample == 0 and again:
                    x = data.x[int(rng.choice(again))]  # a front point again, once per batch at most
                else:
                    target = (i + rng.random()) / n_suggestions * (1.0 + self.settings.expansion_rate)
                    kind: str = self.settings.acquisition_fn
                    if kind == "auto":
                        kind = self._portfolio[index % len(self._portfolio)]
                    every = self.settings.neighbour_every if self._check_neighbours else 0
                    model.margin = model.tactics.ei_margins[0 if i == 0 else 1]
                    near = None
                    if every and index % every == every - 1:
                        near = model.best_neighbour(chosen, taken, target, rng, kind)
                    x = near if near is not None else model.best_candidate(chosen, taken, target, rng, kind)
            taken.add(Encoder.key(x))
            chosen.append(x)
            out.append(self.encoder.decode(x))
        return out

    # -- pieces ----------------------------------------------------------------------------

    def _data(self, observations: list[Observation]) -> _Data:
        at: dict[tuple[float, ...], list[Observation]] = {}
        for i, obs in enumerate(observations):  # the encoder keeps each vector: encoded once
            key = Encoder.key(self.encoder.snap(self._encode(obs.suggestion, "observation", i)[None])[0])
            at.setdefault(key, []).append(obs)
        # One observation per point, in the points' order: a restarted controller reads the runs
        # back in another order, and suggests what the first one would have (docs/optimizers.md).
        ordered = [_one_per_point(at[key]) for key in sorted(at)]
        ok = [o for o in ordered if not o.is_failure and math.isfinite(o.score)]
        failed = [o for o in ordered if o.is_failure or not math.isfinite(o.score)]
        rows = [self.encoder.encode(o.suggestion) for o in [*ok, *failed]]
        x = np.array(rows) if rows else np.zeros((0, self.encoder.width))
        costs = np.array(
            [max(float(o.cost), 1e-12) if math.isfinite(o.cost) else 1.0 for o in [*ok, *failed]]
        )
        y = self.sign * np.array([float(o.score) for o in ok])
        data = _Data(x, y, np.log(costs) if len(costs) else costs, len(ok), _fidelity([*ok, *failed]))
        if data.fidelity is not None:
            self._add_rungs(data, ok, _longest([*ok, *failed]))
        return data

    def _add_rungs(self, data: _Data, ok: list[Observation], longest: int) -> None:
        """The successes' scores at earlier rungs, as more points of lower fidelity.

        The lowest rungs first, and no more of them than observations, so the GP grows at
        most twofold (docs/optimizers.md, "Models and search").
        """
        early = sorted(
            (rung, i, value)
            for i, o in enumerate(ok)
            for rung, value in (o.rungs or {}).items()
            if 0 < rung < (o.step if o.stopped and o.step else longest) and math.isfinite(value)
        )[: len(data.x)]
        if early:
            data.early = _Early(
                data.x[[i for _, i, _ in early]],
                np.array([2.0 * math.log(rung) / math.log(longest) - 1.0 for rung, _, _ in early]),
                self.sign * np.array([value for _, _, value in early]),
            )

    def _encode(self, suggestion: dict[str, Any], what: str, index: int) -> np.ndarray:
        try:
            return self.encoder.encode(suggestion)
        except ValueError as exc:
            raise ValueError(f"{what} {index} {exc}") from None

    def _design_point(
        self, index: int, rng: np.random.Generator, taken: set[tuple[float, ...]]
    ) -> np.ndarray:
        """Point `index` of a scrambled Sobol design in the box around the search centre."""
        size = 1 << max(4, math.ceil(math.log2(index + 2)))
        design = qmc.Sobol(self.encoder.width, scramble=True, seed=self.seed).random(size)
        for u in (design[index % size], *rng.random((32, self.encoder.width))):
            x = self.encoder.snap(self.encoder.design(u, self._center, self._scale)[None])[0]
            if Encoder.key(x) not in taken:
                break
        else:  # a small space, mostly taken: any point of it not yet taken, else (all taken) the last tried
            rows = self.encoder.snap(self.encoder.random(rng, 1024))
            x = next((row for row in rows if Encoder.key(row) not in taken), x)
        result: np.ndarray = x
        return result


def _one_per_point(observations: list[Observation]) -> Observation:
    """The observations of one point as one, whatever their order.

    The longest-trained ones count (a run trained in full over one stopped early); of those,
    the mean score and cost of the successes, or a failure when none succeeded.
    """
    if len(observations) == 1:
        return observations[0]

    def trained(o: Observation) -> tuple[bool, int]:
        return (not o.stopped, (o.step or 0) if o.stopped else 0)

    longest = max(map(trained, observations))
    top = sorted(
        (o for o in observations if trained(o) == longest),
        key=lambda o: (o.is_failure, repr(sorted(o.suggestion.items()))),
    )
    ok = [o for o in top if not o.is_failure and math.isfinite(o.score)]
    costs = [o.cost for o in top if math.isfinite(o.cost)]
    return Observation(
        float(np.mean([o.score for o in ok])) if ok else math.nan,
        float(np.mean(costs)) if costs else math.nan,
        top[0].suggestion,
        is_failure=not ok,
        step=top[0].step,
        stopped=top[0].stopped,
        rungs=top[0].rungs,
    )


def _fidelity(observations: list[Observation]) -> np.ndarray | None:
    """How far each run trained, as log(step) / log(longest step seen) mapped to [-1, 1].

    A run that was not stopped counts as trained in full (1), whatever step it reported;
    None when no run was stopped, so a sweep without early stopping models no fidelity
    (docs/optimizers.md, "Early stopping").
    """
    if not any(o.stopped for o in observations):
        return None
    longest = _longest(observations)
    if longest <= 1:
        return None
    out = np.ones(len(observations))
    for i, o in enumerate(observations):
        if o.stopped and o.step and o.step > 0:  # a stopped run with no (valid) step counts as full
            out[i] = 2.0 * math.log(min(o.step, longest)) / math.log(longest) - 1.0
    return out


def _longest(observations: list[Observation]) -> int:
    """The longest step any run reported (1 when none did)."""
    return max((o.step for o in observations if o.step and o.step > 0), default=1)


def _gaussianise(y: np.ndarray, *, stopped: bool) -> np.ndarray:
    """Scores made near-normal for the GP (docs/optimizers.md, "Models and search").

    Standardised, then Yeo-Johnson transformed. When runs were stopped the scores mix steps
    of training (an early loss may be ten times a final one), a mixture no single power
    evens out: then the mean of that and the normal scores of their ranks, which are even
    whatever the mixture, while the power transform keeps how far apart the scores lie.
    Scores of any finite size work: they are divided by the largest magnitude first, so the
    standard deviation neither overflows (1e300) nor underflows to zero (1e-300).
    """
    unit = y / np.abs(y).max()
    warped: np.ndarray = yeojohnson((unit - unit.mean()) / unit.std())[0]
    if stopped:
        warped = 0.5 * (warped + norm.ppf((rankdata(y) - 0.5) / len(y)))
    return warped


class _Model:
    """The GPs of one `suggest` call and the candidate search built on them."""

    def __init__(self, owner: ProteinOptimizer, data: _Data, rng: np.random.Generator) -> None:
        self.owner = owner
        self.settings = owner.settings
        self.encoder = owner.encoder
        self.data = data
        s = self.settings
        y = data.y
        if data.early is not None:
            y = np.concatenate([y, data.early.y])
        if len(y) > 2 and float(np.ptp(y)) > 0:
            y = _gaussianise(y, stopped=data.fidelity is not None)
        early_y, y = y[data.n_ok :], y[: data.n_ok]
        self.best = float(y.max())
        n_fail = len(data.x) - data.n_ok
        imputed = np.full(n_fail, float(y.min()) - 0.25 * float(np.ptp(y) or 1.0))
        # restarts cost O(n^3) each: use them while the data is small, where the fit is least settled
        restarts = s.gp_restarts if len(data.x) <= _FEW_ROWS else 0
        groups = self.encoder.groups
        self.fidelity = data.fidelity
        self.tactics = s.resolve(owner._kind, stopped=data.fidelity is not None)
        self.margin = self.tactics.ei_margins[0]  # the suggestion's own: set per suggestion
        if self.fidelity is not None:  # one more input, with its own length scale
            groups = np.append(groups, int(groups.max(initial=-1)) + 1)
        inputs = self._inputs(data.x, self.fidelity)
        if data.early is not None:
            inputs = np.vstack([inputs, self._inputs(data.early.x, data.early.fidelity)])
        self.score_gp = GaussianProcess(
            inputs,
            np.concatenate([y, imputed, early_y]),
            rng,
            nu=s.matern_nu,
            restarts=restarts,
            groups=groups,
        )
        full = np.ones(data.n_ok, dtype=bool) if self.fidelity is None else self.fidelity[: data.n_ok] >= 1.0
        if full.any():  # the bar to beat is a run trained in full, not a stopped run's early value
            self.best = float(y[full].max())
        self.cost_lo = float(data.log_cost.min())
        self.cost_span = float(np.ptp(data.log_cost))
        self.cost_model: CostModel | None = None
        if self.cost_span > _COST_VARIES:
            self.cost_model = CostModel(
                self.encoder,
                self._inputs(data.x, self.fidelity, score=False),
                data.log_cost,
                rng,
                nu=s.matern_nu,
                groups=groups,
            )
        ok_x = data.x[: data.n_ok]
        front = np.flatnonzero(full)
        self.front = (
            front[pareto_front(y[full], data.log_cost[: data.n_ok][full])]
            if self.cost_model is not None and full.any()
            else np.array([], int)
        )
        top = np.argsort(-np.where(full, y, -np.inf))[:3]
        # the best run trained in full; of equal ones the first in the points' order
        self.incumbent = data.x[int(np.argmax(np.where(full, y, -np.inf)))] if full.any() else None
        self.anchors = ok_x[np.unique(np.concatenate([top, self.front]))]
        self.fantasy_gp = self.score_gp
        # expected improvement averaged over GPs whose hyperparameters are posterior draws
        self.ensemble: list[GaussianProcess] = []
        if self.tactics.hyper_draws and len(inputs) <= _FEW_ROWS:
            self.ensemble = self.score_gp.posterior_draws(rng, self.tactics.hyper_draws)
        self.fantasy_ensemble = self.ensemble

    def _inputs(
        self, xs: np.ndarray, fidelity: np.ndarray | None = None, *, score: bool = True
    ) -> np.ndarray:
        """The GPs' inputs: encoded points, plus their fidelity when runs were stopped (1: full).

        The score GP sees wide integers on a log scale (`log_integers`); the cost model has
        log features of its own (docs/optimizers.md, "The cost model").
        """
        if score and self.settings.log_integers:
            xs = self.encoder.log_integers(xs)
        if self.fidelity is None:
            return xs
        column = np.ones(len(xs)) if fidelity is None else fidelity
        return np.hstack([xs, column[:, None]])

    def _acquire(self, xs: np.ndarray, target: float, rng: np.random.Generator, kind: str) -> np.ndarray:
        """Each candidate's acquisition `kind` (higher is better); -inf where too costly."""
        s = self.settings
        seen = self._inputs(xs)
        weight = np.ones(len(xs))
        allowed = np.ones(len(xs), dtype=bool)
        if self.cost_model is not None:
            log_cost = self.cost_model.predict(self._inputs(xs, score=False))
            unit = (log_cost - self.cost_lo) / self.cost_span
            penalty = self.tactics.cost_penalty
            if kind == "ei" and penalty is not None:  # EI per cost (docs/optimizers.md)
                weight = acquisition.per_cost_weight(unit, penalty)
            elif s.cost_aware or kind == "naive":
                weight = acquisition.cost_weight(unit, target)
            if s.max_suggestion_cost is not None:
                allowed = log_cost <= math.log(s.max_suggestion_cost)
                if not allowed.any():  # nothing is cheap enough: the cheapest is the least bad
                    allowed = log_cost <= log_cost.min()
        if kind == "naive":
            value = acquisition.naive(self.fantasy_gp.predict(seen)[0], weight)
        elif kind == "ucb":
            mean, sd = self.fantasy_gp.predict(seen)
            beta = rng.exponential(s.ucb_beta) if s.randomize_acquisition else s.ucb_beta
            value = acquisition.upper_confidence_bound(mean, sd, beta)
            value = (value - value.min()) * weight
        else:
            bar = self.best - self.margin  # a lowered bar: a greedier search (docs/optimizers.md)
            draws = self.fantasy_ensemble or [self.fantasy_gp]  # with `hyper_draws`, their mean EI
            each = [acquisition.log_expected_improvement(*g.predict(seen), bar) for g in draws]
            log_ei = each[0] if len(each) == 1 else logsumexp(np.vstack(each), axis=0) - math.log(len(each))
            value = log_ei + np.log(np.maximum(weight, 1e-6))
        return np.where(allowed, value, -np.inf)

    def _candidates(self, rng: np.random.Generator) -> np.ndarray:
        parts = [self.encoder.random(rng, self.tactics.random_suggestions)]
        per = self.tactics.suggestions_per_pareto
        centers = np.repeat(self.anchors, per, axis=0)
        sigma = np.exp(rng.uniform(math.log(0.005), math.log(0.5), len(centers)))
        parts.append(self.encoder.perturb(centers, sigma * self.owner.settings.global_search_scale, rng, 0.2))
        parts.append(self.encoder.neighbours(self.anchors))
        return np.vstack(parts)

    def _imagine(self, chosen: list[np.ndarray]) -> None:
        """Condition the score GP on the suggestions chosen so far, at their predicted scores."""
        if chosen:
            fantasies = self._inputs(np.array(chosen))
            self.fantasy_gp = self.score_gp.conditioned(fantasies, self.score_gp.predict(fantasies)[0])
            self.fantasy_ensemble = [
                gp.conditioned(fantasies, gp.predict(fantasies)[0]) for gp in self.ensemble
            ]

    def best_neighbour(
        self,
        chosen: list[np.ndarray],
        taken: set[tuple[float, ...]],
        target: float,
        rng: np.random.Generator,
        kind: str,
    ) -> np.ndarray | None:
        """The untried grid neighbour of the best full run with the best acquisition `kind`.

        A neighbour is one level up or down of a discrete number, or another choice of a
        categorical. None when every neighbour was tried or is too costly
        (`max_suggestion_cost`), or no run was trained in full (docs/optimizers.md, "How
        Protein searches").
        """
        if self.incumbent is None:
            return None
        near = self.encoder.snap(self.encoder.neighbours(self.incumbent[None]))
        untried = [row for row in near if Encoder.key(row) not in taken]
        if not untried:
            return None
        self._imagine(chosen)
        xs = np.array(untried)
        cap = self.settings.max_suggestion_cost
        if cap is not None and self.cost_model is not None:  # no fallback to the cheapest here
            xs = xs[self.cost_model.predict(self._inputs(xs, score=False)) <= math.log(cap)]
            if not len(xs):
                return None
        best: np.ndarray = xs[int(np.argmax(self._acquire(xs, target, rng, kind)))]
        return best

    def best_candidate(
        self,
        chosen: list[np.ndarray],
        taken: set[tuple[float, ...]],
        target: float,
        rng: np.random.Generator,
        kind: str,
    ) -> np.ndarray:
        """The best new candidate for this cost target by acquisition `kind`; then a fantasy."""
        self._imagine(chosen)
        xs = self.encoder.snap(self._candidates(rng))
        values = self._acquire(xs, target, rng, kind)
        for _ in range(_ZOOM_ROUNDS):  # refine around the leaders with ever smaller steps
            lead = xs[np.argsort(-values)[:_ZOOM_KEEP]]
            centers = np.repeat(lead, _ZOOM_DRAWS, axis=0)
            sigma = np.exp(rng.uniform(math.log(1e-4), math.log(0.05), len(centers)))
            local = self.encoder.snap(
                np.vstack([self.encoder.perturb(centers, sigma, rng, 0.0), self.encoder.neighbours(lead)])
            )
            xs = np.vstack([xs, local])
            values = np.concatenate([values, self._acquire(local, target, rng, kind)])
        for index in np.argsort(-values):
            if Encoder.key(xs[index]) not in taken:
                best: np.ndarray = xs[index]
                return best
        return self.owner._design_point(len(taken), rng, taken)


__all__ = ["ProteinOptimizer"]
