"""The SLURM dispatcher against a real single-node SLURM (started by `.ci/start-slurm`).

Every test uses an experiment name of its own, so SLURM's job names (`<experiment>.<run>.<job>`)
count each test's submissions: `squeue --states=all` lists finished jobs for `MinJobAge` (300 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import EVAL, REPO, TRAIN, cli, markers, status_json
from dispatcher_contract import DispatcherContract
from early_stopping_helpers import (
    STEPS,
    check_a_kill_between_the_decision_and_the_cancel,
    check_asha_sweep,
    write_sweep,
)
from faults_helpers import alive
from local_dispatcher_fixtures import wait_for
from sweepwise.core.errors import ConfigError, DispatchError
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.core.protocols import Dispatcher, Reattachable, Waitable
from sweepwise.dispatchers import make_dispatcher
from sweepwise.dispatchers._engine import EngineEnd, Phase
from sweepwise.dispatchers.slurm import SlurmDispatcher, parse_squeue, slurm_state
from sweepwise.runtime.results import read_status

pytestmark = pytest.mark.slow  # real SLURM jobs: in the full suite, not in -m "not slow"

TRAIN_JOB = JobTypes.LAUNCH_TRAINING

# A job that logs its start to $SIDE_LOG (run, job file name, SLURM's job id and restart count),
# then waits for `<run_dir>/go` (at most 300 s) and reports a result.
LOGGED_WAIT = textwrap.dedent(
    """
    import json, os, time
    env = os.environ
    stem = os.path.basename(env["SWEEPWISE_RESULT_FILE"]).rsplit(".result.json", 1)[0]
    with open(env["SIDE_LOG"], "a") as log:
        log.write(" ".join([env["SWEEPWISE_RUN_ID"], stem, env["SLURM_JOB_ID"],
                            env.get("SLURM_RESTART_COUNT", "0")]) + "\\n")
    go = os.path.join(env["SWEEPWISE_RUN_DIR"], "go")
    deadline = time.time() + 300
    while not os.path.exists(go) and time.time() < deadline:
        time.sleep(0.05)
    print("SWEEPWISE_RESULT " + json.dumps({"score": 1.0}))
    """
)


@pytest.fixture
def experiment(slurm: None) -> Iterator[str]:
    """A fresh experiment name; its SLURM jobs still queued or running afterwards are cancelled."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    ids = [job_id for job_id, _ in slurm_jobs(name)]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=60)


@pytest.fixture
def side_log(tmp_path: Path) -> Path:
    return tmp_path / "side.log"


def wait_until_training(side_log: Path) -> None:
    """Wait for the job's own first line: SLURM says RUNNING before the job's code has run."""
    wait_for(lambda: side_log.exists() and side_log.read_text().endswith("\n"), "the job to start training")


@pytest.fixture
def make(slurm: None, tmp_path: Path, experiment: str) -> Iterator[Callable[..., SlurmDispatcher]]:
    """A factory of SLURM dispatchers of the test's experiment, closed afterwards."""
    made: list[SlurmDispatcher] = []

    def factory(**options: Any) -> SlurmDispatcher:
        options.setdefault("poll_interval", 0.5)
        options.setdefault("heartbeat_interval", 0.5)
        dispatcher = SlurmDispatcher(tmp_path / "runs", experiment, **options)
        made.append(dispatcher)
        return dispatcher

    yield factory
    for dispatcher in made:
        dispatcher.close()


