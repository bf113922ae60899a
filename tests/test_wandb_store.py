"""`WandbStore` (seed 002; docs/stores.md, "WandbStore"): W&B runs written through from a SQL ledger.

W&B's service cannot be reached from the test machines: these tests talk to a fake of
`wandb.Api` at the client boundary (tests/fake_wandb.py, which says which documented
semantics it keeps: upserted runs, whole-summary writes, cached and eventually consistent
reads), with transient and permanent failures injected. W&B's offline mode
(`WANDB_MODE=offline`) is run for real, and its run files read back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, markers
from fake_wandb import FakeWandb
from helpers import wandb_records
from sweepwise.core import keys
from sweepwise.core.clock import VirtualClock
from sweepwise.core.errors import ConfigError, StoreError
from sweepwise.core.models import JobDefinition, JobStatus, JobTypes, RunInfo
from sweepwise.core.protocols import ExperimentStore, Store
from sweepwise.dispatchers.simulated import SimOutcome, SimulatedDispatcher
from sweepwise.engine.controller import AdaptiveController, ControllerHooks, ControllerSettings
from sweepwise.engine.hooks import ObservationHook
from sweepwise.schedulers.base import JobSpec
from sweepwise.schedulers.batched_synced import BatchedSyncedOptimizingScheduler, BatchedSyncedSchedulerConfig
from sweepwise.stores._wandb_runs import WandbRuns, run_from_wandb, wandb_filters
from sweepwise.stores.location import check_store_url, open_store
from sweepwise.stores.mirrors.wandb import wandb_run_id
from sweepwise.stores.sql import SQLStore
from sweepwise.stores.wandb_store import WandbStore, parse_wandb_url

ENTITY, PROJECT = "team", "sweeps"


@pytest.fixture
def fake(tmp_path: Path) -> FakeWandb:
    return FakeWandb(tmp_path / "wandb.json")


def client(fake: FakeWandb, retries: int = 6) -> WandbRuns:
    return WandbRuns(PROJECT, ENTITY, api=fake.api, retries=retries, backoff=0.001)


def w_path(run_id: str) -> str:
    return f"{ENTITY}/{PROJECT}/{wandb_run_id(run_id)}"


# -- the seed's three calls, on the fake W&B ------------------------------------------------------


def test_runs_are_grouped_by_experiment_and_filtered(fake: FakeWandb) -> None:
    runs = client(fake)
    assert isinstance(runs, Store)
    runs.init_run("a_trial_0001", "a", ["x"], {keys.OBSERVATION_SUGGESTION: {"lr": 0.1}})
    runs.init_run("a_trial_0002", "a")
    runs.init_run("b_trial_0001", "b")
    assert runs.update_run_summary("a_trial_0002", {keys.TRAINING_STARTED: True}) is True
    assert runs.update_run_summary("nobody", {"x": 1}) is False

    reader = client(fake)  # another process: sees W&B only
    assert [r.run_id for r in reader.fetch_runs({"group": "a"})] == ["a_trial_0001", "a_trial_0002"]
    assert [r.group for r in reader.fetch_runs({"group": "b"})] == ["b"]
    (one,) = reader.fetch_runs({"run_id": "a_trial_0001"})
    assert one.tags == ["x"] and one.suggestion == {"lr": 0.1} and one.status is JobStatus.PENDING
    both = reader.fetch_runs({"group": "a", "run_id": ["a_trial_0001", "b_trial_0001"]})
    assert [r.run_id for r in both] == ["a_trial_0001"]
    assert [r.run_id for r in reader.fetch_runs({"group": "a", "status": "IN TRAINING"})] == ["a_trial_0002"]
    with pytest.raises(ValueError, match="unknown filter 'since_seq'"):
        reader.fetch_runs({"since_seq": 3})
    assert wandb_filters({"group": "a", "run_id": "r"}) == {
        "$and": [{"group": "a"}, {"name": {"$in": [wandb_run_id("r")]}}]
    }
    run = fake.read()["runs"][w_path("a_trial_0001")]
    assert run["group"] == "a" and run["name"] == "a_trial_0001" and run["tags"] == ["x"]


def test_transient_errors_are_retried_with_backoff_and_permanent_ones_are_not(fake: FakeWandb) -> None:
    runs = client(fake, retries=4)
    fake.set(fail=3)
    runs.init_run("r1", "g")  # three lost connections, then it goes through
    assert fake.read()["calls"]["failed"] == 3
    assert fake.read()["runs"][w_path("r1")]["summary"]["sweepwise/run_id"] == "r1"

    fake.set(fail=4)
    before = fake.read()["calls"]["total"]
    with pytest.raises(
        StoreError, match=r"could not update the summary of run r1 in W&B team/sweeps after 4 attempts"
    ):
        runs.update_run_summary("r1", {"x": 1})
    assert fake.read()["calls"]["total"] - before == 4

    fake.set(fail=0, deny=True)
    before = fake.read()["calls"]["total"]
    with pytest.raises(StoreError, match=r"HTTP 403; check the entity, the project and the API key") as info:
        runs.fetch_runs({"group": "g"})
    assert "\n" not in str(info.value)
    assert fake.read()["calls"]["total"] - before == 1  # not retried


@pytest.mark.parametrize(
    ("state", "summary", "status"),
    [
        ("running", {}, JobStatus.IN_TRAINING),  # a job's own run, no sweepwise flags
        ("finished", {}, JobStatus.TRAINING_DONE_NO_EVAL),
        ("finished", {keys.EVAL_STARTED: True}, JobStatus.IN_EVAL),
        ("finished", {keys.EVAL_STARTED: True, keys.EVAL_COMPLETED: True}, JobStatus.COMPLETED),
        ("crashed", {}, JobStatus.FAILED),
        ("failed", {}, JobStatus.FAILED),
        ("killed", {}, JobStatus.CANCELLED),
        ("running", {keys.TRAINING_STARTED: False}, JobStatus.PENDING),  # sweepwise's flags win
        ("finished", {keys.TRAINING_COMPLETED: False}, JobStatus.IN_TRAINING),
        ("running", {keys.RUN_STALE: True, keys.TRAINING_STARTED: True}, JobStatus.STALE),
        ("crashed", {keys.RUN_FAILED: False, keys.TRAINING_STARTED: True}, JobStatus.FAILED),
        ("killed", {keys.RUN_CANCELLED: False}, JobStatus.CANCELLED),
    ],
)
def test_status_is_derived_from_the_state_and_the_summary_flags(
    state: str, summary: dict[str, Any], status: JobStatus
) -> None:
    assert run_from_wandb("r", "g", [], state, summary).status is status


def test_status_follows_the_state_a_job_gives_its_run(fake: FakeWandb) -> None:
    runs = client(fake)
    runs.init_run("r1", "g")
    runs.init_run("r2", "g")
    fake.set_state(w_path("r2"), "crashed")
    fake.settle()
    statuses = {r.run_id: r.status for r in client(fake).fetch_runs({"group": "g"})}
    assert statuses == {"r1": JobStatus.PENDING, "r2": JobStatus.FAILED}  # its job's run crashed


def test_reads_show_this_process_writes_that_w_and_b_does_not_show_yet(fake: FakeWandb) -> None:
    fake.set(lag=5)
    runs = client(fake)
    runs.init_run("r1", "g", initial_summary={keys.TRAINING_STARTED: True})
    runs.update_run_summary("r1", {keys.POST_EVAL_PROCESSED: True, keys.OBSERVATION_SCORE: 0.5})
    (mine,) = runs.fetch_runs({"group": "g"})  # not even listed yet: shown from this process's writes
    assert mine.summary[keys.POST_EVAL_PROCESSED] is True and mine.summary[keys.OBSERVATION_SCORE] == 0.5
    assert client(fake).fetch_runs({"group": "g"}) == []  # another process: W&B lags
    for _ in range(3):
        (mine,) = runs.fetch_runs({"run_id": "r1"})
        assert mine.summary[keys.POST_EVAL_PROCESSED] is True  # never read back as unset

    # the public API writes the whole summary from the client's (stale) copy; every write
    # resends this process's keys, so a stale copy never takes the flag back
    runs.update_run_summary("r1", {"later": 1})
    latest = fake.read()["runs"][w_path("r1")]["summary"]
    assert latest[keys.POST_EVAL_PROCESSED] is True and latest["later"] == 1


# -- WandbStore: the ledger keeps the sweep exactly once, W&B gets every commit -------------------


def _scheduler(max_trials: int = 6, batch_size: int = 3) -> BatchedSyncedOptimizingScheduler:
    return BatchedSyncedOptimizingScheduler(
        BatchedSyncedSchedulerConfig(
            experiment_id="exp",
            max_trials=max_trials,
            batch_size=batch_size,
            train=JobSpec(cmd=["train"]),
            eval=JobSpec(cmd=["eval"]),
            parameters={"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
            optimizer={"type": "random", "seed": 3},
        )
    )


def _behaviour(job: JobDefinition) -> SimOutcome:
    if job.type is JobTypes.LAUNCH_TRAINING:
        x = float(job.overrides["x"])
        if x > 0.8:
            return SimOutcome(duration=5.0, exit_code=1, error="exit code 1; last output: diverged")
        return SimOutcome(duration=10.0 + 100 * x, result={"loss": 1 - x})
    return SimOutcome(duration=1.0, result={"score": 0.5})


def _store(tmp_path: Path, fake: FakeWandb) -> WandbStore:
    ledger = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    store = WandbStore(PROJECT, ENTITY, ledger=ledger, api=fake.api, backoff=0.001)
    store.ensure_experiment("exp", {})
    return store


def _wandb_runs_settled(fake: FakeWandb) -> dict[str, RunInfo]:
    fake.set(fail=0, fail_every=0)
    fake.settle()
    return {run.run_id: run for run in client(fake).fetch_runs({"group": "exp"})}


def test_a_sweep_on_w_and_b_runs_each_hook_once_through_stale_reads_and_lost_connections(
    tmp_path: Path, fake: FakeWandb
) -> None:
    log = tmp_path / "hook.log"
    observe = ObservationHook("score")

    def on_eval_completed(run: RunInfo) -> dict[str, Any]:
        with log.open("a") as f:  # the hook's side effect
            f.write(run.run_id + "\n")
        return observe(run)

    fake.set(lag=3, fail_every=5)  # every 5th request to W&B fails; reads lag 3 reads behind
    store = _store(tmp_path, fake)
    assert isinstance(store, ExperimentStore)
    dispatcher = SimulatedDispatcher(VirtualClock(), _behaviour)
    runs = AdaptiveController(
        "exp",
        _scheduler(),
        dispatcher,
        store,
        settings=ControllerSettings(max_parallel=3, monitoring_interval=30.0),
        clock=dispatcher.clock,
        hooks=ControllerHooks(on_eval_completed=on_eval_completed),
    ).run()
    assert fake.read()["calls"]["failed"] > 5  # lost connections happened, and were ridden out

    completed = {run.run_id for run in runs if run.status is JobStatus.COMPLETED}
    assert completed and len(runs) == 6
    assert Counter(log.read_text().split()) == dict.fromkeys(completed, 1)  # each hook exactly once

    writes = fake.read()["writes"]
    flagged = [w for w in writes if w["summary"].get(keys.POST_EVAL_PROCESSED)]
    assert all(keys.OBSERVATION_SCORE in w["summary"] for w in flagged)  # never a flag without its effect
    assert all(
        keys.POST_EVAL_PROCESSED in w["summary"] for w in writes if keys.OBSERVATION_SCORE in w["summary"]
    )
    seen = _wandb_runs_settled(fake)
    assert set(seen) == {run.run_id for run in runs}
    for run in runs:
        mirrored = seen[run.run_id]
        assert mirrored.group == "exp" and mirrored.status is run.status, run.run_id
        assert mirrored.summary.get(keys.OBSERVATION_SCORE) == run.summary.get(keys.OBSERVATION_SCORE)
        assert mirrored.summary.get(keys.POST_EVAL_PROCESSED) == run.summary.get(keys.POST_EVAL_PROCESSED)
    marker = store.load_state("exp/mirror")
    assert marker is not None and marker[f"wandb-store {ENTITY}/{PROJECT}"]["last_error"] is None


def test_w_and_b_down_stops_the_write_with_one_line_and_the_next_write_catches_up(
    tmp_path: Path, fake: FakeWandb
) -> None:
    store = _store(tmp_path, fake)
    store.wandb.retries = 2
    job = JobDefinition(run_id="exp_trial_0001", type=JobTypes.LAUNCH_TRAINING, cmd=["train"])
    fake.set(fail=100)
    down = "could not create run exp_trial_0001 in W&B team/sweeps after 2 attempts"
    with pytest.raises(StoreError, match=down):
        store.record_training_intent("exp", job, {"x": 0.1}, 1)
    assert fake.read()["calls"]["failed"] == 2  # `retries` attempts
    assert store.fetch_runs({"group": "exp"})[0].run_id == "exp_trial_0001"  # the ledger has it
    marker = store.load_state("exp/mirror")
    assert marker is not None and "after" in marker[f"wandb-store {ENTITY}/{PROJECT}"]["last_error"]

    fake.set(fail=0)
    again = WandbStore(PROJECT, ENTITY, ledger=store.store, api=fake.api, backoff=0.001)  # a restart
    assert again.acquire_lease("exp", "me", 60.0, time.time())  # catches up as it starts
    assert again.sync("exp") == 0
    assert set(_wandb_runs_settled(fake)) == {"exp_trial_0001"}


@pytest.mark.slow
def test_a_killed_controller_restarted_loses_and_duplicates_nothing_on_w_and_b(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep(
        "exp",
        store=f"wandb://{ENTITY}/{PROJECT}",
        scheduler={"type": "batched_synced", "max_trials": 6, "batch_size": 3},
    )
    fake = FakeWandb(tmp_path / "wandb.json", lag=2, fail_every=7)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWEEPWISE_")},
        "FAKE_WANDB": str(fake.path),
        "TRAIN_SLEEP": "0.2",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, str(REPO / "tests" / "wandb_cli.py"), "run", str(spec), "--quiet"]
    killed = 0
    for crash in ["after_intent:1", "after_poll:3", "in_hook:1"]:
        done = subprocess.run(
            command,
            cwd=tmp_path,
            env={**env, "SWEEPWISE_CRASH_AT": crash},
            capture_output=True,
            text=True,
            timeout=120,
        )
        killed += done.returncode == -signal.SIGKILL
    outside = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**env, "TRAIN_SLEEP": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    before, deadline = len(markers(tmp_path, "train")), time.monotonic() + 60
    while (
        len(markers(tmp_path, "train")) == before and outside.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    outside.send_signal(signal.SIGKILL)  # from outside, while training jobs run
    killed += outside.wait() == -signal.SIGKILL
    assert killed >= 3
    final = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr

    ledger = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    runs = ledger.fetch_runs({"group": "exp"})
    assert len(runs) == 6 and {run.status for run in runs} == {JobStatus.COMPLETED}
    trained, evaluated = Counter(markers(tmp_path, "train")), Counter(markers(tmp_path, "eval"))
    assert set(trained) == set(evaluated) == {run.run_id for run in runs}
    assert set(trained.values()) == set(evaluated.values()) == {1}  # every job started once
    writes = fake.read()["writes"]
    assert all(
        keys.OBSERVATION_SCORE in w["summary"] for w in writes if w["summary"].get(keys.POST_EVAL_PROCESSED)
    )
    seen = _wandb_runs_settled(fake)
    assert set(seen) == {run.run_id for run in runs}  # one W&B run per trial
    for run in runs:
        assert seen[run.run_id].status is JobStatus.COMPLETED
        assert seen[run.run_id].summary[keys.POST_EVAL_PROCESSED] is True
        assert seen[run.run_id].summary[keys.OBSERVATION_SCORE] == run.summary[keys.OBSERVATION_SCORE]


# -- the store URL, the extra, offline mode ---------------------------------------------------------


def test_wandb_urls_open_a_wandb_store_on_a_sql_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_wandb_url("wandb://team/sweeps") == ("team", "sweeps", {})
    assert parse_wandb_url("wandb://sweeps?mode=offline") == (None, "sweeps", {"mode": "offline"})
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    url = f"wandb://team/sweeps?ledger={ledger}"
    check_store_url(url)
    store = open_store(url)
    assert isinstance(store, WandbStore) and isinstance(store.store, SQLStore)
    assert store.url == f"wandb://team/sweeps (ledger {ledger})"
    monkeypatch.chdir(tmp_path)
    default = open_store("wandb://team/sweeps")
    assert isinstance(default, WandbStore) and default.store.url == f"sqlite:///{tmp_path / 'sweepwise.db'}"
    for bad, message in [
        ("wandb://", "use wandb://ENTITY/PROJECT"),
        ("wandb://a/b/c", "use wandb://ENTITY/PROJECT"),
        ("wandb://a/b?color=red", "unknown option 'color'"),
        ("wandb://a/b?mode=sometimes", "mode must be online or offline"),
        ("wandb://a/b?ledger=wandb://c/d", "the ledger must be a SQL store"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_store_url(bad)

    import sweepwise.stores.wandb_store as module

    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as info:
        check_store_url("wandb://team/sweeps")
    assert (
        str(info.value) == 'store: a wandb:// store needs the wandb package; pip install "sweepwise[wandb]"'
    )


@pytest.mark.slow  # ~3 s of wandb start-up; the fast subset has test_mirrors' W&B cases on the fake
def test_offline_mode_writes_the_runs_for_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    ledger = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    ledger.ensure_experiment("exp", {})
    store = WandbStore(PROJECT, ENTITY, ledger=ledger, mode="offline", dir=str(tmp_path))
    job = JobDefinition(run_id="exp_trial_0001", type=JobTypes.LAUNCH_TRAINING, cmd=["train"])
    store.record_training_intent("exp", job, {"x": 0.25}, 1)
    with store.transaction() as tx:
        tx.update_run_summary("exp_trial_0001", {keys.OBSERVATION_SCORE: 2.5, keys.POST_EVAL_PROCESSED: True})
    assert store.fetch_runs({"group": "exp"})[0].summary[keys.OBSERVATION_SCORE] == 2.5  # from the ledger
    with pytest.raises(StoreError, match="offline"):
        store.wandb.fetch_runs({"group": "exp"})

    files = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2 and {f.name for f in files} == {f"run-{wandb_run_id('exp_trial_0001')}.wandb"}
    records = [r for f in files for r in wandb_records(f)]
    headers = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert {(h.run_group, h.display_name) for h in headers} == {("exp", "exp_trial_0001")}
    summary: dict[str, Any] = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            summary.update({item.key: json.loads(item.value_json) for item in record.summary.update})
    assert summary[keys.OBSERVATION_SCORE] == 2.5 and summary[keys.POST_EVAL_PROCESSED] is True
    assert summary[keys.OBSERVATION_SUGGESTION] == {"x": 0.25}
    assert summary["sweepwise/run_id"] == "exp_trial_0001" and summary["sweepwise/status"] == "pending"
