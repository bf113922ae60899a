"""A recipe that uses the custom scheduler (importing its module registers it)."""

from __future__ import annotations

from custom_scheduler_pkg.every_other import EveryOtherConfig
from sweepwise.recipes import AdaptiveTool


def every_other(max_trials: int = 4, low: float = 0.25) -> AdaptiveTool:
    """Alternate `x` between `low` and the config's `high` for `max_trials` trials."""
    config = EveryOtherConfig(
        recipe_module="custom_scheduler_pkg.jobs",
        experiment_id="every_other_recipe",
        max_trials=max_trials,
        low=low,
    )
    return AdaptiveTool(
        scheduler_type="every_other", scheduler=config, max_parallel=2, monitoring_interval=1.0
    )