def slurm_jobs(experiment: str, states: str = "all") -> list[tuple[str, str]]:
    """(job id, name) of every SLURM job of the experiment SLURM still lists (in `states`)."""
    result = subprocess.run(
        ["squeue", "--noheader", f"--states={states}", "--Format=JobID:|,Name:|"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split("|")[:2] for line in result.stdout.splitlines() if "|" in line]
    return [
        (job_id.strip(), name.strip()) for job_id, name in rows if name.strip().startswith(f"{experiment}.")
    ]


def slurm_state_of(job_id: str) -> str:
    result = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--jobs={job_id}", "--Format=State:|"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip().rstrip("|")


def job(run_id: str, code: str, **fields: Any) -> JobDefinition:
    return JobDefinition(run_id=run_id, cmd=["python", "-c", code], **fields)


def drain(
    dispatcher: SlurmDispatcher, until: Callable[[JobEvent], bool], run_id: str, timeout: float = 120.0
) -> list[JobEvent]:
    """Poll until an event for `run_id` satisfies `until`; return every event seen for it."""
    events: list[JobEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispatcher.wait(0.5)
        events += [event for event in dispatcher.poll() if event.run_id == run_id]
        if any(until(event) for event in events):
            return events
    raise AssertionError(f"no such event for {run_id} in {timeout} s; got {[e.kind for e in events]}")


def ended(event: JobEvent) -> bool:
    return event.kind in (EventKind.FINISHED, EventKind.LOST)


def run_dir(tmp_path: Path, experiment: str, run_id: str) -> Path:
    return tmp_path / "runs" / experiment / run_id


# -- SLURM's word, parsed (no SLURM needed) ---------------------------------------------


@pytest.mark.parametrize(
    ("state", "phase", "end"),
    [
        ("PENDING", Phase.QUEUED, None),
        ("CONFIGURING", Phase.QUEUED, None),
        ("REQUEUED", Phase.QUEUED, None),
        ("SUSPENDED", Phase.QUEUED, None),
        ("RUNNING", Phase.RUNNING, None),
        ("COMPLETING", Phase.RUNNING, None),
        ("COMPLETED", Phase.ENDED, EngineEnd.DONE),
        ("FAILED", Phase.ENDED, EngineEnd.DONE),
        ("CANCELLED", Phase.ENDED, EngineEnd.CANCELLED),
        ("TIMEOUT", Phase.ENDED, EngineEnd.TIMEOUT),
        ("DEADLINE", Phase.ENDED, EngineEnd.TIMEOUT),
        ("PREEMPTED", Phase.ENDED, EngineEnd.LOST),
        ("NODE_FAIL", Phase.ENDED, EngineEnd.LOST),
        ("BOOT_FAIL", Phase.ENDED, EngineEnd.LOST),
        ("OUT_OF_MEMORY", Phase.ENDED, EngineEnd.FAILED),
    ],
)
def test_slurm_states_map_to_the_lifecycle(state: str, phase: Phase, end: EngineEnd | None) -> None:
    word = slurm_state(state, "Reason", 2)
    assert (word.phase, word.end, word.restarts) == (phase, end, 2)
    assert word.detail == f"{state} (Reason)"


def test_squeue_output_is_parsed_by_job_id() -> None:
    text = "12|RUNNING|None|0|\n13|PENDING|BeginTime|1|\n\n14|TIMEOUT|TimeLimit|0|\n"
    states = parse_squeue(text)
    assert set(states) == {"12", "13", "14"}
    assert states["12"].detail == "RUNNING" and states["13"].restarts == 1
    assert states["14"].end is EngineEnd.TIMEOUT and states["14"].detail == "TIMEOUT (TimeLimit)"


def test_resources_map_to_sbatch_lines(tmp_path: Path) -> None:
    dispatcher = SlurmDispatcher(
        tmp_path / "runs",
        "exp",
        partition="gpu",
        account="proj 1",
        mem="16G",
        cpus_per_task=4,
        ntasks_per_node=2,
        gpu_flag="gres",
        gpu_type="a100",
        sbatch_lines=["--qos=high", "#SBATCH --exclusive"],
        setup=["module load cuda", "conda activate x"],
    )
    script = dispatcher.batch_script(job("r1", "pass", gpus=4, nodes=2, timeout=90, overrides={"x": "$(no)"}))
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for line in (
        "#SBATCH --job-name=exp.r1.train",
        "#SBATCH --partition=gpu",
        '#SBATCH --account="proj 1"',
        "#SBATCH --mem=16G",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=2",
        "#SBATCH --gres=gpu:a100:2",
        "#SBATCH --time=2",  # 90 s + the 10 s grace, in minutes rounded up
        "#SBATCH --qos=high",
        "#SBATCH --exclusive",
    ):
        assert line in lines
    assert lines.index("module load cuda") < lines.index("conda activate x") < len(lines) - 1
    assert lines[-1].startswith("exec ") and lines[-1].endswith("train.launch.json")
    assert "$(no)" not in script  # parameter values stay in the launch file
    other = SlurmDispatcher(tmp_path / "runs", "exp", time_limit="1-00:00:00")
    script = other.batch_script(job("r2", "pass", gpus=2, timeout=5))
    assert "#SBATCH --gpus=2" in script and "#SBATCH --time=1-00:00:00" in script
    assert "--time" not in SlurmDispatcher(tmp_path / "runs", "exp").batch_script(job("r3", "pass"))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"gpu_flag": "cuda"}, "dispatcher.gpu_flag"),
        ({"cpus_per_task": 0}, "dispatcher.cpus_per_task"),
        ({"time_limit": "soon"}, "dispatcher.time_limit"),
        ({"partition": "a\nb"}, "dispatcher.partition"),
        ({"sbatch_lines": ["--a\n--b"]}, "dispatcher.sbatch_lines"),
        ({"poll_interval": 0}, "dispatcher"),
    ],
)
def test_bad_options_name_their_field(tmp_path: Path, options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SlurmDispatcher(tmp_path / "runs", "exp", **options)
    assert caught.value.field == field


# -- against SLURM -----------------------------------------------------------------------


def test_dispatch_runs_the_job_and_reports_its_result(
    make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str
) -> None:
    dispatcher = make()
    assert isinstance(dispatcher, Dispatcher | Reattachable | Waitable)
    code = (
        "import json, os, sys\n"
        "print('SWEEPWISE_RESULT ' + json.dumps({'argv': sys.argv[1:], 'env': os.environ['EXTRA']}))\n"
    )
    value = "a; rm -rf / $(x) `y` 'z\""
    spec = job("r1", code, overrides={"x": value}, env={"EXTRA": "secret value"})
    dispatch_id = dispatcher.dispatch(spec)
    assert dispatcher.dispatch(spec) == dispatch_id  # idempotent
    events = drain(dispatcher, ended, "r1")
    kinds = [event.kind for event in events]
    assert kinds.index(EventKind.STARTED) < kinds.index(EventKind.FINISHED)
    finished = events[-1]
    assert finished.exit_code == 0 and finished.error is None
    assert finished.result == {"argv": [f"x={value}"], "env": "secret value"}
    assert finished.dispatch_id == dispatch_id
    directory = run_dir(tmp_path, experiment, "r1")
    assert value not in (directory / "train.sbatch").read_text()
    written = ("train.sbatch", "train.launch.json", "train.dispatch.json", "train.status.json")
    assert "secret value" not in "".join((directory / name).read_text() for name in written)
    assert len(slurm_jobs(experiment)) == 1
    assert make().dispatch(spec) == dispatch_id  # a new dispatcher: still nothing submitted again
    assert len(slurm_jobs(experiment)) == 1
    assert (
        make_dispatcher("slurm", runs_root=tmp_path / "runs", experiment=experiment).find("r1", TRAIN_JOB)
        == dispatch_id
    )


def test_a_job_sbatch_refuses_leaves_no_claim_and_can_be_dispatched_again(
    make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str
) -> None:
    spec = job("r1", "print('SWEEPWISE_RESULT {}')")
    with pytest.raises(DispatchError, match="sbatch refused the train job of run r1"):
        make(partition="no-such-partition").dispatch(spec)
    directory = run_dir(tmp_path, experiment, "r1")
    assert not (directory / "train.dispatch.json").exists() and not list(directory.glob("*.token"))
    dispatcher = make()
    assert dispatcher.find("r1", TRAIN_JOB) is None
    dispatcher.dispatch(spec)
    assert drain(dispatcher, ended, "r1")[-1].exit_code == 0


def test_a_batch_job_whose_supervisor_cannot_start_fails_naming_its_log(
    make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str
) -> None:
    dispatcher = make(python=str(tmp_path / "no-such-python"))
    dispatcher.dispatch(job("p1", "pass"))
    finished = drain(dispatcher, ended, "p1")[-1]
    assert finished.kind is EventKind.FINISHED and finished.error is not None
    assert finished.error.startswith("the SLURM job ended before its supervisor started (SLURM says FAILED")
    assert "no-such-python" in (run_dir(tmp_path, experiment, "p1") / "train.log").read_text()


def test_entrypoint_jobs_run_through_slurm_unchanged(
    make: Callable[..., SlurmDispatcher], tmp_path: Path
) -> None:
    package = tmp_path / "code"
    package.mkdir()
    (package / "slurm_recipe.py").write_text(
        "def train(lr: float, steps: int) -> dict:\n    return {'score': lr * steps}\n"
    )
    dispatcher = make()
    spec = JobDefinition(
        run_id="e1", cmd="slurm_recipe.train", cwd=str(package), overrides={"lr": 0.5, "steps": 4}
    )
    dispatcher.dispatch(spec)
    finished = drain(dispatcher, ended, "e1")[-1]
    assert finished.kind is EventKind.FINISHED and finished.exit_code == 0, finished.error
    assert finished.result == {"score": 2.0}


def test_a_restarted_dispatcher_reattaches_to_a_running_job(
    make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str, side_log: Path
) -> None:
    first = make()
    spec = job("r1", LOGGED_WAIT, env={"SIDE_LOG": str(side_log)})
    dispatch_id = first.dispatch(spec)
    drain(first, lambda event: event.kind is EventKind.STARTED, "r1")
    first.close()

    second = make()
    assert second.find("r1", TRAIN_JOB) == dispatch_id
    second.reattach(dispatch_id, "r1", TRAIN_JOB)
    assert second.dispatch(spec) == dispatch_id
    (run_dir(tmp_path, experiment, "r1") / "go").touch()
    finished = drain(second, ended, "r1")[-1]
    assert finished.kind is EventKind.FINISHED and finished.result == {"score": 1.0}
    assert len(side_log.read_text().splitlines()) == 1
    assert len(slurm_jobs(experiment)) == 1


def test_a_claim_written_before_sbatch_answered_is_found_by_job_name(
    make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str
) -> None:
    first = make(sbatch_lines=["--hold"])  # queued: no status names the SLURM job yet
    dispatch_id = first.dispatch(job("r1", "pass"))
    first.close()
    # The controller died after sbatch, before it wrote SLURM's job id into the claim.
    claim = run_dir(tmp_path, experiment, "r1") / "train.dispatch.json"
    record = json.loads(claim.read_text())
    del record["engine_id"]
    claim.write_text(json.dumps(record))

    second = make()
    assert second.find("r1", TRAIN_JOB) == dispatch_id
    assert json.loads(claim.read_text())["engine_id"] == dispatch_id.rsplit(":", 1)[1]
    assert len(slurm_jobs(experiment)) == 1


def test_cancel_a_queued_job(make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str) -> None:
    dispatcher = make(sbatch_lines=["--hold"])
    marker = tmp_path / "ran"
    dispatch_id = dispatcher.dispatch(job("q1", f"open({str(marker)!r}, 'w').close()"))
    events = drain(dispatcher, lambda event: event.kind is EventKind.HEARTBEAT, "q1")  # SLURM: queued
    assert EventKind.STARTED not in [event.kind for event in events]
    dispatcher.cancel(dispatch_id)
    finished = drain(dispatcher, ended, "q1")[-1]
    assert finished.kind is EventKind.FINISHED and finished.error is not None
    assert finished.error.startswith("cancelled")
    status = read_status(run_dir(tmp_path, experiment, "q1") / "train.status.json")
    assert status is not None and status["cancelled"] is True
    job_id = dispatch_id.rsplit(":", 1)[1]
    wait_for(lambda: slurm_state_of(job_id) == "CANCELLED", "SLURM to cancel the job")
    assert not marker.exists()
    dispatcher.cancel(dispatch_id)  # ended: no error


def test_cancel_a_running_job(
    make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str, side_log: Path
) -> None:
    dispatcher = make()
    dispatch_id = dispatcher.dispatch(job("c1", LOGGED_WAIT, env={"SIDE_LOG": str(side_log)}))
    drain(dispatcher, lambda event: event.kind is EventKind.STARTED, "c1")
    dispatcher.cancel(dispatch_id)
    finished = drain(dispatcher, ended, "c1")[-1]
    assert finished.kind is EventKind.FINISHED and finished.error is not None
    assert finished.error.startswith("cancelled")
    job_id = dispatch_id.rsplit(":", 1)[1]
    wait_for(lambda: slurm_state_of(job_id) == "CANCELLED", "SLURM to cancel the job")
    status = read_status(run_dir(tmp_path, experiment, "c1") / "train.status.json")
    assert status is not None and status["cancelled"] is True and status["state"] == "exited"


# A job that writes its pid, then works until `<run_dir>/go` exists and writes "done" to $SIDE_LOG.
GUARDED = textwrap.dedent(
    """
    import os, time
    env = os.environ
    with open(os.path.join(env["SWEEPWISE_RUN_DIR"], "job.pid"), "w") as f:
        f.write(str(os.getpid()))
    go = os.path.join(env["SWEEPWISE_RUN_DIR"], "go")
    while not os.path.exists(go):
        time.sleep(0.05)
    with open(env["SIDE_LOG"], "a") as log:
        log.write("done\\n")
    """
)


def _batch_supervisors(launch_file: Path) -> list[int]:
    """Pids of the `sweepwise.runtime.batch` processes supervising `launch_file`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                words = (entry / "cmdline").read_bytes().split(b"\0")
                if b"sweepwise.runtime.batch" in words and os.fsencode(launch_file) in words:
                    found.append(int(entry.name))
    return found


def test_a_job_whose_supervisor_is_killed_outright_stops_with_it(
    make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str, side_log: Path
) -> None:
    """The kernel's OOM killer picks the supervisor: the job must not run on unseen beside a retry."""
    dispatcher = make()
    dispatcher.dispatch(job("k1", GUARDED, env={"SIDE_LOG": str(side_log)}))
    directory = run_dir(tmp_path, experiment, "k1")
    pid_file = directory / "job.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the job to start")
    job_pid = int(pid_file.read_text())
    (supervisor,) = wait_for(lambda: _batch_supervisors(directory / "train.launch.json"), "its supervisor")
    os.kill(supervisor, signal.SIGKILL)
    try:
        wait_for(lambda: not alive(job_pid), "the job to stop with its supervisor", timeout=60)
    finally:
        (directory / "go").touch()  # a job still running would now finish its work, and end
    drain(dispatcher, ended, "k1")
    assert not side_log.exists() or "done" not in side_log.read_text()
    assert "the job's supervisor died: stopping the job" in (directory / "train.log").read_text()


