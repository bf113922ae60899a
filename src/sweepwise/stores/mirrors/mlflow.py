"""The MLflow mirror: one MLflow run per sweepwise run, found again by its `sweepwise.run_id` tag.

Needs `pip install "sweepwise[mlflow]"` (the MLflow client, `mlflow-skinny`); imported lazily.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sweepwise.core.models import RunInfo
from sweepwise.core.status import JobStatus
from sweepwise.stores.mirrors._target import is_finished, run_metrics, run_params

RUN_ID_TAG = "sweepwise.run_id"
_END_STATUS = {JobStatus.COMPLETED: "FINISHED", JobStatus.FAILED: "FAILED", JobStatus.CANCELLED: "KILLED"}


class MlflowMirror:
    """Copies runs to an MLflow tracking server through `MlflowClient`.

    The sweepwise experiment becomes an MLflow experiment (`experiment_name`, default the
    sweepwise name); each run gets its parameters once, its numeric summary values (score
    and cost included) as metrics, tags for its status, cost and sweepwise run id, and ends
    FINISHED, FAILED or KILLED with it. MLflow's own HTTP retries are turned off for this
    process unless set (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`): the mirror's thread retries with
    backoff itself, and a server that is down must fail fast (docs/stores.md, "Mirrors").
    MLflow's printing of run URLs is turned off too: the sweep's output is sweepwise's.

    Args:
        tracking_uri: the server (`http://host:5000`), default `$MLFLOW_TRACKING_URI`.
        experiment_name: the MLflow experiment; default the sweepwise experiment's name.
    """

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # the sweep's output is ours
        self._client = MlflowClient(tracking_uri=tracking_uri)
        self._uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "default")
        self._experiment_name = experiment_name
        self._experiment_ids: dict[str, str] = {}
        self._runs: dict[str, tuple[str, bool]] = {}  # sweepwise run id -> (MLflow run id, params logged)

    @property
    def name(self) -> str:
        """`mlflow URI`."""
        return f"mlflow {self._uri}"

    def push(self, experiment: str, runs: list[RunInfo]) -> None:
        """Create or update the MLflow run of each of `runs`."""
        from mlflow.entities import Metric, Param, RunTag

        experiment_id = self._experiment_id(self._experiment_name or experiment)
        for run in runs:
            mlflow_id, has_params = self._find_or_create(experiment_id, experiment, run)
            now = int(time.time() * 1000)
            params = [] if has_params else [Param(k, _text(v)) for k, v in sorted(run_params(run).items())]
            metrics = [Metric(k, v, now, 0) for k, v in sorted(run_metrics(run).items())]
            tags = [
                RunTag("sweepwise.status", run.status.key),
                RunTag("sweepwise.cost", repr(float(run.cost))),
            ]
            if run.error:
                tags.append(RunTag("sweepwise.error", run.error[:4000]))
            self._client.log_batch(mlflow_id, metrics=metrics, params=params, tags=tags)
            self._runs[run.run_id] = (mlflow_id, True)
            end = _END_STATUS.get(run.status)
            if end is not None and is_finished(run):
                self._client.set_terminated(mlflow_id, status=end)

    def close(self) -> None:
        """Nothing to release (the client holds no connection between calls)."""

    def _experiment_id(self, name: str) -> str:
        known = self._experiment_ids.get(name)
        if known is not None:
            return known
        found = self._client.get_experiment_by_name(name)
        if found is not None:
            experiment_id = str(found.experiment_id)
        else:
            try:
                experiment_id = str(self._client.create_experiment(name))
            except Exception:  # created meanwhile by another process
                again = self._client.get_experiment_by_name(name)
                if again is None:
                    raise
                experiment_id = str(again.experiment_id)
        self._experiment_ids[name] = experiment_id
        return experiment_id

    def _find_or_create(self, experiment_id: str, experiment: str, run: RunInfo) -> tuple[str, bool]:
        known = self._runs.get(run.run_id)
        if known is not None:
            return known
        found = self._client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{_quoted(run.run_id)}'", max_results=1
        )
        if found:
            existing: Any = found[0]
            return str(existing.info.run_id), bool(existing.data.params)
        created = self._client.create_run(
            experiment_id,
            run_name=run.run_id,
            tags={RUN_ID_TAG: run.run_id, "sweepwise.experiment": experiment},
        )
        return str(created.info.run_id), False


def _text(value: Any) -> str:
    return str(value)[:6000]


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


__all__ = ["RUN_ID_TAG", "MlflowMirror"]
