"""Job timeouts (issue 14, case 10): a hung job is stopped by its supervisor and fails its run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import cli, status_json
from local_dispatcher_fixtures import kill_leftovers, wait_for
from sweepwise.core.clock import VirtualClock
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobStatus, JobTypes
from sweepwise.dispatchers.local import LocalDispatcher
from sweepwise.dispatchers.simulated import SimOutcome, SimulatedDispatcher
from sweepwise.engine.controller import AdaptiveController, ControllerSettings
from sweepwise.runtime.exec import main as exec_main
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import process_alive
from sweepwise.schedulers.base import JobSpec
from sweepwise.schedulers.batched_synced import BatchedSyncedOptimizingScheduler, BatchedSyncedSchedulerConfig
from sweepwise.stores.sql import SQLStore

# A job that says it started, then hangs.
HANG = "import time\nprint('hanging now', flush=True)\ntime.sleep(600)\n"
# The same, deaf to SIGTERM.
DEAF = (
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ignoring SIGTERM', flush=True)\ntime.sleep(600)\n"
)
# A job that notes each SIGTERM in `<run_dir>/term` and goes on.
NOTE_TERM = (
    "import os, signal, time\n"
    "term = os.path.join(os.environ['SWEEPWISE_RUN_DIR'], 'term')\n"
    "signal.signal(signal.SIGTERM, lambda *_: open(term, 'w').close())\n"
    "while True:\n    time.sleep(1)\n"
)


@pytest.fixture(
    params=[
        "host",
        pytest.param("fork", marks=pytest.mark.slow),
        pytest.param("spawn", marks=pytest.mark.slow),
    ]
)
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _finished(dispatcher: LocalDispatcher, run_id: str) -> JobEvent:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dispatcher.wait(0.2)
        for event in dispatcher.poll():
            if event.run_id == run_id and event.kind is EventKind.FINISHED:
                return event
    raise AssertionError(f"no FINISHED event for {run_id}")


def _status(runs_root: Path, run_id: str, job: str = "train") -> dict[str, Any]:
    status = read_status(runs_root / "exp" / run_id / f"{job}.status.json")
    assert status is not None
    return status


# -- the local dispatcher, every start method --------------------------------------------


def test_a_job_past_its_timeout_is_stopped_and_fails(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    dispatcher = make(grace_period=5)
    dispatcher.dispatch(JobDefinition(run_id="hung", cmd=["python", "-c", HANG], timeout=1))
    finished = _finished(dispatcher, "hung")
    assert finished.timed_out and not finished.succeeded
    assert finished.exit_code == -signal.SIGTERM
    assert finished.error is not None
    assert finished.error.startswith("timeout: ran longer than its 1 s limit; exit code -15")
    assert finished.error.endswith("last output: hanging now")
    status = _status(runs_root, "hung")
    assert status["state"] == "exited" and status["timed_out"] is True and status["timeout"] == 1
    assert status["cancelled"] is False
    assert not process_alive(status["pid"])


@pytest.mark.slow  # SIGKILL after the grace period: test_exec_timeout, in the fast subset
def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_period(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    dispatcher = make(grace_period=0.5)
    dispatcher.dispatch(JobDefinition(run_id="deaf", cmd=["python", "-c", DEAF], timeout=1))
    finished = _finished(dispatcher, "deaf")
    assert finished.timed_out and finished.exit_code == -signal.SIGKILL
    assert finished.error is not None and finished.error.startswith("timeout: ran longer than its 1 s limit")
    status = _status(runs_root, "deaf")
    assert status["timed_out"] is True and not process_alive(status["pid"])


def test_a_job_under_its_timeout_is_unaffected(make: Callable[..., LocalDispatcher], runs_root: Path) -> None:
    dispatcher = make()
    code = "print('SWEEPWISE_RESULT {\"score\": 1}')"
    dispatcher.dispatch(JobDefinition(run_id="quick", cmd=["python", "-c", code], timeout=60))
    finished = _finished(dispatcher, "quick")
    assert finished.succeeded and not finished.timed_out and finished.result == {"score": 1}
    assert _status(runs_root, "quick")["timed_out"] is False


@pytest.mark.slow  # cancel and timeout each have a test in the fast subset
def test_cancel_and_timeout_at_once_say_cancelled_and_keep_both_flags(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    dispatcher = make(grace_period=1)
    dispatch_id = dispatcher.dispatch(
        JobDefinition(run_id="both", cmd=["python", "-c", NOTE_TERM], timeout=0.5)
    )
    wait_for((runs_root / "exp" / "both" / "term").exists, "the timeout's SIGTERM")
    dispatcher.cancel(dispatch_id)
    finished = _finished(dispatcher, "both")
    assert finished.timed_out and finished.error is not None and finished.error.startswith("cancelled; ")
    status = _status(runs_root, "both")
    assert status["cancelled"] is True and status["timed_out"] is True


# -- the exec wrapper ------------------------------------------------------------------------


def test_exec_timeout(tmp_path: Path) -> None:
    assert exec_main(["--run-dir", str(tmp_path), "--timeout", "0", "--", sys.executable]) == 2
    code = exec_main(
        [
            "--run-dir",
            str(tmp_path),
            "--timeout",
            "0.5",
            "--kill-grace",
            "0.2",
            "--",
            sys.executable,
            "-c",
            DEAF,
        ]
    )
    assert code == 128 + signal.SIGKILL
    status = read_status(tmp_path / "train.status.json")
    assert status is not None and status["timed_out"] is True and status["timeout"] == 0.5


# -- the simulated dispatcher -----------------------------------------------------------------


def test_simulated_jobs_time_out_in_virtual_time() -> None:
    clock = VirtualClock()
    dispatcher = SimulatedDispatcher(clock, lambda job: SimOutcome(duration=10.0, result={"score": 1}))
    start = clock.now()
    dispatcher.dispatch(JobDefinition(run_id="slow", cmd="train", timeout=3))
    dispatcher.dispatch(JobDefinition(run_id="fits", cmd="train", timeout=10))
    events: list[JobEvent] = []
    while len([e for e in events if e.kind is EventKind.FINISHED]) < 2:
        dispatcher.wait(100)
        events += dispatcher.poll()
    slow, fits = (
        next(e for e in events if e.kind is EventKind.FINISHED and e.run_id == r) for r in ("slow", "fits")
    )
    assert slow.timed_out and slow.at == start + 3 and slow.exit_code == -15 and slow.result is None
    assert slow.error == "timeout: ran longer than its 3 s limit"
    assert fits.succeeded and not fits.timed_out and fits.at == start + 10

    dispatch_id = dispatcher.dispatch(JobDefinition(run_id="cut", cmd="train", timeout=3))
    dispatcher.cancel(dispatch_id)
    cut = next(e for e in dispatcher.poll() if e.kind is EventKind.FINISHED)
    assert cut.error == "cancelled" and not cut.timed_out


def test_a_simulated_sweep_fails_its_timed_out_runs(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    store.ensure_experiment("exp", {})
    config = BatchedSyncedSchedulerConfig(
        experiment_id="exp",
        max_trials=4,
        batch_size=2,
        train=JobSpec(cmd=["train"], timeout=50),
        eval=JobSpec(cmd=["eval"]),
        parameters={"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
        optimizer={"type": "random", "seed": 3},
    )

    def behaviour(job: JobDefinition) -> SimOutcome:
        if job.type is JobTypes.LAUNCH_TRAINING:
            return SimOutcome(duration=100.0 * float(job.overrides["x"]))
        return SimOutcome(duration=1.0, result={"score": 1.0})

    clock = VirtualClock()
    runs = AdaptiveController(
        "exp",
        BatchedSyncedOptimizingScheduler(config),
        SimulatedDispatcher(clock, behaviour),
        store,
        settings=ControllerSettings(max_parallel=2, monitoring_interval=30.0),
        clock=clock,
    ).run()
    for run in runs:
        if run.suggestion["x"] > 0.5:
            assert run.status is JobStatus.FAILED
            assert run.error == "timeout: ran longer than its 50 s limit"
        else:
            assert run.status is JobStatus.COMPLETED
    assert {run.status for run in runs} == {JobStatus.FAILED, JobStatus.COMPLETED}
    store.close()


# -- end to end: `sweepwise run` ---------------------------------------------------------------


@pytest.fixture
def sweep(tmp_path: Path, make_sweep: Callable[..., Path]) -> Iterator[Callable[..., Path]]:
    """A one-trial sweep whose jobs may hang (`hang.py`), with a one-second grace period."""
    (tmp_path / "hang.py").write_text(HANG)

    def write(**overrides: Any) -> Path:
        overrides.setdefault("dispatcher", {"type": "local", "grace_period": 1})
        overrides.setdefault("scheduler", {"type": "batched_synced", "max_trials": 1, "batch_size": 1})
        return make_sweep(**overrides)

    yield write
    kill_leftovers(tmp_path / "runs")


def _only_run(tmp_path: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = status_json(tmp_path, "exp")["runs"]
    assert len(rows) == 1
    return rows[0]


def _job_status(tmp_path: Path, run_id: str, job: str) -> dict[str, Any]:
    status = read_status(tmp_path / "runs" / "exp" / run_id / f"{job}.status.json")
    assert status is not None
    return status


def test_a_hung_train_job_fails_its_run_and_the_sweep_ends(
    tmp_path: Path, sweep: Callable[..., Path]
) -> None:
    spec = sweep(train={"cmd": ["python", "hang.py"], "timeout": 1})
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stderr  # no trial completed
    row = _only_run(tmp_path)
    assert row["status"] == "failed"
    assert row["error"].startswith("timeout: ran longer than its 1 s limit")
    status = _job_status(tmp_path, row["run_id"], "train")
    assert status["timed_out"] is True and not process_alive(status["pid"])


@pytest.mark.slow
def test_a_hung_eval_job_fails_its_run(tmp_path: Path, sweep: Callable[..., Path]) -> None:
    spec = sweep(eval={"cmd": ["python", "hang.py"], "timeout": 2})
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stderr  # no trial completed
    row = _only_run(tmp_path)
    assert row["status"] == "failed" and "timeout" in row["error"]
    assert _job_status(tmp_path, row["run_id"], "train")["timed_out"] is False
    status = _job_status(tmp_path, row["run_id"], "eval")
    assert status["timed_out"] is True and not process_alive(status["pid"])


@pytest.mark.slow
def test_the_timeout_holds_while_the_controller_is_down(tmp_path: Path, sweep: Callable[..., Path]) -> None:
    spec = sweep(train={"cmd": ["python", "hang.py"], "timeout": 2})
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    controller = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        path = wait_for(
            lambda: next(
                (
                    p
                    for p in (tmp_path / "runs" / "exp").glob("*/train.status.json")
                    if (read_status(p) or {}).get("state") == "running"
                ),
                None,
            ),
            "the train job to start",
        )
    finally:
        controller.kill()  # SIGKILL, right after the job started
        controller.wait()
    status = wait_for(
        lambda: (s := read_status(path)) is not None and s.get("state") == "exited" and s, "the final status"
    )
    assert status["timed_out"] is True and status["exit_code"] == -signal.SIGTERM
    assert not process_alive(status["pid"])

    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=120)  # the next controller reads it
    assert result.returncode == 1, result.stderr  # its only trial timed out: no completed trial
    assert "no completed trial" in result.stderr
    row = _only_run(tmp_path)
    assert row["status"] == "failed" and row["error"].startswith("timeout: ran longer than its 2 s limit")


@pytest.mark.slow  # the local dispatcher's test_a_job_under_its_timeout_is_unaffected runs in the fast subset
def test_jobs_under_their_timeout_complete(tmp_path: Path, sweep: Callable[..., Path]) -> None:
    markers = str(tmp_path / "markers")
    spec = sweep(
        train={"cmd": ["python", "train.py"], "env": {"MARKERS": markers}, "timeout": 60},
        eval={"cmd": ["python", "eval.py"], "env": {"MARKERS": markers}, "timeout": 60},
    )
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert _only_run(tmp_path)["status"] == "completed"


@pytest.mark.parametrize(
    ("spec_value", "words"),
    [
        (0, []),
        pytest.param(-1, [], marks=pytest.mark.slow),
        pytest.param("abc", [], marks=pytest.mark.slow),
        (None, ["train.timeout=0"]),
    ],
    ids=["zero", "negative", "not-a-number", "word"],
)
def test_a_bad_timeout_is_one_line_naming_the_field(
    tmp_path: Path, make_sweep: Callable[..., Path], spec_value: Any, words: list[str]
) -> None:
    train: dict[str, Any] = {"cmd": ["python", "train.py"]}
    if spec_value is not None:
        train["timeout"] = spec_value
    result = cli("run", str(make_sweep(train=train)), *words, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: train.timeout: "), result.stderr
    assert not (tmp_path / "runs").exists()