def test_a_job_over_its_timeout_fails_with_reason_timeout(
    make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str
) -> None:
    dispatcher = make(grace_period=1.0)
    dispatcher.dispatch(job("t1", "import time; time.sleep(300)", timeout=1.5))
    finished = drain(dispatcher, ended, "t1")[-1]
    assert finished.kind is EventKind.FINISHED and finished.timed_out
    assert finished.error is not None and finished.error.startswith("timeout")
    script = (run_dir(tmp_path, experiment, "t1") / "train.sbatch").read_text()
    assert "#SBATCH --time=1\n" in script  # SLURM enforces it too, rounded up to minutes


@pytest.mark.slow
def test_slurms_own_time_limit_is_a_timeout(make: Callable[..., SlurmDispatcher]) -> None:
    dispatcher = make(time_limit=1)  # one minute; the job has no timeout of its own
    dispatcher.dispatch(job("t2", "import time; time.sleep(600)"))
    finished = drain(dispatcher, ended, "t2", timeout=240)[-1]
    assert finished.kind is EventKind.FINISHED and finished.timed_out
    assert finished.error is not None and finished.error.startswith("timeout: SLURM stopped it")


@pytest.mark.slow
def test_a_requeued_job_is_followed_not_duplicated(
    make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str, side_log: Path
) -> None:
    dispatcher = make()
    spec = job("r1", LOGGED_WAIT, env={"SIDE_LOG": str(side_log)})
    dispatch_id = dispatcher.dispatch(spec)
    drain(dispatcher, lambda event: event.kind is EventKind.STARTED, "r1")
    wait_until_training(side_log)
    job_id = dispatch_id.rsplit(":", 1)[1]
    subprocess.run(["scontrol", "requeue", job_id], check=True, capture_output=True, timeout=60)
    lost = drain(dispatcher, ended, "r1")[-1]
    assert lost.kind is EventKind.LOST and lost.error is not None
    assert lost.error.startswith("job lost: requeued by SLURM (restart 1)")
    wait_for(lambda: slurm_state_of(job_id) == "CANCELLED", "the requeued job to be cancelled")
    # The lifecycle retries a lost job as its next attempt, with files of its own.
    retry = spec.model_copy(update={"attempt": 2})
    dispatcher.dispatch(retry)
    (run_dir(tmp_path, experiment, "r1") / "go").touch()
    finished = drain(dispatcher, ended, "r1")[-1]
    assert finished.kind is EventKind.FINISHED and finished.attempt == 2 and finished.result == {"score": 1.0}
    starts = [line.split()[:2] for line in side_log.read_text().splitlines()]
    assert starts == [["r1", "train"], ["r1", "train.2"]]


