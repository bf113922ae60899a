"""The Ray dispatcher against a real local Ray cluster (`ray start --head` on 127.0.0.1).

A session-scoped fixture starts one cluster with 4 CPUs for the whole module and stops
it at the end (by its own processes' ids, see `ray_cluster.py`); if Ray cannot start,
the tests fail. Jobs are real Ray jobs submitted through the Jobs API; each test job
records its own starts in a side-effect file, which is how "started once" is judged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, cli, status_json
from dispatcher_contract import DispatcherContract
from early_stopping_helpers import (
    STEPS,
    check_a_kill_between_the_decision_and_the_cancel,
    check_asha_sweep,
    write_sweep,
)
from faults_helpers import alive
from ray_cluster import LocalRayCluster
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.core.protocols import Dispatcher
from sweepwise.dispatchers import DispatcherType, available_dispatchers, make_dispatcher
from sweepwise.dispatchers._claims import claimant, create_claim, new_claim
from sweepwise.dispatchers._ray_job import (
    PlacementRequest,
    build_submission,
    id_prefix,
    parse_options,
    route,
    task_request,
)
from sweepwise.dispatchers._ray_tasks import NAMESPACE, SUPERVISOR, RayTasks
from sweepwise.dispatchers.ray import STATUS_PHASES, RayDispatcher, RayPhase

EXPERIMENT = "demo"

# A job that records its start (and its pid) in $SIDE_EFFECTS, then, by its `mode`: reports a
# result; fails; or waits for the file $GO before it writes "done" and reports.
JOB = textwrap.dedent(
    """
    import json, os, sys, time
    params = dict(word.split("=", 1) for word in sys.argv[1:])
    me = " ".join([os.environ["SWEEPWISE_RUN_ID"], os.environ["SWEEPWISE_JOB_TYPE"],
                   os.environ["SWEEPWISE_ATTEMPT"], os.environ.get("SWEEPWISE_NODE_RANK", "0")])
    def note(what):
        with open(os.environ["SIDE_EFFECTS"], "a") as f:
            f.write(f"{me} {what}\\n")
    note(f"start {os.getpid()}")
    print("hello from", os.environ["SWEEPWISE_RUN_ID"], "tag =", params.get("tag"), flush=True)
    mode = params.get("mode", "ok")
    if mode == "stubborn":  # ignores SIGTERM, then waits like "wait"
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        mode = "wait"
    if mode == "fail":
        print("training diverged: loss is nan", flush=True)
        sys.exit(3)
    if mode == "wait":
        deadline = time.time() + 600
        while not os.path.exists(os.environ["GO"]) and time.time() < deadline:
            time.sleep(0.1)
    note("done")
    print("SWEEPWISE_RESULT " + json.dumps({"score": float(params.get("x", 1)), "rank0": True}))
    """
)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalRayCluster]:
    cluster = LocalRayCluster(num_cpus=4)
    try:
        cluster.start()
    except Exception as exc:  # never skip: a Ray that cannot start is a failure here
        pytest.fail(f"cannot start a local Ray cluster for the Ray dispatcher tests: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "job.py").write_text(JOB)
    return tmp_path


def _job(work: Path, run_id: str = "demo_trial_0001", **fields: Any) -> JobDefinition:
    fields.setdefault("cmd", ["python", "job.py"])
    fields.setdefault("cwd", str(work))
    env = {"SIDE_EFFECTS": str(work / "side_effects.txt"), "GO": str(work / f"go-{run_id}")}
    return JobDefinition(run_id=run_id, env={**env, **fields.pop("env", {})}, **fields)


def _dispatcher(cluster: LocalRayCluster, work: Path, **options: Any) -> RayDispatcher:
    options.setdefault("address", cluster.address)
    return RayDispatcher(work / "runs", EXPERIMENT, incarnation="inc-0001", poll_interval=0.2, **options)


def _side_effects(work: Path) -> list[list[str]]:
    path = work / "side_effects.txt"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _starts(work: Path) -> list[tuple[str, ...]]:
    return [tuple(words[:4]) for words in _side_effects(work) if words[4] == "start"]


def _pids(work: Path, run_id: str) -> list[int]:
    """The pids of the run's job processes, from their side-effect lines."""
    return [int(words[5]) for words in _side_effects(work) if words[0] == run_id and words[4] == "start"]


