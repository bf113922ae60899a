"""Cancelling runs and experiments from outside the controller (`sweepwise cancel`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sweepwise.core.errors import SweepwiseError
from sweepwise.core.models import RunInfo
from sweepwise.core.protocols import Dispatcher
from sweepwise.stores.sql import SQLStore


def _dispatch_ids(run: RunInfo) -> list[str]:
    ids = []
    if run.train_dispatch_id and not run.has_completed_training:
        ids.append(run.train_dispatch_id)
    if run.eval_dispatch_id and not run.has_been_evaluated:
        ids.append(run.eval_dispatch_id)
    return ids


def _stop_jobs(record_spec: dict[str, Any], experiment: str, runs: Sequence[RunInfo]) -> None:
    spec = record_spec.get("spec", {})
    dispatcher = spec.get("dispatcher", {}).get("type", "local")
    runs_root = Path(record_spec.get("runs_root", "runs"))
    stopper: Dispatcher
    if dispatcher == "slurm":  # scancel; its options do not matter to cancelling
        from sweepwise.dispatchers.slurm import SlurmDispatcher

        stopper = SlurmDispatcher(runs_root, experiment)
    elif dispatcher == "local":
        from sweepwise.dispatchers.local import LocalDispatcher

        stopper = LocalDispatcher(runs_root, experiment, grace_period=5.0)
    else:
        return
    for run in runs:
        for dispatch_id in _dispatch_ids(run):
            stopper.cancel(dispatch_id)


def cancel_target(store: SQLStore, target: str, kind: str | None = None) -> str:
    """Cancel the experiment named `target`, or the run with that id; say what was done.

    A finished run, or a complete experiment with no unfinished run, is left as it is
    and the message says so.

    Args:
        store: the store holding both.
        target: an experiment's name or a run's id.
        kind: "experiment" or "run" when the user said which; None to find out.

    Raises:
        SweepwiseError: nothing is called `target`, or both an experiment and a run are
            and `kind` does not say which.
    """
    record = store.get_experiment(target) if kind != "run" else None
    if kind is None and record is not None and store.fetch_runs({"run_id": target}):
        raise SweepwiseError(
            f"{target!r} is both an experiment and a run id; say which with --experiment or --run"
        )
    if record is not None:
        active = [run for run in store.fetch_runs({"group": target}) if not run.status.is_finished()]
        if record.status == "complete" and not active:
            # a finished experiment keeps its status: cancelling it would rewrite its history
            return f"experiment {target!r} has already finished ({record.status}); nothing to cancel"
        store.set_experiment_status(target, "cancelled")
        cancelled = [run for run in active if store.cancel_run(run.run_id)]
        _stop_jobs(record.spec, target, cancelled)
        return f"cancelled experiment {target!r} ({len(cancelled)} unfinished run(s) stopped)"
    runs = store.fetch_runs({"run_id": target}) if kind != "experiment" else []
    if not runs:
        what = {"run": "run", "experiment": "experiment"}.get(kind or "", "experiment or run")
        raise SweepwiseError(f"no {what} named {target!r}; see `sweepwise status`")
    run = runs[0]
    if not store.cancel_run(run.run_id):
        return f"run {target!r} had already finished ({run.status.value}); nothing to cancel"
    owner = store.get_experiment(run.group or "")
    if owner is not None:
        _stop_jobs(owner.spec, owner.name, [run])
    return f"cancelled run {target!r}"


__all__ = ["cancel_target"]
