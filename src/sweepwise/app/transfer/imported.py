"""`sweepwise import`: finished runs from elsewhere recorded as a finished experiment.

Each imported run is written as a sweep would leave it: a training intent with its
parameters as the suggestion, then its training and eval finished at once
(`sweepwise.core.lifecycle.completed_events`) with `observation/score` and, when known,
`observation/cost`. So `sweepwise status` and `best` show it, and a sweep that names the
experiment in `warm_start` learns from it (docs/stores.md, "Export and import").
Everything is one transaction: bad input or a failed write leaves the store as it was.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweepwise.core import keys
from sweepwise.core.errors import ConfigError
from sweepwise.core.lifecycle import completed_events
from sweepwise.core.models import JobDefinition, JobEvent
from sweepwise.schedulers.base import generate_run_id

if TYPE_CHECKING:
    from sweepwise.stores.sql import SQLStore


@dataclass(frozen=True)
class ImportedRun:
    """One finished run to import.

    Attributes:
        params: its hyperparameters, flat `{dot.path: value}`.
        score: its score (finite).
        cost: its cost (>= 0), or None to count its runtime as its cost.
        runtime: how long it ran, in seconds.
        result: other values it reported (its eval result).
    """

    params: dict[str, Any]
    score: float
    cost: float | None = None
    runtime: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)


def record_import(
    store: SQLStore,
    name: str,
    runs: Sequence[ImportedRun],
    *,
    metric: str,
    goal: str,
    source: str,
) -> int:
    """Create experiment `name`, complete, holding `runs` as COMPLETED runs; in one transaction.

    Args:
        store: the store to write to.
        name: the new experiment's name.
        runs: the runs, in trial order.
        metric: what the score is (`sweepwise best` shows it).
        goal: `maximize` or `minimize`.
        source: where the runs come from (`csv` or `optuna`), recorded with the experiment.

    Returns:
        How many runs were imported.

    Raises:
        ConfigError: an experiment `name` exists already.
        StoreError: the store failed (nothing was written).
    """
    record = {
        "spec": {"name": name, "metric": metric, "goal": goal, "dispatcher": {"type": f"import:{source}"}},
        "kind": "import",
        "source": source,
        "runs_root": ".",
    }
    now = time.time()
    events: list[JobEvent] = []
    observations: dict[str, dict[str, Any]] = {}
    with store.transaction() as tx:
        if tx.get_experiment(name) is not None:
            raise ConfigError(
                "NAME", f"experiment {name!r} exists already in {store.url}; import under another name"
            )
        tx.ensure_experiment(name, record)
        for index, run in enumerate(runs):
            run_id = generate_run_id(name, index + 1)
            job = JobDefinition(
                run_id=run_id,
                cmd=f"sweepwise import ({source})",
                overrides=dict(run.params),
                metadata={keys.SUGGESTION_METADATA: dict(run.params)},
            )
            tx.record_training_intent(name, job, dict(run.params), index)
            events += completed_events(run_id, dict(run.result), now - run.runtime, now)
            observation: dict[str, Any] = {keys.OBSERVATION_SCORE: run.score}
            if run.cost is not None:
                observation[keys.OBSERVATION_COST] = run.cost
            observations[run_id] = observation
        tx.apply_events(events, observations)
        tx.set_experiment_status(name, "complete")
    return len(runs)


__all__ = ["ImportedRun", "record_import"]