def _wait_for(condition: Callable[[], Any], what: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _until_finished(dispatcher: RayDispatcher, run_id: str, timeout: float = 180) -> list[JobEvent]:
    """Poll until the run's job finishes (or is lost); every event of it, in order."""
    events: list[JobEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += [event for event in dispatcher.poll() if event.run_id == run_id]
        if any(event.kind in (EventKind.FINISHED, EventKind.LOST) for event in events):
            return events
        dispatcher.wait(1.0)
    raise AssertionError(f"run {run_id}: no end after {timeout} s; events: {events}")


def _kinds(events: list[JobEvent]) -> list[EventKind]:
    return [event.kind for event in events if event.kind is not EventKind.HEARTBEAT]


def _submissions(cluster: LocalRayCluster, prefix: str) -> list[str]:
    jobs = cluster.client().list_jobs()
    return [job.submission_id for job in jobs if (job.submission_id or "").startswith(prefix)]


# -- without a cluster: the request built for a job, the options, the status map ---------------------


def test_the_task_supervisor_keeps_metrics_rows_in_the_jobs_order() -> None:
    # An async actor may run two `metrics` calls out of order: a batch ahead of its turn waits.
    import asyncio

    from sweepwise.dispatchers._ray_tasks import TaskSupervisor

    supervisor = TaskSupervisor()
    supervisor._jobs["s"] = {"status": "RUNNING"}
    record = supervisor._jobs["s"]

    async def calls() -> None:
        await supervisor.metrics("s", [{"step": 3}, {"step": 4}], 1)
        assert record.get("metrics", []) == []  # batch 0 has not come yet
        await supervisor.metrics("s", [{"step": 1}, {"step": 2}], 0)
        await supervisor.metrics("s", {"step": 5})  # one row, as a task of an earlier version passes it
        for batch in range(3, 12):  # batch 2 lost on its way: the later ones go on after a while
            await supervisor.metrics("s", [{"step": 10 + batch}], batch)

    asyncio.run(calls())
    steps = [row["step"] for row in record["metrics"]]
    assert steps[:5] == [1, 2, 3, 4, 5] and steps[5:] == sorted(steps[5:]) and steps[-1] == 21, steps


def test_every_ray_job_status_is_mapped() -> None:
    from ray.job_submission import JobStatus

    assert {status.value for status in JobStatus} == set(STATUS_PHASES)
    assert STATUS_PHASES == {
        "PENDING": RayPhase.QUEUED,
        "RUNNING": RayPhase.RUNNING,
        "SUCCEEDED": RayPhase.SUCCEEDED,
        "FAILED": RayPhase.FAILED,
        "STOPPED": RayPhase.STOPPED,
    }


def test_the_submission_of_a_job(tmp_path: Path) -> None:
    options = parse_options(
        num_cpus=2,
        resources={"accelerator_type:A100": 1, "disk": 0.5},
        runtime_env={"pip": ["numpy"], "env_vars": {"WANDB_PROJECT": "sweeps"}},
        python="/opt/py env/bin/python",
    )
    job = JobDefinition(
        run_id="demo_trial_0001",
        cmd="python train.py",
        cwd=str(tmp_path),
        gpus=2,
        overrides={"lr": "0.1; rm -rf / $(x)"},
        env={"TOKEN": "t0k"},
    )
    sid = "sweepwise-demo-inc0001-demo_trial_0001-train"
    submission = build_submission(
        job, submission_id=sid, experiment="demo", runs_root="/runs", incarnation="inc-0001", options=options
    )
    assert submission.request() == {
        "entrypoint": "'/opt/py env/bin/python' -m sweepwise.runtime.remote",  # fixed: no value in a shell
        "runtime_env": {
            "pip": ["numpy"],
            "env_vars": {
                "WANDB_PROJECT": "sweeps",
                "TOKEN": "t0k",
                "SWEEPWISE_JOB": job.recorded().model_dump_json(),
                "SWEEPWISE_RUNS_ROOT": "/runs",
                "SWEEPWISE_EXPERIMENT": "demo",
                "SWEEPWISE_RUN_ID": "demo_trial_0001",
                "SWEEPWISE_JOB_TYPE": "train",
                "SWEEPWISE_ATTEMPT": "1",
                "SWEEPWISE_CWD": str(tmp_path),
            },
        },
        "metadata": {
            "sweepwise_experiment": "demo",
            "sweepwise_run_id": "demo_trial_0001",
            "sweepwise_job": "train",
            "sweepwise_incarnation": "inc-0001",
        },
        "entrypoint_num_cpus": 2.0,
        "entrypoint_num_gpus": 2.0,
        "entrypoint_resources": {"accelerator_type:A100": 1.0, "disk": 0.5},
    }
    assert json.loads(job.recorded().model_dump_json())["env"] == {"TOKEN": "<not recorded>"}
    assert submission.placement is None


def test_a_job_on_several_nodes_reserves_a_placement_group(tmp_path: Path) -> None:
    options = parse_options(num_cpus=4, resources={"ib": 1}, runtime_env={"working_dir": str(tmp_path)})
    job = JobDefinition(run_id="r1", cmd="python train.py", cwd=str(tmp_path), gpus=8, nodes=3, attempt=2)
    submission = build_submission(
        job,
        submission_id="sweepwise-d-r1-train.2",
        experiment="d",
        runs_root="/r",
        incarnation=None,
        options=options,
    )
    bundle = {"CPU": 4.0, "GPU": 8.0, "ib": 1.0}
    assert submission.placement == PlacementRequest([bundle, bundle, bundle], "STRICT_SPREAD")
    request = submission.request()
    assert request["entrypoint"] == "python -m sweepwise.runtime.ray_gang"
    assert (
        request["entrypoint_num_cpus"],
        request["entrypoint_num_gpus"],
        request["entrypoint_resources"],
    ) == (
        0.0,
        None,
        None,
    )  # the driver holds nothing: the bundles hold the job's resources
    env_vars = request["runtime_env"]["env_vars"]
    assert json.loads(env_vars["SWEEPWISE_RAY_PLACEMENT"]) == {
        "bundles": [bundle] * 3,
        "strategy": "STRICT_SPREAD",
    }
    assert "SWEEPWISE_CWD" not in env_vars  # with a working_dir, jobs run in Ray's copy of it
    assert request["runtime_env"]["working_dir"] == str(tmp_path)
    assert env_vars["SWEEPWISE_ATTEMPT"] == "2" and request["metadata"]["sweepwise_job"] == "train.2"


def test_the_spec_in_docs_backends(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "backends.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", doc[doc.index("## Ray") :], re.S)
    assert block is not None
    spec = yaml.safe_load(block[1])
    options = dict(spec["dispatcher"])
    assert (options.pop("type"), options.pop("address")) == ("ray", "http://127.0.0.1:8265")
    job = JobDefinition(run_id="ray-sweep_trial_0001", cmd=spec["train"]["cmd"], gpus=spec["train"]["gpus"])
    request = build_submission(
        job,
        submission_id="sweepwise-ray-sweep-ray-sweep_trial_0001-train",
        experiment=spec["name"],
        runs_root=str(tmp_path),
        incarnation=None,
        options=parse_options(**options),
    ).request()
    assert (request["entrypoint_num_cpus"], request["entrypoint_num_gpus"]) == (2.0, 1.0)
    assert request["entrypoint_resources"] == {"accelerator_type:A100": 1.0}
    assert request["runtime_env"]["env_vars"]["WANDB_PROJECT"] == "ray-sweep"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_cpus": -1}, "dispatcher.num_cpus: expected a number >= 0, got -1"),
        ({"num_cpus": "2"}, "dispatcher.num_cpus: expected a number >= 0, got '2'"),
        (
            {"resources": {"GPU": 1}},
            "dispatcher.resources.GPU: is set by num_cpus (per job) and the job's gpus",
        ),
        ({"resources": [1]}, "dispatcher.resources: expected a mapping of resource names to amounts"),
        (
            {"runtime_env": {"env_vars": {"SWEEPWISE_JOB": "{}"}}},
            "dispatcher.runtime_env.env_vars: SWEEPWISE_JOB is",
        ),
        (
            {"runtime_env": {"env_vars": {"N": 1}}},
            "dispatcher.runtime_env.env_vars: expected a mapping of names",
        ),
        ({"runtime_env": {"pip": 3}}, "dispatcher.runtime_env: Ray refuses it:"),
        (
            {"placement_strategy": "ANY"},
            "dispatcher.placement_strategy: expected one of STRICT_SPREAD, SPREAD",
        ),
        ({"python": ""}, "dispatcher.python: expected a non-empty string"),
        ({"mode": "actor"}, "dispatcher.mode: expected one of auto, task, job, got 'actor'"),
    ],
)
def test_a_bad_option_is_one_config_error_line(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(**options)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_python_callables_run_as_tasks_and_commands_as_ray_jobs(tmp_path: Path) -> None:
    entrypoint = JobDefinition(run_id="r", cmd="examples.recipes.jobs.train", cwd=str(tmp_path))
    function = JobDefinition(run_id="r", cmd=["python", "-m", "sweepwise.ax.run_function", "/tmp/t"])
    command = JobDefinition(run_id="r", cmd=["python", "train.py"], cwd=str(tmp_path))
    gang = JobDefinition(run_id="r", cmd="examples.recipes.jobs.train", cwd=str(tmp_path), nodes=2)
    assert [route(job, "auto") for job in (entrypoint, function, command, gang)] == [
        "task",
        "task",
        "job",
        "job",  # a job on several nodes needs the Jobs API's placement group
    ]
    assert [route(job, "task") for job in (entrypoint, command, gang)] == ["task", "task", "job"]
    assert [route(job, "job") for job in (entrypoint, command)] == ["job", "job"]
    submission = build_submission(
        JobDefinition(run_id="r", cmd=["python", "train.py"], gpus=1),
        submission_id="s",
        experiment="demo",
        runs_root="/runs",
        incarnation=None,
        options=parse_options(num_cpus=2, resources={"TPU": 1}, runtime_env={"pip": ["numpy"]}),
    )
    options = parse_options(num_cpus=2, resources={"TPU": 1}, runtime_env={"pip": ["numpy"]})
    assert task_request(submission, JobDefinition(run_id="r", cmd="x", gpus=1), options) == {
        "num_cpus": 2.0,
        "num_gpus": 1.0,
        "resources": {"TPU": 1.0},
        "runtime_env": {"pip": ["numpy"]},
    }


def test_tasks_need_the_cluster_address_not_the_dashboard_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        RayDispatcher(tmp_path, "demo", address="http://127.0.0.1:8265", mode="task")
    text = str(caught.value)
    assert text.startswith("dispatcher.address: 'http://127.0.0.1:8265' is the dashboard's URL;")
    assert "\n" not in text


def test_ray_is_a_builtin_dispatcher_and_an_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    assert DispatcherType.RAY == "ray" and "ray" in available_dispatchers()
    with pytest.raises(ConfigError) as caught:
        make_dispatcher("ray", runs_root=tmp_path, experiment="demo", address="http://127.0.0.1:9")
    text = str(caught.value)
    assert text.startswith(
        "dispatcher.address: cannot reach the Ray cluster's Jobs API at 'http://127.0.0.1:9'"
    )
    assert text.endswith("start the cluster (ray start --head) or fix the address") and "\n" not in text


# -- against the cluster -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_job_runs_to_its_result_and_its_log_is_readable(ray_cluster: LocalRayCluster, work: Path) -> None:
    dispatcher = _dispatcher(ray_cluster, work)
    sid = dispatcher.dispatch(_job(work, overrides={"x": 0.25, "tag": "a; rm -rf / $(x)"}))

    assert sid == "sweepwise-demo-inc0001-demo_trial_0001-train"
    events = _until_finished(dispatcher, "demo_trial_0001")
    assert _kinds(events) == [EventKind.STARTED, EventKind.FINISHED]
    finished = events[-1]
    assert finished.error is None, finished.error
    assert finished.succeeded and finished.dispatch_id == sid and finished.exit_code == 0
    assert finished.result == {"score": 0.25, "rank0": True}
    assert _starts(work) == [("demo_trial_0001", "train", "1", "0")]
    log = dispatcher.read_log("demo_trial_0001", JobTypes.LAUNCH_TRAINING)
    assert log is not None and "hello from demo_trial_0001 tag = a; rm -rf / $(x)" in log
    assert log.rstrip().splitlines()[-1] == 'SWEEPWISE_RESULT {"score":0.25,"rank0":true}'
    run_dir = work / "runs" / EXPERIMENT / "demo_trial_0001"  # the cluster shares this filesystem
    assert "hello from" in (run_dir / "train.log").read_text()
    assert json.loads((run_dir / "train.dispatch.json").read_text())["submission_id"] == sid
    assert dispatcher.poll() == []  # done with: never reported twice
    assert dispatcher.read_log("demo_trial_0009", JobTypes.LAUNCH_TRAINING) is None


@pytest.mark.slow
def test_dispatch_is_idempotent_across_controllers(ray_cluster: LocalRayCluster, work: Path) -> None:
    job = _job(work, "demo_trial_0002", overrides={"mode": "wait"})
    first = _dispatcher(ray_cluster, work)
    sid = first.dispatch(job)
    assert first.dispatch(job) == sid
    # A second controller (of the same experiment) dispatching the same job finds it by its claim.
    again = _dispatcher(ray_cluster, work, address=ray_cluster.gcs_address)
    assert again.dispatch(job) == sid
    _wait_for(lambda: _starts(work), "the job to start")
    (work / "go-demo_trial_0002").touch()
    events = _until_finished(again, "demo_trial_0002")
    assert events[-1].succeeded, events[-1].error
    assert _submissions(ray_cluster, "sweepwise-demo-inc0001-demo_trial_0002-") == [sid]
    assert _starts(work) == [("demo_trial_0002", "train", "1", "0")]


@pytest.mark.slow
def test_a_restarted_controller_reattaches_a_running_job(ray_cluster: LocalRayCluster, work: Path) -> None:
    job = _job(work, "demo_trial_0003", overrides={"mode": "wait", "x": 7})
    sid = _dispatcher(ray_cluster, work).dispatch(job)
    _wait_for(lambda: _starts(work), "the job to start")

    restarted = _dispatcher(ray_cluster, work)  # the first one is gone, as with kill -9
    assert restarted.find("demo_trial_0003", JobTypes.LAUNCH_TRAINING) == sid
    assert restarted.find("demo_trial_0003", JobTypes.LAUNCH_EVAL) is None
    restarted.reattach(sid, "demo_trial_0003", JobTypes.LAUNCH_TRAINING)
    assert _kinds(_wait_for(restarted.poll, "a sign of life")) in ([EventKind.STARTED], [])
    (work / "go-demo_trial_0003").touch()
    events = _until_finished(restarted, "demo_trial_0003")
    assert events[-1].succeeded and events[-1].result == {"score": 7.0, "rank0": True}
    assert _starts(work) == [("demo_trial_0003", "train", "1", "0")]
    assert _submissions(ray_cluster, "sweepwise-demo-inc0001-demo_trial_0003-") == [sid]


@pytest.mark.slow
def test_cancel_stops_a_running_job(ray_cluster: LocalRayCluster, work: Path) -> None:
    dispatcher = _dispatcher(ray_cluster, work)
    sid = dispatcher.dispatch(_job(work, "demo_trial_0004", overrides={"mode": "wait"}))
    [[*_, pid]] = [words for words in _wait_for(lambda: _side_effects(work), "the job to start")]
    job_pid = int(pid)

    dispatcher.cancel(sid)
    events = _until_finished(dispatcher, "demo_trial_0004")
    assert events[-1].kind is EventKind.FINISHED and events[-1].error == "cancelled (Ray STOPPED)"
    assert not events[-1].succeeded
    _wait_for(lambda: not alive(job_pid), "the job's process to end", timeout=60)
    (work / "go-demo_trial_0004").touch()  # a job still running would now write "done"
    assert [words[4] for words in _side_effects(work)] == ["start"]
    dispatcher.cancel(sid)  # an ended job: no error


@pytest.mark.slow
def test_cancel_stops_a_job_that_ignores_sigterm(ray_cluster: LocalRayCluster, work: Path) -> None:
    # The job, in a process group of its own, ignores the SIGTERM its runner forwards, and Ray
    # SIGKILLs the runner 3 s later: the job must still end, or a retry would run beside it.
    dispatcher = _dispatcher(ray_cluster, work)
    sid = dispatcher.dispatch(_job(work, "demo_trial_0010", overrides={"mode": "stubborn"}))
    [[*_, pid]] = [words for words in _wait_for(lambda: _side_effects(work), "the job to start")]
    dispatcher.cancel(sid)
    assert _until_finished(dispatcher, "demo_trial_0010")[-1].error == "cancelled (Ray STOPPED)"
    _wait_for(lambda: not alive(int(pid)), "the job's process to end", timeout=60)
    (work / "go-demo_trial_0010").touch()  # a job still running would now write "done"
    time.sleep(1)
    assert [words[4] for words in _side_effects(work)] == ["start"]


@pytest.mark.slow
def test_a_failing_job_fails_with_its_output(ray_cluster: LocalRayCluster, work: Path) -> None:
    dispatcher = _dispatcher(ray_cluster, work)
    dispatcher.dispatch(_job(work, "demo_trial_0005", overrides={"mode": "fail"}))
    finished = _until_finished(dispatcher, "demo_trial_0005")[-1]
    assert finished.kind is EventKind.FINISHED and not finished.succeeded and finished.exit_code == 3
    assert finished.error is not None and finished.error.startswith(
        "Ray FAILED: Job entrypoint command failed"
    )
    assert finished.error.endswith("last output: training diverged: loss is nan"), finished.error


@pytest.mark.slow
def test_a_claim_never_submitted_is_submitted_once_and_a_forgotten_job_is_lost(
    ray_cluster: LocalRayCluster, work: Path
) -> None:
    dispatcher = _dispatcher(ray_cluster, work)
    runs = work / "runs" / EXPERIMENT
    # A controller killed between the claim and the submission left this claim.
    record = new_claim("demo_trial_0006", "train", 1, claimant=claimant(), incarnation="inc-0001")
    assert create_claim(runs / "demo_trial_0006" / "train.dispatch.json", record)
    assert dispatcher.find("demo_trial_0006", JobTypes.LAUNCH_TRAINING) is None  # set aside
    sid = dispatcher.dispatch(_job(work, "demo_trial_0006"))
    assert _until_finished(dispatcher, "demo_trial_0006")[-1].succeeded
    assert _starts(work) == [("demo_trial_0006", "train", "1", "0")]
    assert _submissions(ray_cluster, sid) == [sid]

    # A submitted job the cluster does not know (it was restarted since) is lost, and retried.
    record = new_claim(
        "demo_trial_0007", "eval", 1, claimant=claimant(), incarnation="inc-0001", submitted_at=time.time()
    )
    assert create_claim(runs / "demo_trial_0007" / "eval.dispatch.json", record)
    restarted = _dispatcher(ray_cluster, work)
    found = restarted.find("demo_trial_0007", JobTypes.LAUNCH_EVAL)
    assert found == "sweepwise-demo-inc0001-demo_trial_0007-eval"
    restarted.reattach(found, "demo_trial_0007", JobTypes.LAUNCH_EVAL)
    [lost] = restarted.poll()
    assert lost.kind is EventKind.LOST and lost.job_type is JobTypes.LAUNCH_EVAL
    assert lost.error == f"job lost: the Ray cluster at {ray_cluster.address} has no job {found} (restarted?)"


@pytest.mark.slow
def test_a_job_on_two_nodes_runs_each_rank_in_its_placement_group(
    ray_cluster: LocalRayCluster, work: Path
) -> None:
    # One node here: SPREAD lets both bundles land on it (STRICT_SPREAD, the default, waits for two).
    dispatcher = _dispatcher(ray_cluster, work, placement_strategy="SPREAD")
    dispatcher.dispatch(_job(work, "demo_trial_0008", nodes=2, overrides={"x": 3}))
    finished = _until_finished(dispatcher, "demo_trial_0008")[-1]
    assert finished.succeeded and finished.result == {"score": 3.0, "rank0": True}, finished.error
    assert sorted(_starts(work)) == [
        ("demo_trial_0008", "train", "1", "0"),
        ("demo_trial_0008", "train", "1", "1"),
    ]
    assert (work / "runs" / "rank-1" / EXPERIMENT / "demo_trial_0008" / "train.log").exists()

    # Stopping a two-node job stops every rank (each rank's runner dies with its Ray worker).
    sid = dispatcher.dispatch(_job(work, "demo_trial_0009", nodes=2, overrides={"mode": "wait"}))
    pids = _wait_for(
        lambda: len(_pids(work, "demo_trial_0009")) == 2 and _pids(work, "demo_trial_0009"), "2 ranks"
    )
    dispatcher.cancel(sid)
    assert _until_finished(dispatcher, "demo_trial_0009")[-1].error == "cancelled (Ray STOPPED)"
    # A rank's process whose runner died before reaping it is a zombie of a PID 1 that may never
    # reap it: a zombie has ended (it runs no code), so it counts as ended.
    _wait_for(lambda: not any(alive(pid) for pid in pids), "every rank's process to end", timeout=60)
    (work / "go-demo_trial_0009").touch()
    assert [words[4] for words in _side_effects(work) if words[0] == "demo_trial_0009"] == ["start", "start"]


# -- jobs as Ray tasks, owned by the experiment's supervisor actor ---------------------------------------


def _task_dispatcher(cluster: LocalRayCluster, work: Path, **options: Any) -> RayDispatcher:
    return _dispatcher(cluster, work, address=cluster.gcs_address, mode="task", **options)


def _task_ids(cluster: LocalRayCluster) -> list[str]:
    """Every job the supervisor actor has a record of."""
    return RayTasks(cluster.gcs_address, SUPERVISOR).submission_ids()


# A controller in its own process: dispatches one job as a task, says so, and waits to be killed.
CONTROLLER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sweepwise.core.models import JobDefinition
    from sweepwise.dispatchers.ray import RayDispatcher
    work, address, run_id = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    dispatcher = RayDispatcher(work / "runs", "demo", incarnation="inc-0001", address=address, mode="task")
    env = {"SIDE_EFFECTS": str(work / "side_effects.txt"), "GO": str(work / f"go-{run_id}")}
    job = JobDefinition(run_id=run_id, cmd=["python", "job.py"], cwd=str(work), env=env,
                        overrides={"mode": "wait", "x": 5})
    print(dispatcher.dispatch(job), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.slow
def test_a_task_runs_to_its_result_and_its_log_is_readable(ray_cluster: LocalRayCluster, work: Path) -> None:
    dispatcher = _task_dispatcher(ray_cluster, work)
    sid = dispatcher.dispatch(_job(work, "demo_trial_0101", overrides={"x": 0.5, "tag": "a; rm -rf / $(x)"}))

    assert sid == "sweepwise-demo-inc0001-demo_trial_0101-train"
    events = _until_finished(dispatcher, "demo_trial_0101")
    assert _kinds(events) == [EventKind.STARTED, EventKind.FINISHED]
    finished = events[-1]
    assert finished.succeeded and finished.exit_code == 0, finished.error
    assert finished.result == {"score": 0.5, "rank0": True} and finished.dispatch_id == sid
    assert _starts(work) == [("demo_trial_0101", "train", "1", "0")]
    log = dispatcher.read_log("demo_trial_0101", JobTypes.LAUNCH_TRAINING)
    assert log is not None and "hello from demo_trial_0101 tag = a; rm -rf / $(x)" in log
    claim = json.loads((work / "runs" / EXPERIMENT / "demo_trial_0101" / "train.dispatch.json").read_text())
    assert (claim["submission_id"], claim["route"]) == (sid, "task")
    assert dispatcher.poll() == []  # done with: never reported twice
    assert _submissions(ray_cluster, "sweepwise-demo-inc0001-demo_trial_0101-") == []  # no Ray job
    assert sid in _task_ids(ray_cluster)


@pytest.mark.slow
def test_a_task_outlives_its_killed_controller_and_is_reattached_once(
    ray_cluster: LocalRayCluster, work: Path
) -> None:
    controller = subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, str(work), ray_cluster.gcs_address, "demo_trial_0102"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert controller.stdout is not None
    sid = controller.stdout.readline().strip()
    _wait_for(lambda: _starts(work), "the job to start")
    controller.kill()  # as kill -9: the task belongs to the supervisor actor, not to this process
    controller.wait(timeout=60)

    restarted = _task_dispatcher(ray_cluster, work)
    job = _job(work, "demo_trial_0102", overrides={"mode": "wait", "x": 5})
    assert restarted.find("demo_trial_0102", JobTypes.LAUNCH_TRAINING) == sid
    assert restarted.dispatch(job) == sid  # dispatching it again reattaches
    (work / "go-demo_trial_0102").touch()
    events = _until_finished(restarted, "demo_trial_0102")
    assert events[-1].succeeded and events[-1].result == {"score": 5.0, "rank0": True}, events[-1].error
    # Judged from the job's own record: it started once and ran to its end once.
    assert [words[4] for words in _side_effects(work)] == ["start", "done"]
    assert _task_ids(ray_cluster).count(sid) == 1


@pytest.mark.slow
def test_cancel_stops_a_running_task_and_a_queued_one(ray_cluster: LocalRayCluster, work: Path) -> None:
    dispatcher = _task_dispatcher(ray_cluster, work)
    sid = dispatcher.dispatch(_job(work, "demo_trial_0103", overrides={"mode": "wait"}))
    [[*_, pid]] = [words for words in _wait_for(lambda: _side_effects(work), "the job to start")]
    job_pid = int(pid)
    dispatcher.cancel(sid)
    finished = _until_finished(dispatcher, "demo_trial_0103")[-1]
    assert finished.kind is EventKind.FINISHED and not finished.succeeded
    assert (finished.error or "").startswith("cancelled; exit code -15"), finished.error
    _wait_for(lambda: not alive(job_pid), "the job's process to end", timeout=60)
    (work / "go-demo_trial_0103").touch()  # a job still running would now write "done"
    assert [words[4] for words in _side_effects(work)] == ["start"]

    # A task that waits for CPUs the cluster does not have is cancelled before it ever starts.
    queued = _task_dispatcher(ray_cluster, work, num_cpus=64)
    sid = queued.dispatch(_job(work, "demo_trial_0104"))
    assert _kinds(queued.poll()) == []
    queued.cancel(sid)
    events = _until_finished(queued, "demo_trial_0104")
    assert _kinds(events) == [EventKind.FINISHED] and events[-1].error == "cancelled (Ray task cancelled)"
    assert not [words for words in _side_effects(work) if words[0] == "demo_trial_0104"]
    queued.cancel(sid)  # an ended task: no error


@pytest.mark.slow
def test_a_failing_task_fails_with_its_output_and_a_hung_one_times_out(
    ray_cluster: LocalRayCluster, work: Path
) -> None:
    dispatcher = _task_dispatcher(ray_cluster, work)
    dispatcher.dispatch(_job(work, "demo_trial_0105", overrides={"mode": "fail"}))
    dispatcher.dispatch(_job(work, "demo_trial_0106", overrides={"mode": "wait"}, timeout=1))
    failed = _until_finished(dispatcher, "demo_trial_0105")[-1]
    assert failed.exit_code == 3 and not failed.succeeded
    assert failed.error == "exit code 3; last output: training diverged: loss is nan"
    hung = _until_finished(dispatcher, "demo_trial_0106")[-1]
    assert hung.timed_out and not hung.succeeded
    assert hung.error is not None and hung.error.startswith("timeout: ran longer than its 1 s limit")


@pytest.mark.slow
def test_a_task_whose_worker_is_killed_fails_and_its_job_does_not_run_on(
    ray_cluster: LocalRayCluster, work: Path
) -> None:
    dispatcher = _task_dispatcher(ray_cluster, work)
    dispatcher.dispatch(_job(work, "demo_trial_0110", overrides={"mode": "wait"}))
    [[*_, pid]] = [words for words in _wait_for(lambda: _side_effects(work), "the job to start")]
    job_pid = int(pid)
    status = work / "runs" / EXPERIMENT / "demo_trial_0110" / "train.status.json"
    worker = _wait_for(lambda: json.loads(status.read_text()).get("ray_worker_pid"), "the worker's pid")
    os.kill(worker, signal.SIGKILL)  # as the kernel's OOM killer would

    finished = _until_finished(dispatcher, "demo_trial_0110")[-1]
    assert finished.kind is EventKind.FINISHED and not finished.succeeded
    assert (finished.error or "").startswith("Ray task failed: WorkerCrashedError"), finished.error
    # the job's guard stops it when its worker dies; the reaper kills what is left, if anything
    assert finished.error.endswith(("its job's processes were killed", "its job stopped with it")), (
        finished.error
    )
    _wait_for(lambda: not alive(job_pid), "the orphaned job's process to end", timeout=60)
    (work / "go-demo_trial_0110").touch()  # a job still running would now write "done"
    time.sleep(1)
    assert [words[4] for words in _side_effects(work)] == ["start"]


@pytest.mark.slow
def test_tasks_of_a_supervisor_that_died_are_lost(ray_cluster: LocalRayCluster, work: Path) -> None:
    import ray

    dispatcher = _task_dispatcher(ray_cluster, work)
    sid = dispatcher.dispatch(_job(work, "demo_trial_0107", overrides={"mode": "wait"}))
    [[*_, pid]] = [words for words in _wait_for(lambda: _side_effects(work), "the job to start")]
    ray.kill(ray.get_actor(SUPERVISOR, namespace=NAMESPACE), no_restart=True)  # its tasks die with it

    restarted = _task_dispatcher(ray_cluster, work)
    assert restarted.find("demo_trial_0107", JobTypes.LAUNCH_TRAINING) == sid
    restarted.reattach(sid, "demo_trial_0107", JobTypes.LAUNCH_TRAINING)
    [lost] = [event for event in restarted.poll() if event.run_id == "demo_trial_0107"]
    assert lost.kind is EventKind.LOST
    where = ray_cluster.gcs_address
    assert lost.error == f"job lost: the Ray cluster at {where} has no task {sid} (restarted?)"
    # A lost job is retried: its process must not run on beside the retry (docs/backends.md, Ray).
    _wait_for(lambda: not alive(int(pid)), "the lost job's process to end", timeout=60)
    (work / "go-demo_trial_0107").touch()  # a job still running would now write "done"
    time.sleep(1)
    assert [words[4] for words in _side_effects(work)] == ["start"]


@pytest.mark.slow
def test_auto_mode_runs_an_entrypoint_as_a_task_and_a_command_as_a_ray_job(
    ray_cluster: LocalRayCluster, work: Path
) -> None:
    (work / "trivial_entry.py").write_text("def train(x=1.0):\n    return {'score': float(x) * 2}\n")
    dispatcher = _dispatcher(ray_cluster, work, address=ray_cluster.gcs_address)
    entry = JobDefinition(
        run_id="demo_trial_0108", cmd="trivial_entry.train", cwd=str(work), overrides={"x": 2}
    )
    task_sid = dispatcher.dispatch(entry)
    job_sid = dispatcher.dispatch(_job(work, "demo_trial_0109", overrides={"x": 4}))
    assert _until_finished(dispatcher, "demo_trial_0108")[-1].result == {"score": 4.0}
    assert _until_finished(dispatcher, "demo_trial_0109")[-1].result == {"score": 4.0, "rank0": True}
    assert task_sid in _task_ids(ray_cluster) and job_sid not in _task_ids(ray_cluster)
    assert _submissions(ray_cluster, job_sid) == [job_sid] and _submissions(ray_cluster, task_sid) == []


# -- the quickstart through the real CLI, with a controller killed mid-sweep -----------------------------

# Put before each of the quickstart's jobs: the job's own record of its start.
PROLOGUE = """import os as _os
with open({log!r}, "a") as _f:
    _f.write(" ".join(_os.environ["SWEEPWISE_" + k] for k in ("RUN_ID", "JOB_TYPE", "ATTEMPT")) + "\\n")
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["job", "task"])
def test_the_quickstart_on_ray_survives_a_killed_controller(
    ray_cluster: LocalRayCluster, tmp_path: Path, mode: str
) -> None:
    shutil.copytree(REPO / "examples" / "quickstart", tmp_path / "quickstart")
    starts = tmp_path / "starts.txt"
    for script in ("train.py", "eval.py"):
        path = tmp_path / "quickstart" / script
        text = path.read_text()
        docstring_end = text.index('"""', 3) + 3
        path.write_text(text[:docstring_end] + "\n" + PROLOGUE.format(log=str(starts)) + text[docstring_end:])
    spec_path = tmp_path / "quickstart" / "sweep.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    if mode == "job":
        spec["dispatcher"] = {"type": "ray", "address": ray_cluster.address}
    else:
        spec["dispatcher"] = {"type": "ray", "address": ray_cluster.gcs_address, "mode": "task"}
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))

    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    earlier = _submissions(ray_cluster, "sweepwise-quickstart-")  # the other mode's, on this cluster
    controller = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec_path), "--quiet"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: starts.exists() and starts.read_text().strip(), "a quickstart job to start")
    finally:
        controller.send_signal(signal.SIGKILL)  # mid-sweep: jobs keep running on Ray
        _, err = controller.communicate(timeout=60)
    assert controller.returncode == -signal.SIGKILL, err

    rerun = cli("run", str(spec_path), cwd=tmp_path, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    assert "best trial: quickstart_trial_" in rerun.stdout
    status = status_json(tmp_path, "quickstart")
    assert [row["status"] for row in status["runs"]] == ["completed"] * 8
    started = starts.read_text().splitlines()
    expected = sorted(f"{row['run_id']} {job} 1" for row in status["runs"] for job in ("train", "eval"))
    assert sorted(started) == expected  # each (run, job) started exactly once
    # this experiment's own: any process on this machine may submit to the cluster Ray finds by itself
    claim = next(tmp_path.rglob(f"{status['runs'][0]['run_id']}/train.dispatch.json"))
    ours = id_prefix("quickstart", json.loads(claim.read_text())["incarnation"])
    submitted = [sid for sid in _submissions(ray_cluster, ours) if sid not in earlier]
    if mode == "job":
        assert len(submitted) == len(set(submitted)) == 16  # and submitted once
    else:
        assert submitted == []  # tasks, not Ray jobs; and the supervisor forgot them with the sweep
        assert not [sid for sid in _task_ids(ray_cluster) if sid.startswith("sweepwise-quickstart-")]
    assert all(row["score"] is not None for row in status["runs"])
    logs = cli("logs", status["runs"][0]["run_id"], cwd=tmp_path)
    assert logs.returncode == 0 and logs.stdout.strip(), logs.stderr


@pytest.mark.slow  # a Ray job per check: the full suite runs it
class TestRayContract(DispatcherContract):
    """The dispatcher contract (tests/dispatcher_contract.py) against the real local Ray cluster."""

    @pytest.fixture
    def make_dispatcher(
        self, ray_cluster: LocalRayCluster, runs_root: Path, experiment: str
    ) -> Callable[[], Dispatcher]:
        def make() -> Dispatcher:
            return RayDispatcher(runs_root, experiment, address=ray_cluster.address, poll_interval=0.2)

        return make


@pytest.mark.slow
class TestRayTaskContract(DispatcherContract):
    """The dispatcher contract with every job run as a Ray task (`mode: task`)."""

    @pytest.fixture
    def make_dispatcher(
        self, ray_cluster: LocalRayCluster, runs_root: Path, experiment: str
    ) -> Callable[[], Dispatcher]:
        def make() -> Dispatcher:
            return RayDispatcher(
                runs_root, experiment, address=ray_cluster.gcs_address, mode="task", poll_interval=0.2
            )

        return make


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["job", "task", "job-own-runs-dir"])
def test_asha_stops_ray_jobs_through_cancel_and_each_runs_once(
    ray_cluster: LocalRayCluster, tmp_path: Path, mode: str
) -> None:
    # The stopper decides from what the jobs report; the stop is a `cancel` of the Ray job or task.
    # "job-own-runs-dir": the nodes keep run directories this controller does not read, so the
    # jobs' progress reaches it through their logs' SWEEPWISE_METRICS lines.
    if mode == "task":
        dispatcher = {"type": "ray", "address": ray_cluster.gcs_address, "mode": "task"}
    else:
        dispatcher = {"type": "ray", "address": ray_cluster.address}
    if mode == "job-own-runs-dir":
        dispatcher["remote_runs_dir"] = str(tmp_path / "node-runs")
    name = f"es-{mode}"
    stopper = {"type": "asha", "grace_period": 5, "reduction_factor": 3, "max_t": STEPS}
    # Slower steps when rows come from the log, which is read at most every 5 s.
    step_sleep = 0.6 if mode == "job-own-runs-dir" else 0.3
    spec = write_sweep(tmp_path, stopper, name=name, dispatcher=dispatcher, step_sleep=step_sleep)
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=900)
    check_asha_sweep(tmp_path, name, result)
    if mode == "job-own-runs-dir":  # the controller's copies of the runs hold no metrics file
        assert not list((tmp_path / "runs").rglob("*metrics.jsonl"))
        assert list((tmp_path / "node-runs").rglob("*metrics.jsonl"))


