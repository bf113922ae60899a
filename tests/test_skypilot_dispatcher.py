"""The SkyPilot dispatcher at SkyPilot's API boundary: the real `sky.Task`, SkyPilot's own status enum.

No cloud can be reached here, so SkyPilot's API server is played by `FakeSkyApi` (the
`SkyClient` the dispatcher talks to); everything on sweepwise's side of that boundary is
real: `sky.Task` / `sky.Resources` objects from the installed SkyPilot, its
`ManagedJobStatus` members and `ManagedJobRecord` records, the claims on disk, and the
job protocol that runs on a node (`python -m sweepwise.runtime.remote`).
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import yaml

from sweepwise.core.errors import ConfigError, DispatchError
from sweepwise.core.lifecycle import TrialRecord, apply_event
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.core.status import JobStatus
from sweepwise.dispatchers import DispatcherType, available_dispatchers, make_dispatcher
from sweepwise.dispatchers._sky_client import (
    LAUNCH_REQUEST,
    QUEUE_FIELDS,
    LaunchOutcome,
    LaunchState,
    sky_client,
)
from sweepwise.dispatchers.skypilot import STATUS_PHASES, SkyPhase, SkyPilotDispatcher

EXPERIMENT = "demo"
RUN = "demo_trial_0001"
NAME = f"{EXPERIMENT}.{RUN}.train"

# The phase each ManagedJobStatus must be, written out here: a member SkyPilot adds fails
# `test_every_managed_job_status_drives_the_lifecycle` until it is mapped.
EXPECTED_PHASES = {
    "PENDING": SkyPhase.QUEUED,
    "SUBMITTED": SkyPhase.QUEUED,
    "STARTING": SkyPhase.QUEUED,
    "RUNNING": SkyPhase.RUNNING,
    "WINDING_DOWN": SkyPhase.RUNNING,
    "RECOVERING": SkyPhase.RECOVERING,
    "SUCCEEDED": SkyPhase.SUCCEEDED,
    "FAILED": SkyPhase.FAILED,
    "FAILED_SETUP": SkyPhase.FAILED,
    "FAILED_PRECHECKS": SkyPhase.FAILED,
    "FAILED_NO_RESOURCE": SkyPhase.FAILED,
    "FAILED_CONTROLLER": SkyPhase.FAILED,
    "CANCELLING": SkyPhase.CANCELLED,
    "CANCELLED": SkyPhase.CANCELLED,
}


@pytest.fixture(scope="module")
def sky() -> ModuleType:
    import sky

    return sky


class FakeSkyApi:
    """Stands in for SkyPilot's API server, because no cloud (nor API server) can be reached here.

    It implements the dispatcher's `SkyClient`: `launch` records the real `sky.Task` and
    answers a request id; `queue` answers real `ManagedJobRecord`s (the records
    `sky.jobs.queue_v2` returns) built from `jobs`; `cancel` and `logs` act on them.
    With `auto_submit`, a launch request succeeds at once and its job is PENDING.
    """

    def __init__(self, sky: ModuleType, *, auto_submit: bool = True) -> None:
        from sky.schemas.api.responses import ManagedJobRecord

        self._record = ManagedJobRecord
        self.sky = sky
        self.auto_submit = auto_submit
        self.launched: list[tuple[Any, str]] = []
        self.launch_times: dict[str, tuple[str, float]] = {}  # request id: (job name, when it was made)
        self.requests: dict[str, LaunchOutcome] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.logs_text: dict[int, str] = {}
        self.cancelled: list[tuple[str, int | None]] = []
        self.unreachable = False

    # -- what the tests do to the "server" --

    def submit(self, name: str, *, submitted_at: float | None = None) -> int:
        """A managed job named `name` appears in the queue, PENDING; its id."""
        job_id = len(self.jobs) + 1
        self.jobs[job_id] = {
            "job_id": job_id,
            "task_id": 0,
            "job_name": name,
            "task_name": name,
            "status": self.sky.jobs.ManagedJobStatus.PENDING,
            "submitted_at": time.time() if submitted_at is None else submitted_at,
            "recovery_count": 0,
        }
        return job_id

    def set(self, job_id: int, status: Any, **fields: Any) -> None:
        self.jobs[job_id].update(status=status, **fields)

    # -- the SkyClient the dispatcher calls --

    def launch(self, task: Any, name: str) -> str:
        self._check()
        request_id = f"request-{len(self.launched) + 1}"
        self.launched.append((task, name))
        self.launch_times[request_id] = (name, time.time())
        self.requests[request_id] = LaunchOutcome(LaunchState.RUNNING)
        if self.auto_submit:
            self.requests[request_id] = LaunchOutcome(LaunchState.SUCCEEDED, job_id=self.submit(name))
        return request_id

    def launch_outcome(self, request_id: str) -> LaunchOutcome:
        self._check()
        return self.requests.get(request_id, LaunchOutcome(LaunchState.UNKNOWN))

    def launch_requests(self, name: str, since: float) -> list[str]:
        self._check()
        return [rid for rid, (named, at) in self.launch_times.items() if named == name and at >= since]

    def queue(self, name_prefix: str) -> list[Any]:
        self._check()
        return [self._record(**job) for job in self.jobs.values() if job["job_name"].startswith(name_prefix)]

    def cancel(self, name: str, job_id: int | None = None) -> None:
        self._check()
        self.cancelled.append((name, job_id))
        for job in self.jobs.values():
            if job["job_id"] == job_id or (job_id is None and job["job_name"] == name):
                if not job["status"].is_terminal():
                    job["status"] = self.sky.jobs.ManagedJobStatus.CANCELLING

    def logs(self, name: str, job_id: int | None = None, tail: int | None = None) -> str:
        self._check()
        text = self.logs_text.get(job_id or 0, "")
        return "\n".join(text.split("\n")[-tail:]) if tail else text

    def _check(self) -> None:
        if self.unreachable:
            raise ConnectionError("Could not connect to SkyPilot API server at http://127.0.0.1:46580")


def _job(**fields: Any) -> JobDefinition:
    fields.setdefault("run_id", RUN)
    fields.setdefault("cmd", "python train.py")
    return JobDefinition(**fields)


def _dispatcher(runs_root: Path, api: FakeSkyApi, **options: Any) -> SkyPilotDispatcher:
    return SkyPilotDispatcher(
        runs_root, EXPERIMENT, incarnation="inc-1", poll_interval=0, client=api, **options
    )


def _kinds(events: list[JobEvent]) -> list[EventKind]:
    return [event.kind for event in events]


# -- (a) the task built for a job -------------------------------------------------------------


def test_the_task_of_a_job(sky: ModuleType, runs_root: Path, tmp_path: Path) -> None:
    api = FakeSkyApi(sky)
    dispatcher = _dispatcher(
        runs_root,
        api,
        cloud="aws",
        region="us-east-1",
        accelerator="A100",
        cpus="8+",
        memory=32,
        use_spot=True,
        image_id="docker:pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime",
        workdir=str(tmp_path),
        setup=["pip install sweepwise", "pip install -r requirements.txt"],
        envs={"WANDB_PROJECT": "sweeps"},
        file_mounts={"/data": "s3://corpus/data", "/runs": {"name": "sweep-runs", "mode": "MOUNT"}},
        remote_runs_dir="/runs",
    )
    job = _job(gpus=2, nodes=2, overrides={"lr": "0.1; rm -rf / $(x)"}, env={"WANDB_API_KEY": "s3cr3t"})

    assert dispatcher.dispatch(job) == NAME
    [(task, name)] = api.launched
    assert isinstance(task, sky.Task) and name == NAME
    job_json = job.recorded().model_dump_json()
    assert task.name == NAME
    assert task.run == "python -m sweepwise.runtime.remote"  # fixed: no value passes through a shell
    assert task.num_nodes == 2
    assert task.envs == {
        "WANDB_PROJECT": "sweeps",
        "SWEEPWISE_JOB": job_json,
        "SWEEPWISE_RUNS_ROOT": "/runs",
        "SWEEPWISE_EXPERIMENT": EXPERIMENT,
        "SWEEPWISE_RUN_ID": RUN,
        "SWEEPWISE_JOB_TYPE": "train",
        "SWEEPWISE_ATTEMPT": "1",
    }
    assert json.loads(job_json)["overrides"] == {"lr": "0.1; rm -rf / $(x)"}
    assert "s3cr3t" not in job_json  # env values travel as SkyPilot secrets, redacted in its output
    assert {key: value.get_secret_value() for key, value in task.secrets.items()} == {
        "WANDB_API_KEY": "s3cr3t"
    }
    [resources] = list(task.resources)
    assert isinstance(resources, sky.Resources)
    assert resources.accelerators == {"A100": 2}
    assert resources.use_spot is True
    assert (str(resources.cloud), resources.region, resources.zone) == ("AWS", "us-east-1", None)
    assert (resources.cpus, resources.memory) == ("8+", "32")
    assert resources.image_id == {"us-east-1": "docker:pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime"}
    assert task.to_yaml_config() == {
        "name": NAME,
        "resources": {
            "_requires_fuse": True,  # SkyPilot's mark for the bucket mount
            "infra": "aws/us-east-1",
            "cpus": "8+",
            "memory": "32",
            "accelerators": {"A100": 2},
            "use_spot": True,
            "image_id": {"us-east-1": "docker:pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime"},
        },
        "num_nodes": 2,
        "setup": "pip install sweepwise\npip install -r requirements.txt",
        "workdir": str(tmp_path),
        "run": "python -m sweepwise.runtime.remote",
        "envs": task.envs,
        "secrets": {"WANDB_API_KEY": "s3cr3t"},
        "file_mounts": {
            "/data": "s3://corpus/data",
            "/runs": {"name": "sweep-runs", "persistent": True, "mode": "MOUNT"},
        },
        "volumes": {},
    }


def test_a_cpu_job_and_a_second_attempt(sky: ModuleType, runs_root: Path) -> None:
    api = FakeSkyApi(sky)
    dispatcher = _dispatcher(runs_root, api, accelerator="H100")
    eval_job = _job(type=JobTypes.LAUNCH_EVAL, cmd="python eval.py")
    retry = _job(attempt=2)

    assert dispatcher.dispatch(eval_job) == f"{EXPERIMENT}.{RUN}.eval"
    assert dispatcher.dispatch(retry) == f"{EXPERIMENT}.{RUN}.train.2"
    (eval_task, _), (retry_task, _) = api.launched
    [eval_resources] = list(eval_task.resources)
    assert eval_resources.accelerators is None and eval_resources.use_spot is False
    assert eval_resources.to_yaml_config() == {}  # SkyPilot picks the cloud and a CPU machine
    assert eval_task.num_nodes == 1 and eval_task.workdir is None and eval_task.setup is None
    assert eval_task.envs["SWEEPWISE_JOB_TYPE"] == "eval"
    assert (retry_task.name, retry_task.envs["SWEEPWISE_ATTEMPT"]) == (f"{EXPERIMENT}.{RUN}.train.2", "2")


# -- (b) every ManagedJobStatus -----------------------------------------------------------------


def _through_lifecycle(events: list[JobEvent]) -> TrialRecord:
    """A PENDING run whose training job gets `events`, as the store applies them."""
    record = TrialRecord(
        RUN, EXPERIMENT, False, False, False, False, False, False, False, None, None, None, 0.0, 0.0, None, {}
    )
    for event in events:
        apply_event(record, event)
    return record


def test_every_managed_job_status_drives_the_lifecycle(
    sky: ModuleType, runs_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    members = list(sky.jobs.ManagedJobStatus)
    assert {member.value for member in members} == set(EXPECTED_PHASES), "map every ManagedJobStatus"
    assert {member.value: STATUS_PHASES[member.value] for member in members} == EXPECTED_PHASES
    for member in members:
        root = runs_root / member.name
        api = FakeSkyApi(sky)
        dispatcher = _dispatcher(root, api)
        dispatcher.dispatch(_job())
        [job_id] = api.jobs
        assert _kinds(dispatcher.poll()) == [EventKind.HEARTBEAT], member  # PENDING: SkyPilot holds it
        api.set(job_id, member, start_at=time.time() - 60, end_at=time.time(), failure_reason="exit code 3")
        api.logs_text[job_id] = "\n".join(
            [
                "(demo.demo_trial_0001.train, pid=2811) step 100 loss 0.3",
                '\x1b[36m(demo.demo_trial_0001.train, pid=2811)\x1b[0m SWEEPWISE_RESULT {"score": 0.9}',
                f"\x1b[32m✓ Job finished (status: {member.value}).\x1b[0m",
            ]
        )
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sweepwise.dispatchers.skypilot"):
            events = dispatcher.poll()
        phase = EXPECTED_PHASES[member.value]
        run = _through_lifecycle(events)
        if phase is SkyPhase.QUEUED:
            assert _kinds(events) == [EventKind.HEARTBEAT], member
            assert run.status is JobStatus.PENDING
        elif phase in (SkyPhase.RUNNING, SkyPhase.RECOVERING):
            assert _kinds(events) == [EventKind.STARTED, EventKind.HEARTBEAT], member
            assert run.status is JobStatus.IN_TRAINING
            assert _kinds(dispatcher.poll()) == [EventKind.HEARTBEAT]  # alive: started once
            recovering = "preempted" in caplog.text
            assert recovering is (phase is SkyPhase.RECOVERING), member
        else:
            assert _kinds(events) == [EventKind.STARTED, EventKind.FINISHED], member
            finished = events[-1]
            assert finished.dispatch_id == NAME and finished.started_at == events[0].at
            assert dispatcher.poll() == []  # done with: never reported twice
            if phase is SkyPhase.SUCCEEDED:
                assert finished.succeeded and finished.result == {"score": 0.9}
                assert run.status is JobStatus.TRAINING_DONE_NO_EVAL
                assert (root / EXPERIMENT / RUN / "train.log").read_text() == api.logs_text[job_id]
            elif phase is SkyPhase.FAILED:
                assert not finished.succeeded and finished.exit_code is None and not finished.timed_out
                assert finished.error is not None
                assert finished.error.startswith(f"SkyPilot {member.value}: "), finished.error
                assert finished.error.endswith(
                    '(exit code 3); last output: SWEEPWISE_RESULT {"score": 0.9}'
                ), finished.error  # the job's last line, not SkyPilot's
                assert run.status is JobStatus.FAILED
            else:
                assert finished.error == f"cancelled (SkyPilot {member.value})"
                assert run.status is JobStatus.FAILED and run.error == finished.error


def test_a_timed_out_job_fails_with_reason_timeout(sky: ModuleType, runs_root: Path) -> None:
    api = FakeSkyApi(sky)
    dispatcher = _dispatcher(runs_root, api)
    dispatcher.dispatch(_job(timeout=60))
    [job_id] = api.jobs
    api.set(job_id, sky.jobs.ManagedJobStatus.FAILED, start_at=time.time() - 70, end_at=time.time())
    api.logs_text[job_id] = "epoch 3\nsweepwise: timeout: ran longer than its 60 s limit\n"

    [_, finished] = dispatcher.poll()
    assert finished.timed_out
    assert finished.error is not None and finished.error.startswith("timeout: ran longer than its 60 s limit")


def test_a_finished_job_whose_result_is_not_an_object_fails_saying_why(
    sky: ModuleType, runs_root: Path
) -> None:
    api = FakeSkyApi(sky)
    dispatcher = _dispatcher(runs_root, api)
    dispatcher.dispatch(_job())
    [job_id] = api.jobs
    api.set(job_id, sky.jobs.ManagedJobStatus.SUCCEEDED, start_at=time.time() - 5, end_at=time.time())
    api.logs_text[job_id] = "SWEEPWISE_RESULT [0.9]"

    finished = dispatcher.poll()[-1]
    assert finished.result is None and not finished.succeeded
    assert finished.error == (
        "the last SWEEPWISE_RESULT line of train.log holds an array, not a JSON object of metrics; "
        'print one JSON object on one line, e.g. SWEEPWISE_RESULT {"score": 0.9}'
    )


def test_a_launch_on_its_way_then_refused(sky: ModuleType, runs_root: Path) -> None:
    api = FakeSkyApi(sky, auto_submit=False)
    dispatcher = _dispatcher(runs_root, api)
    dispatcher.dispatch(_job())

    assert _kinds(dispatcher.poll()) == [EventKind.HEARTBEAT]  # the API server holds the request
    api.requests["request-1"] = LaunchOutcome(LaunchState.FAILED, error="No cloud is enabled. Run: sky check")
    [finished] = dispatcher.poll()
    assert finished.kind is EventKind.FINISHED and not finished.succeeded
    assert finished.error == f"sky.jobs.launch of {NAME} failed: No cloud is enabled. Run: sky check"


def test_a_job_gone_from_the_queue_is_lost(sky: ModuleType, runs_root: Path) -> None:
    api = FakeSkyApi(sky)
    dispatcher = _dispatcher(runs_root, api)
    dispatcher.dispatch(_job())
    api.jobs.clear()

    assert dispatcher.poll() == [] and dispatcher.poll() == []
    [lost] = dispatcher.poll()
    assert lost.kind is EventKind.LOST
    assert lost.error == f"job lost: SkyPilot's managed-jobs queue has no job {NAME} (id 1)"


def test_an_unreachable_api_server_gives_no_events(
    sky: ModuleType, runs_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeSkyApi(sky)
    dispatcher = _dispatcher(runs_root, api)
    dispatcher.dispatch(_job())
    api.unreachable = True

    with caplog.at_level(logging.WARNING, logger="sweepwise.dispatchers.skypilot"):
        assert dispatcher.poll() == [] and dispatcher.poll() == []
    assert caplog.text.count("cannot reach SkyPilot's API server") == 1
    api.unreachable = False
    assert _kinds(dispatcher.poll()) == [EventKind.HEARTBEAT]


# -- (c) idempotent dispatch, restart, cancel, logs ------------------------------------------------


def test_dispatch_is_idempotent_and_a_restarted_controller_reattaches(
    sky: ModuleType, runs_root: Path
) -> None:
    api = FakeSkyApi(sky)
    first = _dispatcher(runs_root, api)
    job = _job()
    assert first.dispatch(job) == first.dispatch(job) == NAME
    claim = json.loads((runs_root / EXPERIMENT / RUN / "train.dispatch.json").read_text())
    assert (claim["request_id"], claim["job_id"], claim["incarnation"]) == ("request-1", None, "inc-1")
    assert _kinds(first.poll()) == [EventKind.HEARTBEAT]
    claim = json.loads((runs_root / EXPERIMENT / RUN / "train.dispatch.json").read_text())
    assert claim["job_id"] == 1  # learnt from the queue
    api.set(1, sky.jobs.ManagedJobStatus.RUNNING, start_at=time.time())

    # The controller is killed; a new one over the same runs dir finds the job, launches nothing.
    second = _dispatcher(runs_root, api)
    assert second.find(RUN, JobTypes.LAUNCH_TRAINING) == NAME
    second.reattach(NAME, RUN, JobTypes.LAUNCH_TRAINING)
    assert _kinds(second.poll()) == [EventKind.STARTED, EventKind.HEARTBEAT]
    assert second.dispatch(job) == NAME  # a dispatch of the same job, too, only watches it
    third = _dispatcher(runs_root, api)
    assert third.dispatch(job) == NAME
    assert len(api.launched) == 1
    api.set(1, sky.jobs.ManagedJobStatus.SUCCEEDED, end_at=time.time())
    api.logs_text[1] = 'SWEEPWISE_RESULT {"score": 1.5}'
    assert third.poll()[-1].result == {"score": 1.5}
    assert third.find(RUN, JobTypes.LAUNCH_EVAL) is None  # never claimed


def _claim_only(runs_root: Path, claimed_at: float) -> Path:
    """What a controller killed between the claim and the launch leaves behind."""
    run_dir = runs_root / EXPERIMENT / RUN
    run_dir.mkdir(parents=True)
    claim = run_dir / "train.dispatch.json"
    claim.write_text(
        json.dumps({"run_id": RUN, "job": "train", "claimed_at": claimed_at, "incarnation": "inc-1"})
    )
    return claim


def test_a_claim_whose_launch_reached_skypilot_is_found_by_name(sky: ModuleType, runs_root: Path) -> None:
    claim = _claim_only(runs_root, time.time() - 5)
    api = FakeSkyApi(sky)
    api.submit(NAME, submitted_at=time.time() - 30 * 86400)  # an older experiment's job of that name
    job_id = api.submit(NAME)
    dispatcher = _dispatcher(runs_root, api)

    assert dispatcher.find(RUN, JobTypes.LAUNCH_TRAINING) == NAME
    assert json.loads(claim.read_text())["job_id"] == job_id
    assert dispatcher.dispatch(_job()) == NAME
    assert api.launched == []


def test_a_claim_without_a_launch_is_set_aside_and_launched_once(sky: ModuleType, runs_root: Path) -> None:
    claim = _claim_only(runs_root, time.time() - 5)
    api = FakeSkyApi(sky)
    api.submit(NAME, submitted_at=time.time() - 30 * 86400)  # not ours: submitted long before the claim
    dispatcher = _dispatcher(runs_root, api)

    assert dispatcher.find(RUN, JobTypes.LAUNCH_TRAINING) is None
    assert not claim.exists() and len(list(claim.parent.glob("train.dispatch.json.void-*"))) == 1
    assert dispatcher.dispatch(_job()) == NAME
    assert dispatcher.dispatch(_job()) == NAME
    assert [name for _, name in api.launched] == [NAME]
    assert _kinds(dispatcher.poll()) == [EventKind.HEARTBEAT]
    assert json.loads(claim.read_text())["job_id"] == 2  # the new job, not the old one of that name


def test_a_launch_taken_by_the_api_server_before_the_controller_died_is_not_launched_again(
    sky: ModuleType, runs_root: Path
) -> None:
    # The controller died after SkyPilot's API server took the launch, before it wrote the
    # request's id into the claim; the managed job is not in the queue yet (its jobs controller
    # is being provisioned).
    api = FakeSkyApi(sky, auto_submit=False)
    first = _dispatcher(runs_root, api)
    first.dispatch(_job())
    claim = runs_root / EXPERIMENT / RUN / "train.dispatch.json"
    record = json.loads(claim.read_text())
    del record["request_id"]
    claim.write_text(json.dumps(record))

    restarted = _dispatcher(runs_root, api)
    assert restarted.find(RUN, JobTypes.LAUNCH_TRAINING) == NAME
    assert json.loads(claim.read_text())["request_id"] == "request-1"
    assert restarted.dispatch(_job()) == NAME
    assert [name for _, name in api.launched] == [NAME]  # launched once
    assert _kinds(restarted.poll()) == [EventKind.HEARTBEAT]  # the launch is on its way
    api.requests["request-1"] = LaunchOutcome(LaunchState.SUCCEEDED, job_id=api.submit(NAME))
    api.set(1, sky.jobs.ManagedJobStatus.RUNNING)
    assert EventKind.STARTED in _kinds(restarted.poll())


def test_a_claim_of_another_incarnation_is_refused(sky: ModuleType, runs_root: Path) -> None:
    _dispatcher(runs_root, FakeSkyApi(sky)).dispatch(_job())
    other = SkyPilotDispatcher(runs_root, EXPERIMENT, incarnation="inc-2", client=FakeSkyApi(sky))
    with pytest.raises(DispatchError, match="belongs to another experiment of the same name"):
        other.find(RUN, JobTypes.LAUNCH_TRAINING)


def test_cancel_also_reaches_a_job_not_yet_in_the_queue(sky: ModuleType, runs_root: Path) -> None:
    api = FakeSkyApi(sky, auto_submit=False)
    dispatcher = _dispatcher(runs_root, api)
    dispatcher.dispatch(_job())
    dispatcher.cancel(NAME)
    assert api.cancelled == [(NAME, None)]  # by name: SkyPilot has no job of that name yet

    job_id = api.submit(NAME)
    api.requests["request-1"] = LaunchOutcome(LaunchState.SUCCEEDED, job_id=job_id)
    assert _kinds(dispatcher.poll()) == [EventKind.HEARTBEAT]
    assert api.cancelled == [(NAME, None), (NAME, job_id)]  # cancelled once it appeared
    [finished] = dispatcher.poll()
    assert finished.error == "cancelled (SkyPilot CANCELLING)"

    restarted = _dispatcher(runs_root, api)
    restarted.cancel(NAME)  # an ended job: no error
    assert api.cancelled[-1] == (NAME, job_id)
    with pytest.raises(DispatchError, match="malformed SkyPilot dispatch id"):
        restarted.cancel("other.run.train")


def test_read_log(sky: ModuleType, runs_root: Path) -> None:
    api = FakeSkyApi(sky)
    dispatcher = _dispatcher(runs_root, api)
    assert dispatcher.read_log(RUN, JobTypes.LAUNCH_TRAINING) is None  # never launched
    dispatcher.dispatch(_job())
    api.set(1, sky.jobs.ManagedJobStatus.SUCCEEDED, start_at=time.time(), end_at=time.time())
    api.logs_text[1] = "hello\nSWEEPWISE_RESULT {}"
    dispatcher.poll()

    restarted = _dispatcher(runs_root, api)
    assert restarted.read_log(RUN, JobTypes.LAUNCH_TRAINING) == "hello\nSWEEPWISE_RESULT {}"
    api.unreachable = True  # the copy kept when the job ended
    assert restarted.read_log(RUN, JobTypes.LAUNCH_TRAINING) == "hello\nSWEEPWISE_RESULT {}"


# -- (d) a missing extra, bad options ----------------------------------------------------------


def test_without_skypilot_one_line_names_the_extra(monkeypatch: pytest.MonkeyPatch, runs_root: Path) -> None:
    monkeypatch.setitem(sys.modules, "sky", None)  # `import sky` fails as when it is not installed
    with pytest.raises(ConfigError) as caught:
        make_dispatcher("skypilot", runs_root=runs_root, experiment=EXPERIMENT)
    assert str(caught.value) == 'dispatcher: SkyPilot is not installed: run pip install "sweepwise[skypilot]"'


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"use_spot": "yes"}, "dispatcher.use_spot: expected true or false, got 'yes'"),
        ({"accelerator": "A100:8"}, "dispatcher.accelerator: 'A100:8': give the type only"),
        ({"cpus": "lots"}, "dispatcher.cpus: expected a positive number or a string like '8+', got 'lots'"),
        (
            {"cloud": "nosuchcloud"},
            "dispatcher: SkyPilot refuses these resources: Cloud 'nosuchcloud' is not",
        ),
        ({"zone": "us-east-1a"}, "dispatcher.zone: a zone needs its region"),
        ({"infra": "aws", "cloud": "aws"}, "dispatcher.infra: give infra or cloud/region/zone, not both"),
        ({"envs": {"SWEEPWISE_JOB": "{}"}}, "dispatcher.envs: SWEEPWISE_JOB is sweepwise's own; remove it"),
        ({"envs": {"N": 1}}, "dispatcher.envs: expected a mapping of names to strings"),
        ({"file_mounts": {"/x": 3}}, "dispatcher.file_mounts./x: expected a local path, a bucket URI"),
        ({"file_mounts": {"/x": {"name": "b", "mode": "NO"}}}, "dispatcher.file_mounts./x: Invalid storage"),
        ({"workdir": "/no/such/dir"}, "dispatcher.workdir: directory '/no/such/dir' does not exist"),
        ({"poll_interval": -1}, "dispatcher.poll_interval: expected seconds >= 0, got -1"),
        ({"metrics_interval": "1m"}, "dispatcher.metrics_interval: expected seconds >= 0, got '1m'"),
    ],
)
def test_a_bad_option_is_one_config_error_line(
    sky: ModuleType, runs_root: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        SkyPilotDispatcher(runs_root, EXPERIMENT, client=FakeSkyApi(sky), **options)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_jobs_with_gpus_need_a_gpu_type_and_names_skypilot_accepts(sky: ModuleType, runs_root: Path) -> None:
    dispatcher = _dispatcher(runs_root, FakeSkyApi(sky))
    with pytest.raises(ConfigError, match=r"^dispatcher.accelerator: jobs ask for 2 GPUs but no GPU type"):
        dispatcher.dispatch(_job(gpus=2))
    with pytest.raises(ConfigError, match=r"^experiment: SkyPilot refuses the job name 'demo.a___b.train'"):
        dispatcher.dispatch(_job(run_id="a___b"))
    assert not (runs_root / EXPERIMENT / RUN).exists()  # refused before anything was claimed


def test_skypilot_is_a_builtin_dispatcher_and_seed_002_may_name_it() -> None:
    from sweepwise.recipes import AdaptiveTool
    from sweepwise.schedulers.train_and_eval import TrainAndEvalConfig

    assert DispatcherType.SKYPILOT == "skypilot" and "skypilot" in available_dispatchers()
    config = TrainAndEvalConfig(recipe_module="seed_recipes.arena", max_trials=2)
    tool = AdaptiveTool(scheduler_type="train_and_eval", scheduler_config=config, dispatcher_type="SKYPILOT")
    assert tool.dispatcher_type == "skypilot"


# -- the job protocol on a node --------------------------------------------------------------------

TRAIN = """
import sys, time
import sweepwise
params = dict(word.split("=", 1) for word in sys.argv[1:])
print("training with lr", params["lr"], flush=True)
if params["lr"] == "fail":
    sys.exit(3)