@pytest.mark.slow
def test_a_requeued_batch_script_starts_nothing_while_the_controller_is_away(
    make: Callable[..., SlurmDispatcher], tmp_path: Path, experiment: str, side_log: Path
) -> None:
    first = make()
    dispatch_id = first.dispatch(job("r1", LOGGED_WAIT, env={"SIDE_LOG": str(side_log)}))
    drain(first, lambda event: event.kind is EventKind.STARTED, "r1")
    wait_until_training(side_log)
    first.close()  # nobody watches from here
    job_id = dispatch_id.rsplit(":", 1)[1]
    subprocess.run(["scontrol", "requeue", job_id], check=True, capture_output=True, timeout=60)
    log = run_dir(tmp_path, experiment, "r1") / "train.log"
    # SLURM runs the batch script again (after the credential lifetime, 15 s here): it starts nothing.
    wait_for(lambda: "taken by an earlier run" in log.read_text(), "the requeued run", timeout=180)
    assert len(side_log.read_text().splitlines()) == 1

    second = make()
    assert second.find("r1", TRAIN_JOB) == dispatch_id
    second.reattach(dispatch_id, "r1", TRAIN_JOB)
    lost = drain(second, ended, "r1")[-1]
    assert lost.kind is EventKind.LOST and lost.error is not None and "requeued by SLURM" in lost.error
    # The verdict is written down: a third dispatcher, with SLURM silent, sees the same.
    third = make()
    third.reattach(dispatch_id, "r1", TRAIN_JOB)
    again = drain(third, ended, "r1")[-1]
    assert (again.kind, again.error) == (lost.kind, lost.error)
    assert len(side_log.read_text().splitlines()) == 1
    assert len(slurm_jobs(experiment)) == 1


