"""The MLflow mirror: one MLflow run per sweepwise run, found again by its `sweepwise.run_id` tag.

Needs `pip install "sweepwise[mlflow]"` (the MLflow client, `mlflow-skinny`); imported lazily.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sweepwise.core.models import RunInfo
from sweepwise.core.status import JobStatus
from sweepwise.stores.mirrors._target import is_finished, run_metrics, run_params

RUN_ID_TAG = "sweepwise.run_id"
_END_STATUS = {
    JobStatus.COMPLETED: "FINISHED",
    JobStatus.STOPPED: "FINISHED",  # a finished trial, ended early by its stopper
    JobStatus.FAILED: "FAILED",
    JobStatus.CANCELLED: "KILLED",
}
_SETTINGS: dict[str, Any] = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": 0,  # the mirror's thread retries with backoff itself
    "MLFLOW_HTTP_REQUEST_TIMEOUT": 10,
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": True,  # the sweep's output is ours
    "MLFLOW_DISABLE_TELEMETRY": True,  # a mirror calls the user's server only
}
"""MLflow settings of the mirror's own calls, each unless the variable is set (docs/stores.md, "Mirrors")."""
_scope = threading.local()


class MlflowMirror:
    """Copies runs to an MLflow tracking server through `MlflowClient`.

    The sweepwise experiment becomes an MLflow experiment (`experiment_name`, default the
    sweepwise name); each run gets its parameters once, its numeric summary values (score
    and cost included) as metrics, tags for its status, cost and sweepwise run id, and ends
    FINISHED, FAILED or KILLED with it. For the mirror's own calls MLflow's HTTP retries are
    off and its timeout is 10 s, unless set (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, ...): the
    mirror's thread retries with backoff itself, and a server that is down must fail fast.
    MLflow's printing of run URLs and its usage telemetry are turned off too, unless set.
    None of this is put in `os.environ`: jobs the controller starts never see it
    (docs/stores.md, "Mirrors").

    Args:
        tracking_uri: the server (`http://host:5000`), default `$MLFLOW_TRACKING_URI`.
        experiment_name: the MLflow experiment; default the sweepwise experiment's name.
    """

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None) -> None:
        self._tracking_uri = tracking_uri
        self._client_: Any = None  # made on the mirror's thread: importing MLflow takes a second
        self._uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "default")
        self._experiment_name = experiment_name
        self._experiment_ids: dict[str, str] = {}
        self._runs: dict[
            str, dict[str, tuple[str, bool]]
        ] = {}  # experiment id -> run id -> (MLflow id, params)
        self._sent: dict[str, Any] = {}  # run id -> what was last sent: an unchanged run is not sent again

    @property
    def name(self) -> str:
        """`mlflow URI`."""
        return f"mlflow {self._uri}"

    def push(self, experiment: str, runs: list[RunInfo]) -> None:
        """Create or update the MLflow run of each of `runs`."""
        client = self._client  # first: a server that is down is found before MLflow is imported
        with mlflow_settings():
            experiment_id = self._experiment_id(self._experiment_name or experiment)
            known = self._known_runs(experiment_id)
            try:
                self._push(client, experiment_id, experiment, runs, known)
            except BaseException:
                # a create whose answer was lost may have happened: read the server's runs again
                self._runs.pop(experiment_id, None)
                raise

    def _push(
        self, client: Any, experiment_id: str, experiment: str, runs: list[RunInfo], known: dict[str, Any]
    ) -> None:
        """Send each changed run of `runs`, creating its MLflow run the first time."""
        from mlflow.entities import Metric, Param, RunTag

        for run in runs:
            end = _END_STATUS.get(run.status) if is_finished(run) else None
            content = (run_metrics(run), run.status.key, float(run.cost), run.error, end)
            if self._sent.get(run.run_id) == content:
                continue  # a change MLflow does not show (a dispatch id, a heartbeat)
            if run.run_id not in known:  # remembered at once: a failure below must not create it twice
                known[run.run_id] = self._create(experiment_id, experiment, run)
            mlflow_id, has_params = known[run.run_id]
            now = int(time.time() * 1000)
            params = [] if has_params else [Param(k, _text(v)) for k, v in sorted(run_params(run).items())]
            metrics = [Metric(k, v, now, 0) for k, v in sorted(content[0].items())]
            tags = [
                RunTag("sweepwise.status", run.status.key),
                RunTag("sweepwise.cost", repr(float(run.cost))),
            ]
            if run.error:
                tags.append(RunTag("sweepwise.error", run.error[:4000]))
            client.log_batch(mlflow_id, metrics=metrics, params=params, tags=tags)
            known[run.run_id] = (mlflow_id, True)
            if end is not None:
                client.set_terminated(mlflow_id, status=end)
            self._sent[run.run_id] = content

    def close(self) -> None:
        """Nothing to release (the client holds no connection between calls)."""

    @property
    def _client(self) -> Any:
        if self._client_ is None:
            _check_answers(self._tracking_uri)  # a server that is down costs no MLflow import
            from mlflow.tracking import MlflowClient

            with mlflow_settings():
                self._client_ = MlflowClient(tracking_uri=self._tracking_uri)
        return self._client_

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

    def _known_runs(self, experiment_id: str) -> dict[str, tuple[str, bool]]:
        """The experiment's MLflow runs by sweepwise run id, read once per process (one paged search).

        Then a run not in it is created without asking again: one controller per
        experiment (its lease) is the only writer. A `sweepwise mirror` run while the sweep
        runs could race it into a second MLflow run of one trial (docs/stores.md, "Mirrors").
        """
        known = self._runs.get(experiment_id)
        if known is not None:
            return known
        known, token = {}, None
        while True:
            page: Any = self._client.search_runs([experiment_id], max_results=1000, page_token=token)
            for found in page:
                run_id = found.data.tags.get(RUN_ID_TAG)
                if run_id is not None and run_id not in known:
                    known[run_id] = (str(found.info.run_id), bool(found.data.params))
            token = getattr(page, "token", None)
            if not token:
                break
        self._runs[experiment_id] = known
        return known

    def _create(self, experiment_id: str, experiment: str, run: RunInfo) -> tuple[str, bool]:
        created = self._client.create_run(
            experiment_id,
            run_name=run.run_id,
            tags={RUN_ID_TAG: run.run_id, "sweepwise.experiment": experiment},
        )
        return str(created.info.run_id), False


