"""The W&B mirror: one W&B run per sweepwise run, grouped by experiment.

Needs `pip install "sweepwise[wandb]"`; imported lazily. A W&B run's id is derived from
the sweepwise run id, and runs are opened with `resume="allow"`: mirroring a run again
updates the same W&B run. Only finished runs are mirrored (a W&B run is opened, updated
and finished in one go), so an unfinished sweep shows its finished trials.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sweepwise.core.models import RunInfo
from sweepwise.core.status import JobStatus
from sweepwise.stores.mirrors._target import is_finished, run_metrics, run_params


def wandb_run_id(run_id: str) -> str:
    """A stable W&B run id for a sweepwise run (W&B ids are short and may not hold `/`)."""
    return "sw-" + hashlib.sha256(run_id.encode()).hexdigest()[:20]


def open_run(
    *,
    project: str,
    entity: str | None,
    mode: str | None,
    dir: str | None,
    group: str | None,
    run_id: str,
    config: dict[str, Any] | None = None,
    tags: list[str] | None = None,
) -> Any:
    """`wandb.init` of sweepwise run `run_id`'s W&B run, resumed if it exists; silent, no console capture."""
    import wandb

    return wandb.init(
        project=project,
        entity=entity,
        group=group,
        name=run_id,
        id=wandb_run_id(run_id),
        resume="allow",
        mode=mode,  # type: ignore[arg-type]
        dir=dir,
        config=config,
        tags=tags,
        settings=wandb.Settings(silent=True, console="off"),
        reinit="create_new",
    )


class WandbMirror:
    """Copies finished runs to W&B (`mode`: `online`, or `offline` for files under `dir`).

    Args:
        project: the W&B project.
        entity: the W&B entity (user or team); default W&B's.
        mode: `online` or `offline` (default `$WANDB_MODE`, else `online`).
        dir: where W&B keeps its files (default W&B's: `./wandb`).
    """

    def __init__(
        self, project: str, entity: str | None = None, mode: str | None = None, dir: str | None = None
    ) -> None:
        import wandb  # noqa: F401  (checked here: a missing extra fails at build time, not in the thread)

        self.project, self.entity, self.mode, self.dir = project, entity, mode, dir

    @property
    def name(self) -> str:
        """`wandb ENTITY/PROJECT`."""
        return f"wandb {self.entity + '/' if self.entity else ''}{self.project}"

    def push(self, experiment: str, runs: list[RunInfo]) -> None:
        """Open, update and finish the W&B run of each finished run of `runs`."""
        for run in runs:
            if not is_finished(run):
                continue
            wb = open_run(
                project=self.project,
                entity=self.entity,
                mode=self.mode,
                dir=self.dir,
                group=experiment,
                run_id=run.run_id,
                config=run_params(run),
                tags=[f"status:{run.status.key}"],
            )
            wb.summary.update(
                {
                    **run_metrics(run),
                    "sweepwise/run_id": run.run_id,
                    "sweepwise/status": run.status.key,
                    "sweepwise/cost": float(run.cost),
                }
            )
            wb.finish(exit_code=0 if run.status is JobStatus.COMPLETED else 1)

    def close(self) -> None:
        """Nothing to release (each run is finished when pushed)."""


__all__ = ["WandbMirror", "open_run", "wandb_run_id"]