if params["lr"] == "hang":
    time.sleep(600)
sweepwise.report_result(score=0.5, lr=params["lr"])
"""


def _run_on_node(
    task: Any, workdir: Path, remote_runs: Path, rank: str = "0"
) -> subprocess.CompletedProcess[str]:
    """Run a task's `run` command as a SkyPilot node would: in its workdir, with its envs and secrets."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    env.update(task.envs)
    env.update({key: value.get_secret_value() for key, value in task.secrets.items()})
    env.update(SWEEPWISE_RUNS_ROOT=str(remote_runs), SKYPILOT_NODE_RANK=rank)
    argv = [sys.executable if word == "python" else word for word in task.run.split()]
    return subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)


def _launched(
    sky: ModuleType, runs_root: Path, tmp_path: Path, script: str, job: JobDefinition, **options: Any
) -> tuple[FakeSkyApi, SkyPilotDispatcher, Any, Path]:
    """`job` dispatched with `script` as its code's train.py: the API, dispatcher, task and workdir."""
    workdir = tmp_path / "code"
    workdir.mkdir()
    (workdir / "train.py").write_text(script)
    api = FakeSkyApi(sky)
    dispatcher = _dispatcher(runs_root, api, workdir=str(workdir), **options)
    dispatcher.dispatch(job)
    [(task, _)] = api.launched
    return api, dispatcher, task, workdir


