"""Protein's settings, and `ProteinConfig`, the seed's way to describe a Protein search."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

Auto = Literal["auto"]

# what `auto` settings resolve to (benchmarks/results/real.md measured them on the real problems)
_RANDOM_CANDIDATES = 512
_PARETO_CANDIDATES = 128
_WIDE_CANDIDATES = 8  # times as many on a discrete space that is not one small grid
_HYPER_DRAWS = 8  # there, while no run was stopped
_GRID_COST_PENALTY = 2.0  # on a small grid, while no run was stopped
_GRID_EI_MARGINS = (0.6, 0.3)  # there: a call's first suggestion, its others

_T = TypeVar("_T")


def _auto(value: _T | Auto, auto: _T) -> _T:
    """`auto` if the setting is `auto`, else the setting."""
    return auto if value == "auto" else value


class ProteinSettings(BaseModel):
    """How Protein searches (docs/optimizers.md, "How Protein searches"). Defaults suit 10–500 observations.

    Attributes:
        max_suggestion_cost: candidates whose predicted cost exceeds this are not suggested.
        global_search_scale: multiplies every parameter's `scale` (the search box and the
            size of the steps taken around Pareto points).
        random_suggestions: uniform candidates drawn over the whole box per suggestion;
            `auto` (the default) is 512, and 4,096 on a discrete space that is not one small
            grid while no run was stopped (see `resolve`).
        suggestions_per_pareto: candidates drawn around each Pareto-front point; `auto` is
            128, and 1,024 where `random_suggestions` is 4,096.
        resample_frequency: every Nth suggestion re-proposes a front point (0: never).
        neighbour_every: on a space that is all one small grid (every parameter a
            categorical or a discrete number with at most 16 values), every Nth suggestion
            after the design is the untried grid neighbour of the best run (one level of a
            number, or another choice of a categorical) with the best acquisition, while one
            is left (0: never): the GP can rule out the one step that ends a climb.
        num_random_samples: suggestions drawn from a space-filling design before the GP is
            used; None means `max(4, width + 1)`, width being the encoded vector's length
            (one column per number or ordinal, one per choice of a categorical).
        seed_with_search_center: the very first suggestion is every parameter's `mean`.
        expansion_rate: how far past the most expensive observation a cost target may reach.
        acquisition_fn: `ei` (expected improvement), `ucb` (upper confidence bound),
            `naive` (the original Protein's predicted score times a cost-target weight), or
            `auto` (the default: the three in turn, suggestion by suggestion — exploitation,
            balance and exploration, so no single acquisition's blind spot decides a sweep).
        ucb_beta: UCB's exploration weight.
        randomize_acquisition: draw the exploration weight afresh for each suggestion.
        cost_aware: when observed costs differ, give each suggestion a cost target along the
            score/cost frontier, so cheap configurations are learnt before expensive ones; the
            predicted cost comes from a model of log cost (`cost.CostModel`).
        log_integers: the score GP sees an `int_uniform` parameter that starts at 1 or more
            and spans 10 times or more on a log scale (counts act by their ratios);
            suggestions are still drawn and rounded on its own scale.
        cost_penalty: None (cost targets) or expected improvement per cost: when observed
            costs differ, EI is weighed by exp(-cost_penalty * z) in place of the cost
            targets, z being a candidate's predicted log cost scaled to [0, 1] over the
            observed range; at most 10. `auto` (the default): 2 on a small grid while no
            run was stopped and `cost_aware` is on, else None.
        ei_margin: expected improvement is measured against the best run less this many
            standard deviations of the (Gaussianised) scores: a greedier search, which
            credits points predicted close to the best; at most 10. `auto` (the default):
            on a small grid while no run was stopped, 0.6 for a call's first suggestion
            and 0.3 for the others, else 0.
        hyper_draws: on a space with a discrete parameter that is not one small grid, up to
            64 observations, expected improvement is the mean over this many GPs whose
            hyperparameters are drawn from their posterior (random-walk Metropolis from the
            fit); 0 uses the fitted hyperparameters alone. At most 64. `auto` (the
            default): 8 while no run was stopped, else 0.
        matern_nu: smoothness of the GP's Matérn kernel (1.5 or 2.5).
        gp_restarts: extra starts of the GP's marginal-likelihood fit, up to 64
            observations (past that the fit starts once, from the prior's mode).
    """

    # strict: a YAML `yes` or "8" is not a count, nor 1 a switch (one clear error instead)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    max_suggestion_cost: float | None = Field(default=None, gt=0)
    global_search_scale: float = Field(default=1.0, gt=0)
    random_suggestions: Annotated[int, Field(ge=0)] | Auto = "auto"
    suggestions_per_pareto: Annotated[int, Field(ge=1)] | Auto = "auto"
    resample_frequency: int = Field(default=0, ge=0)
    neighbour_every: int = Field(default=4, ge=0)
    num_random_samples: int | None = Field(default=None, ge=0)
    seed_with_search_center: bool = True
    expansion_rate: float = Field(default=0.25, ge=0)
    acquisition_fn: Literal["auto", "naive", "ei", "ucb"] = "auto"
    ucb_beta: float = Field(default=2.0, gt=0)
    randomize_acquisition: bool = False
    cost_aware: bool = True
    log_integers: bool = True
    cost_penalty: Annotated[float, Field(ge=0, le=10)] | Auto | None = "auto"
    ei_margin: Annotated[float, Field(ge=0, le=10)] | Auto = "auto"
    hyper_draws: Annotated[int, Field(ge=0, le=64)] | Auto = "auto"
    matern_nu: float = 2.5
    gp_restarts: int = Field(default=2, ge=0)

    @field_validator("matern_nu")
    @classmethod
    def _known_nu(cls, value: float) -> float:
        if value not in (1.5, 2.5):
            raise ValueError("must be 1.5 or 2.5")
        return value

    def resolve(self, space: SpaceKind, *, stopped: bool) -> Tactics:
        """The numbers one `suggest` call searches with: each `auto` setting resolved for the
        kind of space and for whether a run was stopped (docs/optimizers.md, "Settings").

        On a small grid, a sweep reaches a good score sooner when expected improvement is
        weighed by cost against a lowered bar; on a larger discrete space, when it is
        averaged over hyperparameter draws and searched among more candidates. Once a run
        was stopped the GP also models the step of training, and there these measured
        worse, so an early-stopping sweep searches as on a continuous space.
        """
        grid = space == "small_grid" and not stopped
        wide = space == "discrete" and not stopped
        margin = self.ei_margin
        times = _WIDE_CANDIDATES if wide else 1
        return Tactics(
            random_suggestions=_auto(self.random_suggestions, _RANDOM_CANDIDATES * times),
            suggestions_per_pareto=_auto(self.suggestions_per_pareto, _PARETO_CANDIDATES * times),
            cost_penalty=_auto(self.cost_penalty, _GRID_COST_PENALTY if grid and self.cost_aware else None),
            ei_margins=(_GRID_EI_MARGINS if grid else (0.0, 0.0)) if margin == "auto" else (margin, margin),
            hyper_draws=_auto(self.hyper_draws, _HYPER_DRAWS if wide else 0) if space == "discrete" else 0,
        )


# continuous: no discrete parameter; small_grid: every parameter a categorical or a discrete
# number of at most 16 values; discrete: any other space with a discrete parameter
SpaceKind = Literal["continuous", "small_grid", "discrete"]


class Tactics(NamedTuple):
    """What `ProteinSettings.resolve` gives: the settings that depend on the space, as numbers."""

    random_suggestions: int
    suggestions_per_pareto: int
    cost_penalty: float | None
    ei_margins: tuple[float, float]  # a call's first suggestion, its others
    hyper_draws: int


class ProteinConfig(BaseModel):
    """A Protein search as the seeds describe it: metric, goal, parameters, settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    metric: str = "score"
    goal: Literal["maximize", "minimize"] = "maximize"
    method: Literal["bayes"] = "bayes"
    parameters: dict[str, Any] = Field(default_factory=dict)
    settings: ProteinSettings = Field(default_factory=ProteinSettings)


__all__ = ["ProteinConfig", "ProteinSettings", "SpaceKind", "Tactics"]
