"""Cancelling runs and experiments from outside the controller (`sweepwise cancel`).

A run's jobs are stopped through the dispatcher each was started with: the one its
experiment's record names for the job's stage (`dispatcher`, `eval_dispatcher`), built
through the dispatcher registry (`sweepwise.app.backends.recorded_dispatcher`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sweepwise.app.backends import SIMULATED, recorded_dispatcher, recorded_stage
from sweepwise.core.errors import SweepwiseError
from sweepwise.core.models import JobTypes, RunInfo

if TYPE_CHECKING:
    from sweepwise.core.protocols import Dispatcher
    from sweepwise.stores import ExperimentRecord
    from sweepwise.stores.sql import SQLStore


class _JobStopper:
    """Stops runs' jobs through the dispatchers their experiment's record names, per stage.

    The dispatchers are built before anything is cancelled, so a spec whose `imports:`
    no longer import fails the command without changing the store.
    """

    def __init__(self, record: ExperimentRecord) -> None:
        self._parts: dict[JobTypes, Dispatcher | None] = {}
        self._names: dict[JobTypes, str] = {}
        built: dict[str, Dispatcher | None] = {}  # one instance when both stages are alike
        for job_type in JobTypes:
            stage = recorded_stage(record.spec, job_type)
            key = json.dumps(stage, sort_keys=True, default=str)
            if key not in built:
                built[key] = recorded_dispatcher(
                    record.spec, record.name, job_type, incarnation=record.incarnation
                )
            self._parts[job_type] = built[key]
            self._names[job_type] = str(stage["type"])

    def stop(self, runs: Sequence[RunInfo]) -> str:
        """Cancel the unfinished jobs of `runs`, then close the dispatchers.

        Returns:
            A note naming the dispatchers of jobs that could not be stopped ("" if none).
        """
        unreachable: set[str] = set()
        for run in runs:
            for job_type, dispatch_id, done in (
                (JobTypes.LAUNCH_TRAINING, run.train_dispatch_id, run.has_completed_training),
                (JobTypes.LAUNCH_EVAL, run.eval_dispatch_id, run.has_been_evaluated),
            ):
                if dispatch_id is None or done:
                    continue
                dispatcher = self._parts[job_type]
                if dispatcher is None:
                    unreachable.add(self._names[job_type])
                else:
                    dispatcher.cancel(dispatch_id)
        self.close()
        names = sorted(name for name in unreachable if name != SIMULATED and not name.startswith("ax:"))
        if not names:
            return ""
        return f"; their jobs on {', '.join(names)} were not stopped: no such dispatcher is registered here"

    def close(self) -> None:
        """Close the dispatchers that can be closed."""
        for dispatcher in dict.fromkeys(part for part in self._parts.values() if part is not None):
            close = getattr(dispatcher, "close", None)
            if close is not None:
                close()


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
        stopper = _JobStopper(record)
        store.set_experiment_status(target, "cancelled")
        cancelled = [run for run in active if store.cancel_run(run.run_id)]
        note = stopper.stop(cancelled)
        return f"cancelled experiment {target!r} ({len(cancelled)} unfinished run(s) stopped){note}"
    runs = store.fetch_runs({"run_id": target}) if kind != "experiment" else []
    if not runs:
        what = {"run": "run", "experiment": "experiment"}.get(kind or "", "experiment or run")
        raise SweepwiseError(f"no {what} named {target!r}; see `sweepwise status`")
    run = runs[0]
    owner = store.get_experiment(run.group or "") if not run.status.is_finished() else None
    run_stopper = _JobStopper(owner) if owner is not None else None
    if not store.cancel_run(run.run_id):
        if run_stopper is not None:
            run_stopper.close()
        return f"run {target!r} had already finished ({run.status.value}); nothing to cancel"
    note = run_stopper.stop([run]) if run_stopper is not None else ""
    return f"cancelled run {target!r}{note}"


__all__ = ["cancel_target"]