def test_a_node_runs_the_job_and_its_log_ends_with_the_result(
    sky: ModuleType, runs_root: Path, tmp_path: Path
) -> None:
    job = _job(overrides={"lr": "0.1; rm -rf / $(x)"}, env={"TOKEN": "t0k"})
    api, dispatcher, task, workdir = _launched(sky, runs_root, tmp_path, TRAIN, job)

    node = _run_on_node(task, workdir, tmp_path / "node-runs")
    assert node.returncode == 0, node.stderr
    lines = node.stdout.splitlines()
    assert lines[0] == "training with lr 0.1; rm -rf / $(x)"  # the job's output, in the task's log
    assert lines[-1] == 'SWEEPWISE_RESULT {"score":0.5,"lr":"0.1; rm -rf / $(x)"}'
    assert (tmp_path / "node-runs" / EXPERIMENT / RUN / "train.result.json").exists()

    api.set(1, sky.jobs.ManagedJobStatus.SUCCEEDED, start_at=time.time(), end_at=time.time())
    api.logs_text[1] = "".join(f"(task, pid=77) {line}\n" for line in lines)
    finished = dispatcher.poll()[-1]
    assert finished.succeeded and finished.result == {"score": 0.5, "lr": "0.1; rm -rf / $(x)"}


@pytest.mark.slow  # a node running a job: the test above, in the fast subset
def test_a_node_reports_a_failure_and_only_rank_0_the_result(
    sky: ModuleType, runs_root: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "code"
    workdir.mkdir()
    (workdir / "train.py").write_text(TRAIN)
    api = FakeSkyApi(sky)
    dispatcher = _dispatcher(runs_root, api)
    dispatcher.dispatch(_job(overrides={"lr": "fail"}))
    dispatcher.dispatch(_job(run_id="demo_trial_0002", overrides={"lr": "0.2"}))
    dispatcher.dispatch(_job(run_id="demo_trial_0003", overrides={"lr": "hang"}, timeout=0.5))
    (failing, _), (worker, _), (hanging, _) = api.launched

    failed = _run_on_node(failing, workdir, tmp_path / "node-runs")
    assert failed.returncode == 3 and "SWEEPWISE_RESULT" not in failed.stdout
    stopped = _run_on_node(hanging, workdir, tmp_path / "node-runs")
    assert stopped.returncode == 128 + 15  # SIGTERM from its supervisor, at its timeout
    assert stopped.stdout.splitlines()[-1] == "sweepwise: timeout: ran longer than its 0.5 s limit"
    on_worker = _run_on_node(worker, workdir, tmp_path / "node-runs", rank="1")
    assert on_worker.returncode == 0 and "SWEEPWISE_RESULT" not in on_worker.stdout
    assert (tmp_path / "node-runs" / "rank-1" / EXPERIMENT / "demo_trial_0002" / "train.result.json").exists()


REPORTING = """
import time
import sweepwise
for step in (1, 2, 3):
    print("epoch", step, end=" ", flush=True)  # a line left open: the runner's own line starts anew
    sweepwise.report(step=step, loss=1.0 / step)
    time.sleep(0.5)
sweepwise.report_result(loss=0.25)
"""


def test_a_running_jobs_reports_reach_the_controller_through_its_log(
    sky: ModuleType, runs_root: Path, tmp_path: Path
) -> None:
    # Early stopping on SkyPilot: the node's files are out of reach, so the runner writes each new
    # `sweepwise.report` row into the log, and the dispatcher reads the newest while the job runs.
    api, dispatcher, task, workdir = _launched(
        sky, runs_root, tmp_path, REPORTING, _job(), metrics_interval=0
    )
    node = _run_on_node(task, workdir, tmp_path / "node-runs")
    assert node.returncode == 0, node.stderr
    lines = node.stdout.splitlines()
    forwarded = [json.loads(line.split(" ", 1)[1]) for line in lines if line.startswith("SWEEPWISE_METRICS ")]
    steps = [row["step"] for row in forwarded]  # the newest row after each copy of the output
    assert steps == sorted(set(steps)) and steps[-1] == 3 and forwarded[-1]["loss"] == 1 / 3
    assert lines[-1] == 'SWEEPWISE_RESULT {"loss":0.25}'
    other = _run_on_node(task, workdir, tmp_path / "node-runs", rank="1")
    assert other.returncode == 0 and "SWEEPWISE_" not in other.stdout  # rank 0 speaks for the job

    api.set(1, sky.jobs.ManagedJobStatus.RUNNING, start_at=time.time())
    cut = next(i for i, line in enumerate(lines) if line.startswith("SWEEPWISE_METRICS ")) + 1
    for upto, step in ((cut, steps[0]), (len(lines) - 1, 3)):  # the log as it grows
        api.logs_text[1] = "".join(f"(task, pid=77) {line}\n" for line in lines[:upto])
        [metrics] = [event for event in dispatcher.poll() if event.kind is EventKind.METRICS]
        assert metrics.metrics == {"step": step, "loss": 1.0 / step}
        assert not [event for event in dispatcher.poll() if event.kind is EventKind.METRICS]  # once
    api.logs_text[1] += '(task, pid=77) SWEEPWISE_METRICS {"step": 4}\n'

    def unreadable(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("the log cannot be read now")

    api.logs = unreadable  # type: ignore[method-assign]
    assert _kinds(dispatcher.poll()) == [EventKind.HEARTBEAT]  # still alive, no error
    del api.logs  # readable again: the row is reported at the next poll
    assert [event.metrics for event in dispatcher.poll() if event.kind is EventKind.METRICS] == [{"step": 4}]


class _CountingApi(FakeSkyApi):
    """`FakeSkyApi` that counts the reads of logs."""

    log_reads = 0

    def logs(self, name: str, job_id: int | None = None, tail: int | None = None) -> str:
        self.log_reads += 1
        return super().logs(name, job_id, tail)


def test_a_running_jobs_log_is_read_for_metrics_at_most_once_per_metrics_interval(
    sky: ModuleType, runs_root: Path
) -> None:
    # One `tail_logs` call per running job per read: with many jobs the reads must be spaced.
    for interval, expected in ((None, 0), (60.0, 1), (0, 3)):
        api = _CountingApi(sky)
        dispatcher = _dispatcher(runs_root / str(interval), api, metrics_interval=interval)
        dispatcher.dispatch(_job())
        api.set(1, sky.jobs.ManagedJobStatus.RUNNING, start_at=time.time())
        api.logs_text[1] = 'SWEEPWISE_METRICS {"step": 1}\n'
        for _ in range(3):
            dispatcher.poll()
        assert api.log_reads == expected, interval


def test_the_spec_in_docs_backends(sky: ModuleType, runs_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "backends.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", doc[doc.index("## SkyPilot") :], re.S)
    assert block is not None
    spec = yaml.safe_load(block[1])
    options = dict(spec["dispatcher"])
    assert options.pop("type") == "skypilot"
    monkeypatch.chdir(runs_root.parent)  # the spec's directory: `workdir: .`
    api = FakeSkyApi(sky)
    dispatcher = SkyPilotDispatcher(runs_root, spec["name"], client=api, **options)
    dispatcher.dispatch(_job(run_id="sky-sweep_trial_0001", gpus=spec["train"]["gpus"]))

    [(task, name)] = api.launched
    assert name == "sky-sweep.sky-sweep_trial_0001.train"
    [resources] = list(task.resources)
    assert resources.to_yaml_config() == {
        "_requires_fuse": True,
        "infra": "aws/us-east-1",
        "cpus": "8+",
        "memory": "32+",
        "accelerators": {"A100": 1},
        "use_spot": True,
    }
    assert task.workdir == str(runs_root.parent) and task.setup.startswith("pip install sweepwise")
    assert task.envs["SWEEPWISE_RUNS_ROOT"] == "/sweepwise-runs" and task.envs["WANDB_PROJECT"] == "sky-sweep"


# -- the real client: each call as the installed SkyPilot's functions take it ------------------------


class _Call:
    """A stand-in for one `sky` function: it checks the call against the real function's signature."""

    def __init__(self, real: Callable[..., Any], answer: Callable[..., Any]) -> None:
        self.signature = inspect.signature(real)
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = self.signature.bind(*args, **kwargs)  # a TypeError if SkyPilot does not take these
        self.calls.append(dict(bound.arguments))
        return self.answer(**bound.arguments)


def test_the_client_calls_skypilot_as_its_api_takes(sky: ModuleType) -> None:
    record = {"job_id": 4, "job_name": NAME, "status": sky.jobs.ManagedJobStatus.RUNNING}
    not_up = [True]

    def queue_answer(**arguments: Any) -> str:
        if not arguments["refresh"] and not_up.pop():
            raise sky.exceptions.ClusterNotUpError("Jobs controller is not up")
        return "queue-request"

    def logs_answer(output_stream: io.StringIO, **arguments: Any) -> None:
        output_stream.write("hello\n")

    results: dict[str, Any] = {"launch-request": ([4], None), "queue-request": ([record], 1, {}, 1)}
    statuses = {"launch-request": "SUCCEEDED", "pending-request": "PENDING", "refused-request": "FAILED"}

    def status_answer(request_ids: list[str], **arguments: Any) -> list[Any]:
        return [SimpleNamespace(status=statuses[i]) for i in request_ids if i in statuses]

    now = time.time()

    def launch_payload(request_id: str, name: str, at: float, body: str | None = None) -> Any:
        text = json.dumps({"task": f"name: {name}\nrun: true\n", "name": name}) if body is None else body
        return SimpleNamespace(request_id=request_id, name="jobs.launch", created_at=at, request_body=text)

    every_request = [
        launch_payload("old-launch", NAME, now - 86400),  # an older experiment's
        launch_payload("our-launch", NAME, now),
        launch_payload("other-launch", NAME + ".2", now),  # the second attempt's name
        launch_payload("garbled-launch", NAME, now, body="{not json"),
        SimpleNamespace(request_id="status-1", name="status", created_at=now, request_body="{}"),
    ]

    def get_answer(request_id: str) -> Any:
        if request_id == "refused-request":
            raise ValueError("No cloud is enabled.\nRun: sky check")
        return results.get(request_id)

    fake_sky = SimpleNamespace(
        exceptions=sky.exceptions,
        get=_Call(sky.get, get_answer),
        api_status=_Call(
            sky.api_status,
            lambda request_ids=None, **_: (
                every_request
                if request_ids is None
                else [SimpleNamespace(status=statuses[i]) for i in request_ids if i in statuses]
            ),
        ),
        jobs=SimpleNamespace(
            launch=_Call(sky.jobs.launch, lambda **_: "launch-request"),
            queue_v2=_Call(sky.jobs.queue_v2, queue_answer),
            cancel=_Call(sky.jobs.cancel, lambda **_: "cancel-request"),
            tail_logs=_Call(sky.jobs.tail_logs, logs_answer),
        ),
    )
    client = sky_client(fake_sky)  # type: ignore[arg-type]

    task = sky.Task(NAME, run="true")
    assert client.launch(task, NAME) == "launch-request"
    assert fake_sky.jobs.launch.calls == [{"task": task, "name": NAME}]
    assert client.launch_outcome("launch-request") == LaunchOutcome(LaunchState.SUCCEEDED, job_id=4)
    assert client.launch_outcome("pending-request") == LaunchOutcome(LaunchState.RUNNING)
    assert client.launch_outcome("refused-request") == LaunchOutcome(
        LaunchState.FAILED, error="No cloud is enabled."
    )
    assert client.launch_outcome("forgotten-request") == LaunchOutcome(LaunchState.UNKNOWN)
    assert client.launch_requests(NAME, now - 60) == ["our-launch"]
    assert fake_sky.api_status.calls[-1] == {"all_status": True}
    fields = set(sky.server.requests.payloads.RequestPayload.model_fields)
    assert {"request_id", "name", "created_at", "request_body"} <= fields
    assert "name" in sky.server.requests.payloads.JobsLaunchBody.model_fields
    from sky.server.requests.request_names import RequestName

    assert RequestName.JOBS_LAUNCH.value == LAUNCH_REQUEST

    assert client.queue("demo.") == [record]
    assert [call["refresh"] for call in fake_sky.jobs.queue_v2.calls] == [
        False,
        True,
    ]  # the controller was down
    assert fake_sky.jobs.queue_v2.calls[0] == {
        "refresh": False,
        "skip_finished": False,
        "all_users": False,
        "fields": list(QUEUE_FIELDS),
        "name_match": "demo.",
    }
    client.cancel(NAME, 4)
    client.cancel(NAME)
    assert fake_sky.jobs.cancel.calls == [{"job_ids": [4]}, {"name": NAME}]
    assert client.logs(NAME, 4, tail=50) == "hello\n"
    [logs_call] = fake_sky.jobs.tail_logs.calls
    assert {key: logs_call[key] for key in ("name", "job_id", "follow", "tail")} == {
        "name": None,
        "job_id": 4,
        "follow": False,
        "tail": 50,
    }
    fields = set(sky.schemas.api.responses.ManagedJobRecord.model_fields)
    assert set(QUEUE_FIELDS) <= fields  # every field asked for is one SkyPilot's records have