@pytest.mark.slow
def test_a_controller_killed_between_a_stop_and_its_cancel_stops_the_ray_job_once(
    ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    # The cancel is a call to the cluster: the restarted controller reattaches the job and makes it.
    dispatcher = {"type": "ray", "address": ray_cluster.address}
    check_a_kill_between_the_decision_and_the_cancel(tmp_path, name="es-killed", dispatcher=dispatcher)


REPORTING_JOB = textwrap.dedent(
    """
    import os, time
    import sweepwise
    for step in range(1, 100000):
        sweepwise.report(step=step, score=float(step))
        if os.path.exists(os.environ["GO"]):
            break
        time.sleep(0.1)
    print("SWEEPWISE_RESULT " + '{"score": 1.0}')
    """
)


@contextlib.contextmanager
def _supervisor_of_class(
    cluster: LocalRayCluster, monkeypatch: pytest.MonkeyPatch, name: str, cls: type
) -> Iterator[None]:
    """Controllers made inside use a supervisor actor of class `cls`, named `name`, killed after."""
    import ray

    from sweepwise.dispatchers import _ray_tasks
    from sweepwise.dispatchers import ray as ray_module

    ray.init(address=cluster.gcs_address, ignore_reinit_error=True)
    actor = (
        ray.remote(cls)
        .options(name=name, namespace=_ray_tasks.NAMESPACE, lifetime="detached", num_cpus=0)
        .remote()
    )
    try:
        monkeypatch.setattr(ray_module, "SUPERVISOR", name)
        yield
    finally:
        ray.kill(actor, no_restart=True)


@pytest.mark.slow
def test_tasks_of_a_supervisor_older_than_metrics_still_run_to_their_end(
    ray_cluster: LocalRayCluster,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A cluster whose supervisor actor was made by a sweepwise without `metrics`: its tasks must
    # run as before (no row passed on, no error), and the controller says why nothing is judged.
    from sweepwise.dispatchers import _ray_tasks

    name = "sweepwise-supervisor-test-older"
    older = type(
        "TaskSupervisor",
        (),
        {key: value for key, value in vars(_ray_tasks.TaskSupervisor).items() if key != "metrics"},
    )
    with _supervisor_of_class(ray_cluster, monkeypatch, name, older):
        (work / "report.py").write_text(REPORTING_JOB)
        with caplog.at_level(logging.WARNING, logger="sweepwise.dispatchers._ray_tasks"):
            dispatcher = _task_dispatcher(ray_cluster, work)
            dispatcher.dispatch(_job(work, "demo_trial_0301", cmd=["python", "report.py"]))
            assert "predates early stopping of tasks" in caplog.text
        _wait_for(lambda: list((work / "runs").rglob("train.metrics.jsonl")), "the job to report")
        (work / "go-demo_trial_0301").touch()
        events = _until_finished(dispatcher, "demo_trial_0301")
        assert events[-1].succeeded and events[-1].result == {"score": 1.0}, events[-1].error
        assert not [event for event in events if event.kind is EventKind.METRICS]


@pytest.mark.slow
def test_a_task_whose_cancel_never_arrives_is_stopped_by_its_own_question(
    ray_cluster: LocalRayCluster, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `ray.cancel` is best effort (a task may never see its KeyboardInterrupt): this supervisor
    # loses every cancel, so only the task's own question (`stopping`) can stop the job.
    from sweepwise.dispatchers import _ray_tasks

    async def stop(self: Any, sid: str) -> bool:  # marks the job, and the cancel is lost
        if sid not in self._refs:
            return False
        self._stopping.add(sid)
        return True

    name = "sweepwise-supervisor-test-lost-cancel"
    losing = type("TaskSupervisor", (_ray_tasks.TaskSupervisor,), {"stop": stop})
    with _supervisor_of_class(ray_cluster, monkeypatch, name, losing):
        dispatcher = _task_dispatcher(ray_cluster, work)
        sid = dispatcher.dispatch(_job(work, "demo_trial_0302", overrides={"mode": "wait"}))
        [[*_, pid]] = [words for words in _wait_for(lambda: _side_effects(work), "the job to start")]
        dispatcher.cancel(sid)
        finished = _until_finished(dispatcher, "demo_trial_0302")[-1]
        assert finished.kind is EventKind.FINISHED and not finished.succeeded
        assert (finished.error or "").startswith("cancelled; exit code -15"), finished.error
        _wait_for(lambda: not alive(int(pid)), "the job's process to end", timeout=60)
        (work / "go-demo_trial_0302").touch()  # a job still running would now write "done"
        time.sleep(1)
        assert [words[4] for words in _side_effects(work)] == ["start"]
