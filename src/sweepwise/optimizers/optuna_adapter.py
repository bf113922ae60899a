"""Optuna's samplers as a sweepwise optimizer: `optimizer: {type: optuna, sampler: tpe}`.

Stateless, like every sweepwise optimizer: each `suggest` builds an in-memory study,
tells it every observation (failures as FAIL trials, pending suggestions as RUNNING
trials) and asks it for new points. Continuous parameters are searched in sweepwise's
normalised box [-1, 1] (so log and logit scales carry over); discrete ones (ints,
powers of two, choices) as the index of their value. An ordinal parameter is an
`IntDistribution` over the index of its value, not a `CategoricalDistribution` of its
values: Optuna's categoricals are unordered (TPE and GP would forget that 1e-3 lies
between 3e-4 and 3e-3). Conditional parameters are suggested define-by-run, only when
their condition holds, and told only where they were active.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from sweepwise.core.errors import ConfigError, MissingExtraError
from sweepwise.optimizers import Goal, OptimizerSpec, parse_settings, register_optimizer, resolve_seed
from sweepwise.optimizers._box import from_box, to_box

if TYPE_CHECKING:
    from sweepwise.core.models import Observation
    from sweepwise.space import SearchSpace


class OptunaSampler(enum.StrEnum):
    """The Optuna samplers `optimizer.sampler` can name."""

    TPE = "tpe"
    GP = "gp"
    CMAES = "cmaes"
    NSGA2 = "nsga2"
    RANDOM = "random"


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingExtraError("optuna", "optuna") from None
    return optuna


def _call_seed(seed: int, n_observations: int, n_pending: int) -> int:
    """A seed per call, so that a restart with the same inputs repeats its suggestions."""
    return int(np.random.SeedSequence([seed, n_observations, n_pending]).generate_state(1)[0])


class OptunaOptimizer:
    """Suggests with an Optuna sampler rebuilt from the observations at each call.

    Args:
        space: the search space.
        goal: whether a higher or a lower score is better.
        sampler: which Optuna sampler to use.
        seed: integer >= 0; None draws one at construction.

    Raises:
        ConfigError: `seed` is negative or not an integer (field `optimizer.seed`).
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        goal: Goal = Goal.MAXIMIZE,
        sampler: OptunaSampler = OptunaSampler.TPE,
        seed: int | None = None,
    ) -> None:
        self.space = space
        self.goal = goal
        self.sampler = sampler
        self.seed = resolve_seed(seed)

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Return `n_suggestions` points from the sampler, told everything seen so far.

        Args:
            observations: finished runs; failed ones (or non-finite scores) become FAIL trials.
            n_suggestions: how many suggestions to return (>= 0).
            pending: suggestions still running, told as RUNNING trials.

        Returns:
            Flat `{dot.path: value}` dicts of plain Python scalars.
        """
        if n_suggestions < 0:
            raise ValueError(f"n_suggestions must be >= 0, got {n_suggestions}")
        optuna = _import_optuna()
        pending = list(pending or [])
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" per call
        try:
            seed = _call_seed(self.seed, len(observations), len(pending))
            study = optuna.create_study(direction=self.goal.value, sampler=self._make_sampler(optuna, seed))
            distributions = self._distributions(optuna)
            state = optuna.trial.TrialState
            for obs in observations:
                params = self._encode(obs.suggestion)
                if params is None:
                    continue
                ok = not obs.is_failure and math.isfinite(obs.score)
                study.add_trial(
                    optuna.trial.create_trial(
                        params=params,
                        distributions={name: distributions[name] for name in params},
                        value=float(obs.score) if ok else None,
                        state=state.COMPLETE if ok else state.FAIL,
                    )
                )
            for suggestion in pending:
                params = self._encode(suggestion)
                if params is not None:
                    study.add_trial(
                        optuna.trial.create_trial(
                            params=params,
                            distributions={name: distributions[name] for name in params},
                            state=state.RUNNING,
                        )
                    )
            # Asked trials stay RUNNING, so each later ask in this batch knows of the earlier ones.
            return [self._ask(optuna, study, distributions) for _ in range(n_suggestions)]
        finally:
            optuna.logging.set_verbosity(verbosity)

    def _ask(self, optuna: Any, study: Any, distributions: dict[str, Any]) -> dict[str, Any]:
        """One new trial: unconditional parameters at once, then each conditional one in turn
        (parents first) only when its condition holds."""
        roots = {name: dist for name, dist in distributions.items() if not self.space.specs[name].when}
        trial = study.ask(roots)
        if len(roots) < len(distributions):
            params = self._decode(dict(trial.params))
            for name in self.space.order():
                if name in roots or name not in self.space.active(params):
                    continue
                dist = distributions[name]
                if isinstance(dist, optuna.distributions.FloatDistribution):
                    index: Any = trial.suggest_float(name, dist.low, dist.high)
                elif isinstance(dist, optuna.distributions.IntDistribution):
                    index = trial.suggest_int(name, dist.low, dist.high)
                else:
                    index = trial.suggest_categorical(name, dist.choices)
                params = self._decode({**trial.params, name: index})
        return self._decode(dict(trial.params))

    def _make_sampler(self, optuna: Any, seed: int) -> Any:
        samplers = optuna.samplers
        match self.sampler:
            case OptunaSampler.TPE:
                return samplers.TPESampler(seed=seed, constant_liar=True)
            case OptunaSampler.GP:
                return samplers.GPSampler(seed=seed)
            case OptunaSampler.CMAES:
                return samplers.CmaEsSampler(seed=seed)
            case OptunaSampler.NSGA2:
                return samplers.NSGAIISampler(seed=seed)
            case _:
                return samplers.RandomSampler(seed=seed)

    def _distributions(self, optuna: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.space.names:
            levels = self.space.specs[name].levels
            if levels is None:
                out[name] = optuna.distributions.FloatDistribution(-1.0, 1.0)
            elif self.space.specs[name].choices is not None:
                out[name] = optuna.distributions.CategoricalDistribution(list(range(levels)))
            else:
                out[name] = optuna.distributions.IntDistribution(0, levels - 1)
        return out

    def _encode(self, suggestion: dict[str, Any]) -> dict[str, Any] | None:
        """Sampler coordinates of `suggestion`'s active parameters, or None if it does not fit the space."""
        coords = to_box(self.space, suggestion)
        if coords is None or not self.space.conditional:
            return coords
        active = self.space.active(suggestion)
        return {name: value for name, value in coords.items() if name in active}

    def _decode(self, params: dict[str, Any]) -> dict[str, Any]:
        return from_box(self.space, params)


class OptunaSettings(BaseModel):
    """Settings of the optuna optimizer.

    Attributes:
        sampler: tpe (the default), gp, cmaes, nsga2 or random.
    """

    model_config = ConfigDict(extra="forbid")

    sampler: OptunaSampler = OptunaSampler.TPE


@register_optimizer("optuna")
def make_optuna(spec: OptimizerSpec, space: SearchSpace, *, goal: Goal) -> OptunaOptimizer:
    """Build an `OptunaOptimizer` from its spec.

    Raises:
        ConfigError: an unknown setting or sampler (field `optimizer.sampler`).
        MissingExtraError: optuna is not installed.
    """
    settings = parse_settings(spec, OptunaSettings)
    _import_optuna()
    if settings.sampler is OptunaSampler.CMAES:
        import importlib.util

        if importlib.util.find_spec("cmaes") is None:
            raise ConfigError("optimizer.sampler", "cmaes needs the cmaes package: pip install cmaes")
    return OptunaOptimizer(space, goal=goal, sampler=settings.sampler, seed=spec.seed)


__all__ = ["OptunaOptimizer", "OptunaSampler", "OptunaSettings", "make_optuna"]