@contextmanager
def mlflow_settings() -> Iterator[None]:
    """Within: MLflow's reads of the `_SETTINGS` variables on this thread give the mirror's values.

    MLflow reads them from `os.environ` at each request; set there, they would reach every
    job the controller starts. So each variable's reader is wrapped, once per process, to
    answer the mirror's value inside this block (on the thread that entered it) unless the
    variable is set, and MLflow's own answer everywhere else.
    """
    _wrap_readers()
    _scope.depth = getattr(_scope, "depth", 0) + 1
    try:
        yield
    finally:
        _scope.depth -= 1


_wrapping = threading.Lock()
_wrapped: list[bool] = []  # one item once the readers are wrapped


def _wrap_readers() -> None:
    """Wrap the `get` of each `_SETTINGS` variable of `mlflow.environment_variables` (imports MLflow)."""
    if _wrapped:
        return
    import mlflow.environment_variables as variables

    with _wrapping:
        if _wrapped:
            return
        for name, value in _SETTINGS.items():
            variable = getattr(variables, name, None)
            if variable is not None:  # else not read by this MLflow
                variable.get = _reader(variable, variable.get, value)
        _wrapped.append(True)
    if "MLFLOW_DISABLE_TELEMETRY" not in os.environ:
        # MLflow decided on telemetry when it was imported, without the mirror's setting
        from mlflow.telemetry import set_telemetry_client

        _scope.depth = getattr(_scope, "depth", 0) + 1
        try:
            set_telemetry_client()  # type: ignore[no-untyped-call]
        finally:
            _scope.depth -= 1


def _reader(variable: Any, read: Any, value: Any) -> Any:
    def get() -> Any:
        if getattr(_scope, "depth", 0) and variable.name not in os.environ:
            return value
        return read()

    return get


def _check_answers(uri: str | None) -> None:
    """Raise `OSError` unless the HTTP tracking server at `uri` answers `/health` (other URIs pass)."""
    if uri is None or not uri.startswith(("http://", "https://")):
        return
    with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5) as response:
        response.read()


def _text(value: Any) -> str:
    return str(value)[:6000]


__all__ = ["RUN_ID_TAG", "MlflowMirror", "mlflow_settings"]
