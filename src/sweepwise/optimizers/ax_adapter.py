"""Ax (BoTorch) as a sweepwise optimizer: `optimizer: {type: ax}`.

Stateless, like every sweepwise optimizer: each `suggest` builds a fresh Ax `Client`,
attaches every observation (failures marked failed, pending suggestions left running)
and asks for new trials. Continuous parameters are searched in sweepwise's normalised
box [-1, 1] (so log and logit scales carry over); discrete ones as the index of their
value; an ordinal one as an ordered choice of its index, or past Ax's 1,000 values an int
range of it. Ax sees the parameters as `p0, p1, ...`, because sweepwise names may hold dots.

Conditional parameters: Ax's parameter constraints are linear inequalities and cannot
say "exists only when kernel is poly", so Ax searches every parameter, an observation's
inactive ones are attached at the box's centre, and suggestions drop the inactive ones.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sweepwise.core.errors import ConfigError, MissingExtraError
from sweepwise.optimizers import Goal, OptimizerSpec, parse_settings, register_optimizer, resolve_seed
from sweepwise.optimizers._box import from_box, to_box

if TYPE_CHECKING:
    from sweepwise.core.models import Observation
    from sweepwise.space import SearchSpace

_METRIC = "score"
_AX_MAX_CHOICES = 1000  # the most values Ax takes in a choice parameter


def import_ax() -> Any:
    """The `ax` package (ax-platform), imported without the INFO line Ax logs as it loads
    (`Ax SQL storage initialized ...`: a bad spec's error is one line).

    Raises:
        MissingExtraError: ax-platform is not installed.
    """
    loaded = sys.modules.get("ax")
    if loaded is not None:  # imported before: no need to quiet logging (a per-suggest call)
        return loaded
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.INFO))
    try:
        import ax
    except ImportError:
        raise MissingExtraError("ax-platform", "ax") from None
    finally:
        logging.disable(previous)
    return ax


class AxOptimizer:
    """Suggests with Ax's generation strategy (Sobol, then BoTorch), rebuilt at each call.

    Args:
        space: the search space.
        goal: whether a higher or a lower score is better.
        method: Ax's generation strategy: `fast`, `quality` or `random_search`.
        initialization_budget: Sobol trials before BoTorch takes over (None: Ax's default).
        seed: integer >= 0; None draws one at construction.

    Raises:
        ConfigError: `seed` is negative or not an integer (field `optimizer.seed`), or a
            categorical parameter has more choices than Ax takes.
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        goal: Goal = Goal.MAXIMIZE,
        method: Literal["fast", "quality", "random_search"] = "fast",
        initialization_budget: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.space = space
        self.goal = goal
        self.method = method
        self.initialization_budget = initialization_budget
        self.seed = resolve_seed(seed)
        self._names = {name: f"p{i}" for i, name in enumerate(space.names)}
        for name in space.names:
            choices = space.specs[name].choices
            if choices is not None and len(choices) > _AX_MAX_CHOICES:
                raise ConfigError(
                    f"parameters.{name}",
                    f"has {len(choices)} choices; Ax takes at most {_AX_MAX_CHOICES} in a categorical "
                    "parameter: give fewer, or use optimizer protein or optuna",
                )

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Return `n_suggestions` points from Ax, told everything seen so far.

        Args:
            observations: finished runs; failed ones (or non-finite scores) are marked failed.
            n_suggestions: how many suggestions to return (>= 0).
            pending: suggestions still running, attached as running trials.

        Returns:
            Flat `{dot.path: value}` dicts of plain Python scalars.
        """
        if n_suggestions < 0:
            raise ValueError(f"n_suggestions must be >= 0, got {n_suggestions}")
        if n_suggestions == 0:
            return []
        ax = import_ax()
        # A seed per call: a rebuilt client with a fixed Sobol seed would repeat its first points.
        seed = int(_rng(self.seed, len(observations), len(pending or [])).integers(2**31))
        client = ax.Client(random_seed=seed)
        client.configure_experiment(parameters=self._parameters(ax))
        client.configure_optimization(objective=_METRIC if self.goal is Goal.MAXIMIZE else f"-{_METRIC}")
        client.configure_generation_strategy(
            method=self.method,
            initialization_budget=self.initialization_budget,
            initialization_random_seed=seed,
        )
        for obs in observations:
            params = self._encode(obs.suggestion)
            if params is None:
                continue
            index = client.attach_trial(parameters=params)
            if obs.is_failure or not math.isfinite(obs.score):
                client.mark_trial_failed(index, failed_reason="failed run")
            else:
                client.complete_trial(index, raw_data={_METRIC: float(obs.score)})
        for suggestion in pending or []:
            params = self._encode(suggestion)
            if params is not None:
                client.attach_trial(parameters=params)
        trials = client.get_next_trials(max_trials=n_suggestions)
        out = [self._decode(params) for _, params in sorted(trials.items())]
        while len(out) < n_suggestions:  # Ax may return fewer (e.g. a tiny discrete space)
            out.append(self.space.sample_uniform(_rng(self.seed, len(observations), len(out), 1), 1)[0])
        return out

    def _parameters(self, ax: Any) -> list[Any]:
        out: list[Any] = []
        for name, safe in self._names.items():
            levels = self.space.specs[name].levels
            if levels is None:
                out.append(ax.RangeParameterConfig(name=safe, bounds=(-1.0, 1.0), parameter_type="float"))
            elif levels == 1:
                out.append(ax.ChoiceParameterConfig(name=safe, values=[0], parameter_type="int"))
            elif levels > _AX_MAX_CHOICES and self.space.specs[name].choices is None:
                # Ax refuses a choice of more values (an int_uniform 100..2000): an int range of indices
                out.append(ax.RangeParameterConfig(name=safe, bounds=(0, levels - 1), parameter_type="int"))
            else:
                ordered = self.space.specs[name].choices is None
                out.append(
                    ax.ChoiceParameterConfig(
                        name=safe, values=list(range(levels)), parameter_type="int", is_ordered=ordered
                    )
                )
        return out

    def _encode(self, suggestion: dict[str, Any]) -> dict[str, Any] | None:
        coords = to_box(self.space, suggestion)
        return None if coords is None else {self._names[name]: value for name, value in coords.items()}

    def _decode(self, params: Any) -> dict[str, Any]:
        return from_box(self.space, {name: params[safe] for name, safe in self._names.items()})


def _rng(*keys: int) -> Any:
    """A generator seeded by the optimizer's seed and what the call was given."""
    import numpy as np

    return np.random.default_rng(list(keys))


class AxSettings(BaseModel):
    """Settings of the ax optimizer.

    Attributes:
        method: Ax's generation strategy: fast (the default), quality or random_search.
        initialization_budget: Sobol trials before BoTorch (None: Ax's default).
    """

    model_config = ConfigDict(extra="forbid", strict=True)  # `initialization_budget: yes` is not a count

    method: Literal["fast", "quality", "random_search"] = "fast"
    initialization_budget: int | None = Field(default=None, ge=1)


@register_optimizer("ax")
def make_ax(spec: OptimizerSpec, space: SearchSpace, *, goal: Goal) -> AxOptimizer:
    """Build an `AxOptimizer` from its spec.

    Raises:
        ConfigError: an unknown or invalid setting (field `optimizer.<setting>`).
        MissingExtraError: ax-platform is not installed.
    """
    settings = parse_settings(spec, AxSettings)
    import_ax()
    return AxOptimizer(
        space,
        goal=goal,
        method=settings.method,
        initialization_budget=settings.initialization_budget,
        seed=spec.seed,
    )


__all__ = ["AxOptimizer", "AxSettings", "import_ax", "make_ax"]