# -- sweeps through the CLI ----------------------------------------------------------------


@pytest.mark.slow
def test_the_quickstart_sweep_runs_on_slurm(slurm: None, tmp_path: Path, experiment: str) -> None:
    for name in ("train.py", "eval.py", "data.py"):
        shutil.copy(REPO / "examples" / "quickstart" / name, tmp_path / name)
    spec = yaml.safe_load((REPO / "examples" / "quickstart" / "sweep.yaml").read_text())
    spec.update(name=experiment, dispatcher={"type": "slurm", "poll_interval": 1})
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    result = cli("run", "sweep.yaml", "--quiet", cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr
    status = status_json(tmp_path, experiment)
    assert status["status"] == "complete"
    assert [row["status"] for row in status["runs"]] == ["completed"] * 8
    assert all(0.0 <= row["score"] <= 1.0 for row in status["runs"])
    names = sorted(name for _, name in slurm_jobs(experiment))
    runs = sorted(row["run_id"] for row in status["runs"])
    assert names == sorted(f"{experiment}.{run}.{stem}" for run in runs for stem in ("train", "eval"))


@pytest.mark.slow
def test_a_hung_job_fails_its_run_with_reason_timeout(slurm: None, tmp_path: Path, experiment: str) -> None:
    spec = {
        "name": experiment,
        "max_parallel": 1,
        "monitoring_interval": 1,
        "dispatcher": {"type": "slurm", "poll_interval": 1, "grace_period": 1},
        "scheduler": {"type": "batched_synced", "max_trials": 1, "batch_size": 1},
        "optimizer": {"type": "random", "seed": 1},
        "train": {"cmd": ["python", "-c", "import time; time.sleep(300)"], "timeout": 2},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    result = cli("run", "sweep.yaml", "--quiet", cwd=tmp_path, timeout=600)
    assert result.returncode == 1 and "ended with no completed trial" in result.stderr, result.stderr
    [row] = status_json(tmp_path, experiment)["runs"]
    assert row["status"] == "failed" and row["error"].startswith("timeout: ran longer than its 2 s limit")


@pytest.mark.slow
def test_sweepwise_cancel_stops_the_slurm_jobs(slurm: None, tmp_path: Path, experiment: str) -> None:
    spec = {
        "name": experiment,
        "max_parallel": 2,
        "monitoring_interval": 1,
        "dispatcher": {"type": "slurm", "poll_interval": 1, "sbatch_lines": ["--hold"]},
        "scheduler": {"type": "batched_synced", "max_trials": 2, "batch_size": 2},
        "optimizer": {"type": "random", "seed": 1},
        "train": {"cmd": ["python", "-c", "pass"]},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    run_env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    controller = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", "sweep.yaml", "--quiet"],
        cwd=tmp_path,
        env=run_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def dispatched() -> bool:  # both held in SLURM's queue, their ids in the store
            if not (tmp_path / "sweepwise.db").exists():
                return False
            url = f"file:{tmp_path / 'sweepwise.db'}?mode=ro"
            with contextlib.closing(sqlite3.connect(url, uri=True)) as db:
                try:
                    query = "select count(*) from runs where experiment = ? and train_dispatch_id is not null"
                    return bool(db.execute(query, (experiment,)).fetchone()[0] == 2)
                except sqlite3.OperationalError:  # not created yet
                    return False

        wait_for(dispatched, "both jobs to be submitted (and held)", timeout=120)
        result = cli("cancel", experiment, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert controller.wait(timeout=120) is not None
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(timeout=60)
    ids = [job_id for job_id, _ in slurm_jobs(experiment)]
    assert len(ids) == 2
    for job_id in ids:
        wait_for(lambda job_id=job_id: slurm_state_of(job_id) == "CANCELLED", f"SLURM job {job_id} cancelled")
    assert [row["status"] for row in status_json(tmp_path, experiment)["runs"]] == ["cancelled"] * 2


@pytest.mark.slow
def test_sigkill_of_the_controller_mid_sweep_then_rerun_submits_nothing_twice(
    slurm: None, tmp_path: Path, experiment: str
) -> None:
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "eval.py").write_text(EVAL)
    (tmp_path / "markers").mkdir()
    env = {"MARKERS": str(tmp_path / "markers")}
    spec = {
        "name": experiment,
        "max_parallel": 3,
        "monitoring_interval": 1,
        "dispatcher": {"type": "slurm", "poll_interval": 1},
        "scheduler": {"type": "batched_synced", "max_trials": 6, "batch_size": 3},
        "optimizer": {"type": "random", "seed": 1},
        "train": {"cmd": ["python", "train.py"], "env": env},
        "eval": {"cmd": ["python", "eval.py"], "env": env},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    run_env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    run_env["TRAIN_SLEEP"] = "4"
    controller = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", "sweep.yaml", "--quiet"],
        cwd=tmp_path,
        env=run_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(markers(tmp_path, "train")) >= 2, "two training jobs to start", timeout=180)
    finally:
        controller.send_signal(signal.SIGKILL)
        controller.wait(timeout=60)
    statuses = [read_status(path) or {} for path in (tmp_path / "runs").rglob("train.status.json")]
    assert any(status.get("state") != "exited" for status in statuses)  # jobs ran on without it
    result = cli("run", "sweep.yaml", "--quiet", cwd=tmp_path, env={"TRAIN_SLEEP": "4"}, timeout=900)
    assert result.returncode == 0, result.stderr
    status = status_json(tmp_path, experiment)
    runs = sorted(row["run_id"] for row in status["runs"])
    assert [row["status"] for row in status["runs"]] == ["completed"] * 6
    # The jobs' own side-effect logs: each run trained once and evaluated once.
    assert sorted(markers(tmp_path, "train")) == runs
    assert sorted(markers(tmp_path, "eval")) == runs
    # And SLURM's list: one submission per (run, job).
    names = sorted(name for _, name in slurm_jobs(experiment))
    assert names == sorted(f"{experiment}.{run}.{stem}" for run in runs for stem in ("train", "eval"))


@pytest.mark.slow  # a real SLURM job per check: the full suite runs it
class TestSlurmContract(DispatcherContract):
    """The dispatcher contract (tests/dispatcher_contract.py) against the real SLURM."""

    @pytest.fixture
    def experiment(self, slurm: None) -> Iterator[str]:
        name = f"c{uuid.uuid4().hex[:10]}"
        yield name
        ids = [job_id for job_id, _ in slurm_jobs(name)]
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True, timeout=60)

    @pytest.fixture
    def make_dispatcher(self, runs_root: Path, experiment: str) -> Iterator[Callable[[], Dispatcher]]:
        made: list[SlurmDispatcher] = []

        def make() -> Dispatcher:
            dispatcher = SlurmDispatcher(
                runs_root, experiment, poll_interval=0.5, heartbeat_interval=0.5, grace_period=2.0
            )
            made.append(dispatcher)
            return dispatcher

        yield make
        for dispatcher in made:
            dispatcher.close()


@pytest.mark.slow
def test_asha_stops_slurm_jobs_through_scancel_and_each_runs_once(
    slurm: None, tmp_path: Path, experiment: str
) -> None:
    # The stopper decides from what the jobs report; the stop is a `cancel`, here an scancel.
    stopper = {"type": "asha", "grace_period": 5, "reduction_factor": 3, "max_t": STEPS}
    spec = write_sweep(
        tmp_path,
        stopper,
        name=experiment,
        dispatcher={"type": "slurm", "poll_interval": 1},
        step_sleep=0.3,
    )
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=900)
    check_asha_sweep(tmp_path, experiment, result)
    assert slurm_jobs(experiment, states="PENDING,RUNNING,COMPLETING") == []  # none left running


@pytest.mark.slow
def test_a_controller_killed_between_a_stop_and_its_scancel_stops_the_job_once(
    slurm: None, tmp_path: Path, experiment: str
) -> None:
    # SLURM keeps the job running while the controller is dead; the restarted one scancels it.
    dispatcher = {"type": "slurm", "poll_interval": 1}
    check_a_kill_between_the_decision_and_the_cancel(tmp_path, name=experiment, dispatcher=dispatcher)
