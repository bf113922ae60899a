"""Protein's settings, and `ProteinConfig`, the seed's way to describe a Protein search."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ProteinSettings(BaseModel):
    """How Protein searches (docs/optimizers.md, "How Protein searches"). Defaults suit 10–500 observations.

    Attributes:
        max_suggestion_cost: candidates whose predicted cost exceeds this are not suggested.
        global_search_scale: multiplies every parameter's `scale` (the search box and the
            size of the steps taken around Pareto points).
        random_suggestions: uniform candidates drawn over the whole box per suggestion.
        suggestions_per_pareto: candidates drawn around each Pareto-front point.
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
        cost_penalty: None (the default) or expected improvement per cost: when observed
            costs differ, EI is weighed by exp(-cost_penalty * z) in place of the cost
            targets, z being a candidate's predicted log cost scaled to [0, 1] over the
            observed range; at most 10.
        ei_margin: expected improvement is measured against the best run less this many
            standard deviations of the (Gaussianised) scores: a greedier search, which
            credits points predicted close to the best. 0 by default, at most 10.
        hyper_draws: on a space with a discrete parameter that is not one small grid, up to
            64 observations, expected improvement is the mean over this many GPs whose
            hyperparameters are drawn from their posterior (random-walk Metropolis from the
            fit); 0 (the default) uses the fitted hyperparameters alone. At most 64.
        matern_nu: smoothness of the GP's Matérn kernel (1.5 or 2.5).
        gp_restarts: extra starts of the GP's marginal-likelihood fit, up to 64
            observations (past that the fit starts once, from the prior's mode).
    """

    # strict: a YAML `yes` or "8" is not a count, nor 1 a switch (one clear error instead)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    max_suggestion_cost: float | None = Field(default=None, gt=0)
    global_search_scale: float = Field(default=1.0, gt=0)
    random_suggestions: int = Field(default=512, ge=0)
    suggestions_per_pareto: int = Field(default=128, ge=1)
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
    cost_penalty: float | None = Field(default=None, ge=0, le=10)
    ei_margin: float = Field(default=0.0, ge=0, le=10)
    hyper_draws: int = Field(default=0, ge=0, le=64)
    matern_nu: float = 2.5
    gp_restarts: int = Field(default=2, ge=0)

    @field_validator("matern_nu")
    @classmethod
    def _known_nu(cls, value: float) -> float:
        if value not in (1.5, 2.5):
            raise ValueError("must be 1.5 or 2.5")
        return value


class ProteinConfig(BaseModel):
    """A Protein search as the seeds describe it: metric, goal, parameters, settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    metric: str = "score"
    goal: Literal["maximize", "minimize"] = "maximize"
    method: Literal["bayes"] = "bayes"
    parameters: dict[str, Any] = Field(default_factory=dict)
    settings: ProteinSettings = Field(default_factory=ProteinSettings)


__all__ = ["ProteinConfig", "ProteinSettings"]
