"""Mirrors (docs/stores.md, "Mirrors"): a fake target for the queue's rules, a real MLflow server and
W&B's real offline mode for the targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, cli, status_json
from helpers import wandb_records
from mlflow_server import MlflowServer
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import JobDefinition, JobTypes, RunInfo
from sweepwise.core.protocols import ExperimentStore
from sweepwise.stores import MirroredStore, SQLStore
from sweepwise.stores.mirrors import check_mirror, marker_key, mirror_status

# -- the wrapper and its queue, with a fake target ---------------------------------------------


class FakeTarget:
    """Keeps the latest copy of each run; fails while `down` is set."""

    name = "fake"

    def __init__(self) -> None:
        self.runs: dict[str, RunInfo] = {}
        self.pushes = 0
        self.down = threading.Event()
        self.pushed = threading.Event()

    def push(self, experiment: str, runs: list[RunInfo]) -> None:
        if self.down.is_set():
            raise ConnectionError("target down")
        for run in runs:
            self.runs[run.run_id] = run
        self.pushes += 1
        self.pushed.set()

    def close(self) -> None:
        pass


def _intent(store: Any, experiment: str, index: int) -> None:
    run_id = f"{experiment}_trial_{index:04d}"
    job = JobDefinition(run_id=run_id, cmd="python train.py", type=JobTypes.LAUNCH_TRAINING)
    store.record_training_intent(experiment, job, {"x": index / 10}, index)


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


@pytest.fixture
def sql(tmp_path: Path) -> Iterator[SQLStore]:
    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    store.ensure_experiment("exp", {})
    yield store
    store.close()


def test_the_wrapper_is_an_experiment_store_and_forwards_the_rest(sql: SQLStore) -> None:
    mirrored = MirroredStore(sql, FakeTarget(), "exp")
    try:
        assert isinstance(mirrored, ExperimentStore)
        assert mirrored.url == sql.url and mirrored.get_experiment("exp") is not None
    finally:
        mirrored.worker.close(1.0)


def test_every_commit_reaches_the_target_and_the_marker_follows(sql: SQLStore) -> None:
    target = FakeTarget()
    mirrored = MirroredStore(sql, target, "exp")
    for index in range(3):
        _intent(mirrored, "exp", index)
    with mirrored.transaction() as tx:
        tx.update_run_summary("exp_trial_0001", {"observation/score": 0.5})
    assert mirrored.worker.flush(60.0) and mirrored.worker.close(60.0)
    assert sorted(target.runs) == ["exp_trial_0000", "exp_trial_0001", "exp_trial_0002"]
    assert target.runs["exp_trial_0001"].summary["observation/score"] == 0.5
    marker = sql.load_state(marker_key("exp"))
    assert marker is not None and marker["fake"]["seq"] == sql.fetch_changed("exp", 0)[1]
    assert mirror_status(sql, "exp") == [
        {"target": "fake", "seq": marker["fake"]["seq"], "runs_behind": 0, "last_error": None}
    ]


def test_a_failing_target_neither_fails_nor_blocks_writes_and_catches_up_later(sql: SQLStore) -> None:
    target = FakeTarget()
    target.down.set()
    mirrored = MirroredStore(sql, target, "exp")
    for index in range(4):
        _intent(mirrored, "exp", index)  # no error reaches the writer
    _wait_for(lambda: mirrored.worker.last_error is not None)
    assert not mirrored.worker.close(60.0)  # not flushed, and not waited for
    rows = mirror_status(sql, "exp")
    assert rows[0]["runs_behind"] == 4 and "target down" in rows[0]["last_error"]
    assert target.runs == {}

    target.down.clear()  # the next run's wrapper starts from the marker: nothing was dropped
    again = MirroredStore(sql, target, "exp")
    assert again.worker.flush(60.0) and again.worker.close(60.0)
    assert len(target.runs) == 4
    assert mirror_status(sql, "exp")[0]["runs_behind"] == 0


def test_a_target_that_comes_back_during_the_sweep_is_retried_with_backoff(sql: SQLStore) -> None:
    target = FakeTarget()
    target.down.set()
    mirrored = MirroredStore(sql, target, "exp")
    _intent(mirrored, "exp", 0)
    _wait_for(lambda: mirrored.worker.last_error is not None)
    target.down.clear()
    _wait_for(target.pushed.is_set)  # no new commit needed: the retry takes it
    assert mirrored.worker.flush(60.0) and mirrored.worker.close(60.0)
    assert list(target.runs) == ["exp_trial_0000"] and mirrored.worker.last_error is None


def test_the_mirror_spec_is_checked() -> None:
    assert check_mirror(None) is None
    assert check_mirror("mlflow") == {"type": "mlflow"}
    with pytest.raises(ConfigError, match="unknown mirror 'neptune'"):
        check_mirror("neptune")
    with pytest.raises(ConfigError, match="mirror.project"):
        check_mirror({"type": "wandb"})
    with pytest.raises(ConfigError, match="mirror.flush_timeout: must be a number of seconds >= 0"):
        check_mirror({"type": "mlflow", "flush_timeout": -1})
    with pytest.raises(ConfigError, match="mirror.trackinguri: unknown option"):
        check_mirror({"type": "mlflow", "trackinguri": "x"})


def test_a_missing_package_is_one_line_naming_the_extra(tmp_path: Path, make_sweep: Any) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    # `sys.modules[name] = None` is how Python spells "this module cannot be imported"
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['mlflow'] = None\n")
    import os

    spec = make_sweep("exp", mirror="mlflow")
    env = {"PYTHONPATH": f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = cli("run", str(spec), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: mirror: needs the mlflow package; pip install "sweepwise[mlflow]"'
    ]
    assert not (tmp_path / "sweepwise.db").exists()


# -- a real MLflow server ------------------------------------------------------------------------


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path / "mlflow")
    server.start()
    yield server
    server.stop()


def _mlflow_runs(uri: str, experiment: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else list(client.search_runs([found.experiment_id], max_results=1000))


def _check_one_mlflow_run_per_trial(uri: str, cwd: Path, experiment: str) -> None:
    rows = status_json(cwd, experiment)["runs"]
    by_tag = {}
    for run in _mlflow_runs(uri, experiment):
        run_id = run.data.tags["sweepwise.run_id"]
        assert run_id not in by_tag, f"{run_id} mirrored twice"
        by_tag[run_id] = run
    assert sorted(by_tag) == sorted(row["run_id"] for row in rows)
    for row in rows:
        run = by_tag[row["run_id"]]
        assert {k: float(v) for k, v in run.data.params.items()} == pytest.approx(row["suggestion"])
        assert run.data.metrics["score"] == pytest.approx(row["score"])
        assert run.data.metrics["cost"] == pytest.approx(row["cost"])
        assert run.data.tags["sweepwise.status"] == row["status"]
        assert run.info.status == ("FINISHED" if row["status"] == "completed" else "FAILED")


@pytest.mark.slow
def test_the_quickstart_mirrored_to_mlflow_lists_one_run_per_trial(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    spec = yaml.safe_load((REPO / "examples" / "quickstart" / "sweep.yaml").read_text())
    spec["mirror"] = {"type": "mlflow", "tracking_uri": mlflow_server.uri}
    work = tmp_path / "work"
    work.mkdir()
    for name in ("train.py", "eval.py", "data.py"):
        (work / name).write_text((REPO / "examples" / "quickstart" / name).read_text())
    (work / "sweep.yaml").write_text(yaml.safe_dump(spec))
    result = cli("run", str(work / "sweep.yaml"), "--quiet", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "View run" not in result.stdout  # MLflow's own printing stays out of the sweep's output
    _check_one_mlflow_run_per_trial(mlflow_server.uri, work, "quickstart")
    assert len(status_json(work, "quickstart")["runs"]) == 8
    shown = cli("status", "quickstart", cwd=work).stdout
    assert f"mirror mlflow {mlflow_server.uri}: up to date" in shown


MLFLOW_SETTINGS = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT",
    "MLFLOW_DISABLE_TELEMETRY",
)


def test_the_mirrors_mlflow_settings_hold_for_its_own_calls_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.environment_variables as variables

    from sweepwise.stores.mirrors.mlflow import mlflow_settings

    for name in MLFLOW_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "33")  # the user's own setting wins
    retries, timeout = variables.MLFLOW_HTTP_REQUEST_MAX_RETRIES, variables.MLFLOW_HTTP_REQUEST_TIMEOUT
    elsewhere: list[Any] = []
    with mlflow_settings():
        assert (retries.get(), timeout.get()) == (0, 33)
        assert variables.MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.get() is True
        other = threading.Thread(target=lambda: elsewhere.append(retries.get()))
        other.start()
        other.join()
        in_environ = {name: os.environ[name] for name in MLFLOW_SETTINGS if name in os.environ}
        assert in_environ == {"MLFLOW_HTTP_REQUEST_TIMEOUT": "33"}
    assert elsewhere == [retries.default]  # another thread (the controller's) is not in the block
    assert (retries.get(), timeout.get()) == (retries.default, 33)


# A train job that writes the MLflow settings it sees, then trains as conftest's does.
ENV_TRAIN = (
    "import json, os\n"
    f"names = {list(MLFLOW_SETTINGS)!r}\n"
    "with open(os.path.join(os.environ['MARKERS'], 'env.txt'), 'a') as f:\n"
    "    f.write(json.dumps({name: os.environ.get(name) for name in names}) + '\\n')\n"
)


@pytest.mark.slow
def test_jobs_of_an_mlflow_mirrored_sweep_see_none_of_the_mirrors_settings(
    tmp_path: Path, mlflow_server: MlflowServer, make_sweep: Any
) -> None:
    from conftest import TRAIN

    spec = make_sweep("exp", mirror={"type": "mlflow", "tracking_uri": mlflow_server.uri})
    (tmp_path / "train.py").write_text(ENV_TRAIN + TRAIN)
    user = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "33"}  # set before the controller started: the jobs keep it
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, env=user)
    assert result.returncode == 0, result.stderr
    seen = [json.loads(line) for line in (tmp_path / "markers" / "env.txt").read_text().splitlines()]
    assert len(seen) == 6
    expected = {name: None for name in MLFLOW_SETTINGS} | user
    assert all(row == expected for row in seen), seen
    assert cli("mirror", "exp", cwd=tmp_path).returncode == 0  # whatever the end-of-sweep flush left
    _check_one_mlflow_run_per_trial(mlflow_server.uri, tmp_path, "exp")


@pytest.mark.slow
def test_an_mlflow_server_stopped_mid_sweep_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, mlflow_server: MlflowServer, make_sweep: Any
) -> None:
    gate = tmp_path / "gate"
    spec = make_sweep("exp", mirror={"type": "mlflow", "tracking_uri": mlflow_server.uri})
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=tmp_path,
        env={**__import__("os").environ, "TRAIN_GATE": str(gate)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: len(_mlflow_runs(mlflow_server.uri, "exp")) >= 1, timeout=180)
        mlflow_server.stop()  # mid-sweep: the first batch is training, behind the gate
        gate.touch()
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    status = status_json(tmp_path, "exp")
    assert [row["status"] for row in status["runs"]] == ["completed"] * 6
    (mirror,) = status["mirrors"]
    assert mirror["runs_behind"] > 0 and mirror["last_error"]
    line = cli("status", "exp", cwd=tmp_path).stdout
    assert "not yet mirrored; last error:" in line

    mlflow_server.start()
    caught_up = cli("mirror", "exp", cwd=tmp_path)
    assert caught_up.returncode == 0, caught_up.stderr
    assert "up to date" in caught_up.stdout
    _check_one_mlflow_run_per_trial(mlflow_server.uri, tmp_path, "exp")
    assert status_json(tmp_path, "exp")["mirrors"][0]["runs_behind"] == 0

    # Mirroring everything again (the marker lost) updates the same MLflow runs
    with SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}") as store:
        store.save_state(marker_key("exp"), {})
    assert cli("mirror", "exp", cwd=tmp_path).returncode == 0
    _check_one_mlflow_run_per_trial(mlflow_server.uri, tmp_path, "exp")
    again = cli("run", str(spec), cwd=tmp_path)  # a second run: resumes, mirror already up to date
    assert again.returncode == 0, again.stderr
    _check_one_mlflow_run_per_trial(mlflow_server.uri, tmp_path, "exp")


def test_mirror_without_a_mirror_in_the_spec_says_so(tmp_path: Path, make_sweep: Any) -> None:
    spec = make_sweep("plain", scheduler={"type": "batched_synced", "max_trials": 1, "batch_size": 1})
    assert cli("run", str(spec), "--quiet", cwd=tmp_path).returncode == 0
    result = cli("mirror", "plain", cwd=tmp_path)
    assert result.returncode == 1 and "has no mirror" in result.stderr


# -- W&B, offline for real -----------------------------------------------------------------------


@pytest.mark.slow
def test_wandb_offline_runs_hold_the_params_and_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    from sweepwise.stores.mirrors.wandb import WandbMirror, wandb_run_id

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = RunInfo(
        run_id="exp_trial_0001",
        group="exp",
        summary={"observation/suggestion": {"lr": 0.1, "width": 4}, "observation/score": 0.9},
        has_started_training=True,
        has_completed_training=True,
        has_started_eval=True,
        has_been_evaluated=True,
        cost=2.5,
    )
    pending = RunInfo(run_id="exp_trial_0002", group="exp", has_started_training=True)
    mirror = WandbMirror(project="sweeps", mode="offline", dir=str(tmp_path))
    mirror.push("exp", [run, pending])
    files = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert [f.name for f in files] == [f"run-{wandb_run_id('exp_trial_0001')}.wandb"]  # finished runs only
    records = wandb_records(files[0])
    (header,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert header.run_group == "exp" and header.display_name == "exp_trial_0001"
    config = {item.key: json.loads(item.value_json) for item in header.config.update}
    assert config["lr"] == 0.1 and config["width"] == 4
    summary: dict[str, Any] = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            summary.update({item.key: json.loads(item.value_json) for item in record.summary.update})
    assert summary["score"] == 0.9 and summary["cost"] == 2.5
    assert summary["sweepwise/run_id"] == "exp_trial_0001" and summary["sweepwise/status"] == "completed"
