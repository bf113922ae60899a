"""The local dispatcher against real processes, with both start methods."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_dispatcher_fixtures import wait_for
from sweepwise.core.errors import ConfigError, DispatchError
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.core.protocols import Dispatcher, Reattachable, Waitable
from sweepwise.dispatchers import make_dispatcher
from sweepwise.dispatchers.local import LocalDispatcher, parse_dispatch_id
from sweepwise.runtime.results import read_status
from sweepwise.runtime.slices import (
    SLICE_NS,
    current_slice_ns,
    request_short_slices,
    restore_slices,
    short_slices,
)
from sweepwise.runtime.supervise import proc_start_time, process_alive

TRAIN = JobTypes.LAUNCH_TRAINING

# A job that waits for `<run_dir>/go` (at most 120 s) before finishing.
WAIT_FOR_GO = (
    "import os, time\n"
    "go = os.path.join(os.environ['SWEEPWISE_RUN_DIR'], 'go')\n"
    "deadline = time.time() + 120\n"
    "while not os.path.exists(go) and time.time() < deadline:\n"
    "    time.sleep(0.01)\n"
)


def _py(code: str) -> list[str]:
    return ["python", "-c", textwrap.dedent(code)]


def _gone(pid: int) -> bool:
    return not process_alive(pid)


def _drain(
    dispatcher: LocalDispatcher, until: EventKind, run_id: str, timeout: float = 60.0
) -> list[JobEvent]:
    """Poll until an event of kind `until` for `run_id`; return every event seen for it."""
    events: list[JobEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispatcher.wait(0.2)
        events += [event for event in dispatcher.poll() if event.run_id == run_id]
        if any(event.kind is until for event in events):
            return events
    raise AssertionError(f"no {until} event for {run_id}; got {[e.kind for e in events]}")


@pytest.fixture(  # the host is the default start method; the full suite runs all three
    params=[
        "host",
        pytest.param("fork", marks=pytest.mark.slow),
        pytest.param("spawn", marks=pytest.mark.slow),
    ]
)
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _status(runs_root: Path, run_id: str, job: str = "train") -> dict[str, Any]:
    status = read_status(runs_root / "exp" / run_id / f"{job}.status.json")
    assert status is not None
    return status


def test_protocols_and_registry(runs_root: Path) -> None:
    dispatcher = make_dispatcher("local", runs_root=runs_root, experiment="exp")
    assert isinstance(dispatcher, LocalDispatcher)
    assert all(isinstance(dispatcher, p) for p in (Dispatcher, Reattachable, Waitable))
    with pytest.raises(ConfigError) as info:
        make_dispatcher("nope")
    assert info.value.field == "dispatcher"
    assert "unknown dispatcher 'nope'; choose one of: local" in str(info.value)
    with pytest.raises(ConfigError):
        LocalDispatcher(runs_root, "exp", start_method="thread")


def test_job_runs_to_finished_with_result(make: Callable[..., LocalDispatcher], runs_root: Path) -> None:
    dispatcher = make()
    job = JobDefinition(
        run_id="ok",
        cmd=_py(
            """
            import sys, sweepwise
            sweepwise.report(step=1, loss=0.5)
            argv = __import__("json").dumps(sys.argv[1:])
            print("SWEEPWISE_RESULT " + '{"score": 0.75, "argv": %s}' % argv)
            """
        ),
        overrides={"lr": 1e-05, "evil": "$(touch pwned); `x`"},
    )
    dispatch_id = dispatcher.dispatch(job)
    run_id, job_name, pid = parse_dispatch_id(dispatch_id)
    assert (run_id, job_name) == ("ok", "train") and pid > 0
    events = _drain(dispatcher, EventKind.FINISHED, "ok")
    kinds = [event.kind for event in events]
    assert kinds[0] is EventKind.STARTED and kinds[-1] is EventKind.FINISHED
    assert kinds.count(EventKind.STARTED) == 1
    finished = events[-1]
    assert finished.succeeded and finished.exit_code == 0 and finished.error is None
    assert finished.result == {"score": 0.75, "argv": ["lr=1e-05", "evil=$(touch pwned); `x`"]}
    assert finished.dispatch_id == dispatch_id and finished.job_type is TRAIN
    status = _status(runs_root, "ok")
    assert finished.at == status["ended_at"] and finished.started_at == status["started_at"]
    assert not (runs_root / "exp" / "ok" / "pwned").exists()
    assert dispatcher.poll() == []  # nothing more once finished


def test_metrics_and_heartbeat_events(make: Callable[..., LocalDispatcher]) -> None:
    dispatcher = make(heartbeat_interval=0.05)
    code = (
        "import sweepwise\nsweepwise.report(step=1, loss=0.5)\n"
        + WAIT_FOR_GO
        + "sweepwise.report(step=2, loss=0.25)\n"
    )
    dispatcher.dispatch(JobDefinition(run_id="m", cmd=["python", "-c", code]))
    events: list[JobEvent] = []

    def seen(kind: EventKind) -> bool:
        events.extend(dispatcher.poll())
        return any(event.kind is kind for event in events)

    wait_for(lambda: seen(EventKind.METRICS), "a METRICS event")
    wait_for(lambda: seen(EventKind.HEARTBEAT), "a HEARTBEAT event")
    metrics = [event for event in events if event.kind is EventKind.METRICS]
    assert metrics[0].metrics == {"step": 1, "loss": 0.5}
    (dispatcher._run_dir("m") / "go").touch()
    events += _drain(dispatcher, EventKind.FINISHED, "m")
    assert [e.metrics for e in events if e.kind is EventKind.METRICS][-1] == {"step": 2, "loss": 0.25}
    assert events[-1].result == {"loss": 0.25}


def test_failing_job_reports_exit_code_and_last_output(make: Callable[..., LocalDispatcher]) -> None:
    dispatcher = make()
    code = "import sys\nprint('working')\nprint('boom: bad value', file=sys.stderr)\nprint()\nsys.exit(3)\n"
    dispatcher.dispatch(JobDefinition(run_id="bad", cmd=["python", "-c", code]))
    finished = _drain(dispatcher, EventKind.FINISHED, "bad")[-1]
    assert finished.exit_code == 3 and not finished.succeeded
    assert finished.error == "exit code 3; last output: boom: bad value"


def test_zero_exit_with_malformed_result(make: Callable[..., LocalDispatcher]) -> None:
    dispatcher = make()
    dispatcher.dispatch(JobDefinition(run_id="mal", cmd=_py("print('SWEEPWISE_RESULT {oops}')")))
    finished = _drain(dispatcher, EventKind.FINISHED, "mal")[-1]
    assert finished.exit_code == 0 and finished.result is None and not finished.succeeded
    assert finished.error is not None and "is not valid JSON" in finished.error


def test_dispatch_is_idempotent(make: Callable[..., LocalDispatcher], runs_root: Path) -> None:
    marker = runs_root.parent / "marker"
    job = JobDefinition(run_id="once", cmd=_py(f"open({str(marker)!r}, 'a').write('x\\n')"))
    first = make()
    dispatch_id = first.dispatch(job)
    assert first.dispatch(job) == dispatch_id
    # A fresh dispatcher (after a restart) finds the job, or takes its claim over if the first
    # one's supervisor has not taken it yet: either way the job starts once.
    second = make()
    dispatch_id = second.dispatch(job)
    assert second.find("once", TRAIN) == dispatch_id
    assert second.find("once", JobTypes.LAUNCH_EVAL) is None
    assert second.find("never", TRAIN) is None
    _drain(second, EventKind.FINISHED, "once")
    assert second.dispatch(job) == dispatch_id
    assert make().dispatch(job) == dispatch_id
    assert marker.read_text() == "x\n"


def test_job_survives_the_death_of_the_dispatching_process(
    make: Callable[..., LocalDispatcher], runs_root: Path, method: str
) -> None:
    controller = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from sweepwise.dispatchers.local import LocalDispatcher
        from sweepwise.core.models import JobDefinition
        code = {WAIT_FOR_GO!r} + "print('SWEEPWISE_RESULT {{\\"survived\\": true}}')"
        d = LocalDispatcher(Path({str(runs_root)!r}), "exp", start_method={method!r})
        print(d.dispatch(JobDefinition(run_id="orphan", cmd=["python", "-c", code])), flush=True)
        time.sleep(600)
        """
    )
    with subprocess.Popen([sys.executable, "-c", controller], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            dispatch_id = proc.stdout.readline().strip()
            wait_for(
                lambda: (
                    (runs_root / "exp" / "orphan" / "train.status.json").exists()
                    and _status(runs_root, "orphan")["state"] == "running"
                ),
                "the job to start",
            )
        finally:
            proc.kill()  # SIGKILL: no cleanup in the controller
    status = _status(runs_root, "orphan")
    assert status["state"] == "running" and process_alive(status["pid"], status["pid_start"])

    dispatcher = make()
    assert dispatcher.find("orphan", TRAIN) == dispatch_id
    dispatcher.reattach(dispatch_id, "orphan", TRAIN)
    (runs_root / "exp" / "orphan" / "go").touch()
    finished = _drain(dispatcher, EventKind.FINISHED, "orphan")[-1]
    assert finished.succeeded and finished.result == {"survived": True}


def test_cancel_kills_the_job_and_its_children(make: Callable[..., LocalDispatcher], runs_root: Path) -> None:
    dispatcher = make()
    pids = runs_root.parent / "pids"
    code = f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r} + ".tmp", "w").write(f"{{os.getpid()}} {{child.pid}}")
        os.rename({str(pids)!r} + ".tmp", {str(pids)!r})
        time.sleep(600)
        """
    dispatch_id = dispatcher.dispatch(JobDefinition(run_id="c", cmd=_py(code)))
    job_pid, child_pid = map(int, wait_for(lambda: pids.exists() and pids.read_text(), "pids").split())
    dispatcher.cancel(dispatch_id)
    finished = _drain(dispatcher, EventKind.FINISHED, "c")[-1]
    assert finished.exit_code == -signal.SIGTERM
    assert finished.error is not None and finished.error.startswith("cancelled; exit code -15")
    assert _status(runs_root, "c")["cancelled"] is True
    wait_for(lambda: _gone(job_pid) and _gone(child_pid), "the job and its child to be gone")
    dispatcher.cancel(dispatch_id)  # already ended: no error
    make().cancel(dispatch_id)  # from a fresh dispatcher, by id alone


def test_cancel_escalates_to_sigkill(make: Callable[..., LocalDispatcher], runs_root: Path) -> None:
    dispatcher = make(grace_period=0.3)
    ready = runs_root.parent / "ready"
    code = f"""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(ready)!r}, "w").close()
        time.sleep(600)
        """
    dispatch_id = dispatcher.dispatch(JobDefinition(run_id="stubborn", cmd=_py(code)))
    wait_for(ready.exists, "the job to ignore SIGTERM")
    dispatcher.cancel(dispatch_id)
    finished = _drain(dispatcher, EventKind.FINISHED, "stubborn")[-1]
    assert finished.exit_code == -signal.SIGKILL
    status = _status(runs_root, "stubborn")
    assert status["cancelled"] is True and status["state"] == "exited"


# A job that notes each SIGTERM it gets in `<run_dir>/terms`, goes on, and says when it is ready.
STUBBORN = (
    "import os, signal, time\n"
    "run_dir = os.environ['SWEEPWISE_RUN_DIR']\n"
    "def note(signum, frame):\n"
    "    open(os.path.join(run_dir, 'terms'), 'a').write('term\\n')\n"
    "signal.signal(signal.SIGTERM, note)\n"
    "open(os.path.join(run_dir, 'pid'), 'w').write(str(os.getpid()))\n"
    "time.sleep(600)\n"
)


def _cancelled_stubborn_job(
    dispatcher: LocalDispatcher, runs_root: Path, run_id: str
) -> tuple[LocalDispatcher, int]:
    """Start a `STUBBORN` job as `run_id` and cancel it once it runs; the dispatcher and its pid."""
    dispatch_id = dispatcher.dispatch(JobDefinition(run_id=run_id, cmd=_py(STUBBORN)))
    pid = _job_pid(runs_root, run_id)
    dispatcher.cancel(dispatch_id)
    return dispatcher, pid


def _ends(dispatcher: LocalDispatcher, enough: Callable[[list[JobEvent]], bool]) -> list[JobEvent]:
    """Poll until the FINISHED events seen are `enough` (at most a minute); return them."""
    seen: list[JobEvent] = []
    deadline = time.monotonic() + 60
    while not enough(seen) and time.monotonic() < deadline:
        dispatcher.wait(0.2)
        seen += [event for event in dispatcher.poll() if event.kind is EventKind.FINISHED]
    return seen


def _job_pid(runs_root: Path, run_id: str) -> int:
    pid_file = runs_root / "exp" / run_id / "pid"
    return int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), f"{run_id} to start"))


def test_cancelling_jobs_that_ignore_sigterm_signals_them_all_before_any_is_killed(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    # Each cancel returns with its job still alive: stopping many stubborn jobs (ASHA stopping
    # several runs in one tick) takes one grace period for all, not one each (docs/design.md).
    dispatcher = make(grace_period=3)
    names = ["s1", "s2", "s3"]
    ids = {name: dispatcher.dispatch(JobDefinition(run_id=name, cmd=_py(STUBBORN))) for name in names}
    pids = {name: _job_pid(runs_root, name) for name in names}
    for name in names:
        dispatcher.cancel(ids[name])
        dispatcher.cancel(ids[name])  # again while in progress: one cancel, not two
    for name in names:
        terms = runs_root / "exp" / name / "terms"
        wait_for(terms.exists, f"{name} to get SIGTERM")
    assert all(process_alive(pid) for pid in pids.values())  # every one signalled, none killed yet
    ended = _ends(dispatcher, lambda seen: {e.run_id for e in seen} >= set(names))
    finished = {event.run_id: event for event in ended}
    for name in names:
        assert finished[name].exit_code == -signal.SIGKILL
        assert _status(runs_root, name)["cancelled"] is True
        assert (runs_root / "exp" / name / "terms").read_text() == "term\n"  # SIGTERM once
    assert all(_gone(pid) for pid in pids.values())


def test_a_retry_of_a_cancelled_job_starts_only_once_the_cancelled_attempt_is_gone(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    dispatcher, first_pid = _cancelled_stubborn_job(make(grace_period=2), runs_root, "r")
    wait_for((runs_root / "exp" / "r" / "terms").exists, "the first attempt to get SIGTERM")
    # The second attempt notes whether the first one's process still existed when it started.
    check = f"""
        import os
        try:
            state = open('/proc/{first_pid}/stat').read().rsplit(')', 1)[1].split()[0]
        except FileNotFoundError:
            state = 'gone'
        open(os.path.join(os.environ['SWEEPWISE_RUN_DIR'], 'first_seen'), 'w').write(state)
        """
    dispatcher.dispatch(JobDefinition(run_id="r", cmd=_py(check), attempt=2))
    ended = _ends(dispatcher, lambda seen: any(e.attempt == 2 for e in seen))
    attempts = {event.attempt: event for event in ended}
    assert attempts[2].succeeded
    assert (runs_root / "exp" / "r" / "first_seen").read_text() in ("gone", "Z", "X")  # dead
    assert _gone(first_pid)


def test_close_returns_once_every_cancelled_job_is_gone(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    dispatcher, pid = _cancelled_stubborn_job(make(grace_period=1), runs_root, "c")
    dispatcher.close()  # as `sweepwise cancel` does once it has cancelled every job
    assert _gone(pid)


@pytest.mark.parametrize("heartbeat", [0.2, 3600])
def test_a_cancel_is_carried_through_by_the_supervisor_when_the_canceller_dies_before_its_sigkill(
    runs_root: Path, method: str, heartbeat: float
) -> None:
    # A controller SIGKILLed right after its cancel's SIGTERM, to a job that takes SIGTERM slowly:
    # the job's supervisor (or the job host) sends the SIGKILL once the grace period is over, also
    # when its next heartbeat is an hour away (the host is told of the cancel; it does not wait to
    # see the job's marker at that heartbeat).
    script = f"""
        import os, signal, sys
        from pathlib import Path
        from sweepwise.core.models import JobDefinition
        from sweepwise.dispatchers.local import LocalDispatcher
        runs = Path({str(runs_root)!r})
        dispatcher = LocalDispatcher(
            runs, "exp", grace_period=1, heartbeat_interval={heartbeat}, start_method={method!r}
        )
        dispatch_id = dispatcher.dispatch(JobDefinition(run_id="k", cmd=sys.argv[1:]))
        pid_file = runs / "exp" / "k" / "pid"
        while not pid_file.exists() or not pid_file.read_text():
            pass
        dispatcher.cancel(dispatch_id)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    canceller = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *_py(STUBBORN)], timeout=120)
    assert canceller.returncode == -signal.SIGKILL
    pid = int((runs_root / "exp" / "k" / "pid").read_text())
    wait_for((runs_root / "exp" / "k" / "terms").exists, "the job to get its SIGTERM")
    wait_for(lambda: _gone(pid), "the job to be killed once its grace period is over")
    wait_for(lambda: _status(runs_root, "k").get("state") == "exited", "its final status")
    status = _status(runs_root, "k")
    assert status["exit_code"] == -signal.SIGKILL and status["cancelled"] is True


def test_a_sigterm_to_the_supervisor_is_followed_by_its_sigkill_long_before_the_next_heartbeat(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    # The SIGTERM interrupts the supervisor's (or the host's) wait for its next heartbeat, an
    # hour away: the SIGKILL it arms must not wait for that hour (a poll a signal interrupts
    # resumes with its old timeout unless the handler wakes it).
    dispatcher = make(grace_period=1, heartbeat_interval=3600)
    dispatcher.dispatch(JobDefinition(run_id="h", cmd=_py(STUBBORN)))
    pid = _job_pid(runs_root, "h")
    os.kill(_status(runs_root, "h")["supervisor_pid"], signal.SIGTERM)
    wait_for((runs_root / "exp" / "h" / "terms").exists, "the job to get its SIGTERM")
    wait_for(lambda: _gone(pid), "the job to be killed once its grace period is over")
    wait_for(lambda: _status(runs_root, "h").get("state") == "exited", "its final status")
    status = _status(runs_root, "h")
    assert status["exit_code"] == -signal.SIGKILL and status["cancelled"] is True
    assert (runs_root / "exp" / "h" / "terms").read_text() == "term\n"


@pytest.mark.slow
def test_a_cancel_on_a_full_disk_still_stops_the_job(tmp_path: Path) -> None:
    # The `<job>.cancel` marker cannot be written: the job is signalled all the same, and its end
    # is recorded once there is room again (the job host retries its final status).
    from faults_helpers import kill_everything_under
    from tmpfs import fill_disk, small_tmpfs

    code = """
        import os, time
        open(os.path.join(os.environ['SWEEPWISE_RUN_DIR'], 'pid'), 'w').write(str(os.getpid()))
        time.sleep(600)
        """
    with small_tmpfs(tmp_path / "disk") as disk:
        runs = disk / "runs"
        dispatcher = LocalDispatcher(runs, "exp", start_method="host", heartbeat_interval=0.2)
        try:
            dispatch_id = dispatcher.dispatch(JobDefinition(run_id="f", cmd=_py(code)))
            pid = _job_pid(runs, "f")
            filler = fill_disk(disk / "filler")
            dispatcher.cancel(dispatch_id)  # no error, though the marker cannot be written
            dispatcher.close()  # returns once the job is gone
            assert _gone(pid) and not (runs / "exp" / "f" / "train.cancel").exists()
            filler.unlink()
            status = wait_for(
                lambda: (
                    (read_status(runs / "exp" / "f" / "train.status.json") or {}).get("state") == "exited"
                    and read_status(runs / "exp" / "f" / "train.status.json")
                ),
                "the job's final status, once there is room for it",
            )
            assert status["exit_code"] == -signal.SIGTERM
            # and the host, its input closed and its last status written, exits (it slept an hour)
            wait_for(lambda: _gone(status["supervisor_pid"]), "the job host to exit")
        finally:
            dispatcher.close()
            kill_everything_under(tmp_path)


@contextlib.contextmanager
def _disk_full_after_its_first_row(
    tmp_path: Path, first: str, then: str = "", method: str = "host"
) -> Iterator[tuple[LocalDispatcher, Path, Path]]:
    """A job on a 3 MB tmpfs runs `first` (a `sweepwise.report`), waits while the disk is filled
    under it, then runs `then`; yields (its dispatcher, its run dir, the filler file) once filled."""
    from faults_helpers import kill_everything_under
    from tmpfs import fill_disk, small_tmpfs

    full = tmp_path / "full"
    code = f"""
        import os, time, sweepwise
        {first}
        while not os.path.exists({str(full)!r}):
            time.sleep(0.01)
        {then}
        """
    with small_tmpfs(tmp_path / "disk") as disk:
        runs = disk / "runs"
        dispatcher = LocalDispatcher(runs, "exp", start_method=method, heartbeat_interval=0.2)
        try:
            dispatcher.dispatch(JobDefinition(run_id="r", cmd=_py(code)))
            metrics = runs / "exp" / "r" / "train.metrics.jsonl"
            wait_for(lambda: metrics.exists() and metrics.stat().st_size > 0, "the job's first row")
            filler = fill_disk(disk / "filler")
            full.touch()
            yield dispatcher, runs / "exp" / "r", filler
        finally:
            dispatcher.close()
            kill_everything_under(tmp_path)


@pytest.mark.slow
def test_a_job_whose_last_report_a_full_disk_cuts_short_fails_rather_than_scoring_an_older_row(
    tmp_path: Path,
) -> None:
    # The job's result is its last `sweepwise.report` row. Its final row meets a full disk:
    # the job must fail, not finish with the row before it as its score.
    first = "sweepwise.report(step=1, accuracy=0.1)"
    then = 'sweepwise.report(step=2, accuracy=0.9, note="x" * 8000)'
    with _disk_full_after_its_first_row(tmp_path, first, then) as (dispatcher, run_dir, filler):
        metrics = run_dir / "train.metrics.jsonl"
        wait_for(lambda: b'"step":2' in metrics.read_bytes(), "part of the final row on disk")
        filler.unlink()  # room for the job's final status
        finished = _drain(dispatcher, EventKind.FINISHED, "r")[-1]
        assert not finished.succeeded and finished.exit_code == 1, finished  # not a score of 0.1


@pytest.mark.slow
def test_a_job_that_ends_on_a_full_disk_is_finished_with_its_result_once_there_is_room(
    tmp_path: Path, method: str
) -> None:
    # The job reported only progress rows and exited 0 while the disk was full: its supervisor
    # (or job host) keeps its final status until there is room, so the run is scored with its
    # last row, as any job seen to exit 0, and not judged by the evidence of a vanished one.
    first = "sweepwise.report(step=1, accuracy=0.7)"
    with _disk_full_after_its_first_row(tmp_path, first, method=method) as (dispatcher, run_dir, filler):
        pid = (read_status(run_dir / "train.status.json") or {})["pid"]
        wait_for(lambda: _gone(pid), "the job to end")
        time.sleep(2.0)  # its final status refused twice; a supervisor that gave up is gone by now
        filler.unlink()
        finished = _drain(dispatcher, EventKind.FINISHED, "r")[-1]
        assert finished.succeeded and finished.result == {"accuracy": 0.7}, finished


def test_a_process_that_exits_without_closing_still_kills_the_jobs_it_cancelled(runs_root: Path) -> None:
    # A script driving the dispatcher, cancelling a stubborn job and exiting at once.
    script = f"""
        import sys
        from pathlib import Path
        from sweepwise.core.models import JobDefinition
        from sweepwise.dispatchers.local import LocalDispatcher
        dispatcher = LocalDispatcher(Path({str(runs_root)!r}), "exp", grace_period=1)
        dispatch_id = dispatcher.dispatch(JobDefinition(run_id="x", cmd=sys.argv[1:]))
        pid_file = Path({str(runs_root)!r}) / "exp" / "x" / "pid"
        while not pid_file.exists() or not pid_file.read_text():
            pass
        dispatcher.cancel(dispatch_id)
        """
    subprocess.run([sys.executable, "-c", textwrap.dedent(script), *_py(STUBBORN)], check=True, timeout=120)
    pid = int((runs_root / "exp" / "x" / "pid").read_text())
    wait_for(lambda: _gone(pid), "the cancelled job to be gone once its canceller exited")
    assert (runs_root / "exp" / "x" / "terms").exists()


@pytest.mark.parametrize(  # the same evidence rules for each; the host is the default start method
    "method",
    ["host", pytest.param("fork", marks=pytest.mark.slow), pytest.param("spawn", marks=pytest.mark.slow)],
)
def test_a_job_outlives_its_killed_supervisor_and_is_judged_by_its_evidence(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    dispatcher = make()
    code = "print('still here', flush=True)\nimport time\ntime.sleep(600)"
    dispatch_id = dispatcher.dispatch(JobDefinition(run_id="l", cmd=_py(code)))
    result_code = "import os, time\ntime.sleep(1.5)\nprint('SWEEPWISE_RESULT {\"score\": 7}')"
    dispatcher.dispatch(JobDefinition(run_id="r", cmd=_py(result_code)))
    _drain(dispatcher, EventKind.STARTED, "l")
    status = _status(runs_root, "l")
    wait_for(lambda: "still here" in (runs_root / "exp" / "l" / "train.log").read_text(), "output")
    os.kill(status["supervisor_pid"], signal.SIGKILL)
    # The job runs on: it is not lost while its own process runs, and its result is taken.
    finished = _drain(dispatcher, EventKind.FINISHED, "r")[-1]
    assert finished.succeeded and finished.result == {"score": 7}
    assert process_alive(status["pid"], status["pid_start"])
    assert EventKind.LOST not in [event.kind for event in dispatcher.poll()]
    dispatcher.cancel(dispatch_id)  # a job without its supervisor is signalled directly
    wait_for(lambda: _gone(status["pid"]), "the orphaned job to be gone")
    lost = _drain(dispatcher, EventKind.LOST, "l")[-1]  # ended, no result: lost
    assert lost.error is not None and "without an exit status" in lost.error
    assert lost.error.endswith("last output: still here")


def test_a_job_killed_mid_training_with_its_supervisor_is_lost_not_scored_by_its_progress(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    # As in a reboot or an OOM kill: the job and its supervisor die at once, no exit status.
    # Its `sweepwise.report` rows are progress: the run must not be scored with the last one.
    dispatcher = make()
    code = """
        import time, sweepwise
        sweepwise.report(step=1, accuracy=0.3)
        time.sleep(600)
        """
    dispatcher.dispatch(JobDefinition(run_id="k", cmd=_py(code)))
    metrics = runs_root / "exp" / "k" / "train.metrics.jsonl"
    wait_for(lambda: metrics.exists() and metrics.stat().st_size > 0, "the job's progress row")
    wait_for(lambda: _status(runs_root, "k").get("pid"), "the job's pid")
    status = _status(runs_root, "k")
    for pid in (status["supervisor_pid"], status["pid"]):  # the supervisor (or job host) first
        os.kill(pid, signal.SIGKILL)
    events = _drain(dispatcher, EventKind.LOST, "k")
    assert EventKind.FINISHED not in [event.kind for event in events], events


def test_a_job_whose_pid_is_now_a_thread_of_another_process_is_lost_not_running_for_ever(
    make: Callable[..., LocalDispatcher],
) -> None:
    # A controller reattaches a job whose run directory records nothing, by the pid in its id.
    # That id is now a thread of some other process (here, this one's): /proc answers for a
    # thread's id and kill(tid, 0) succeeds, yet no job runs there. It must end LOST, not wait.
    import threading

    from sweepwise.runtime.supervise import proc_start_time

    release, ids = threading.Event(), []
    thread = threading.Thread(target=lambda: (ids.append(threading.get_native_id()), release.wait(60)))
    thread.start()
    try:
        wait_for(lambda: ids, "the thread's id")
        (tid,) = ids
        assert tid != os.getpid() and not process_alive(tid) and proc_start_time(tid) is None
        dispatcher = make()
        dispatcher.reattach(f"gone:train:{tid}", "gone", TRAIN)
        lost = _drain(dispatcher, EventKind.LOST, "gone")[-1]
        assert lost.error is not None and "job lost" in lost.error
    finally:
        release.set()
        thread.join()


def test_a_job_the_runs_dir_has_no_record_of_is_waited_on_with_a_warning_then_lost(
    make: Callable[..., LocalDispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    # Its pid belongs to a live process that is not our job (its runs_dir moved, say): nothing
    # tells them apart, so the controller says so, and judges the job lost once it is gone.
    other = subprocess.Popen(["sleep", "60"])
    try:
        dispatcher = make()
        with caplog.at_level(logging.WARNING, logger="sweepwise.dispatchers.local"):
            dispatcher.reattach(f"moved:train:{other.pid}", "moved", TRAIN)
        assert f"holds no record of its train job; waiting on pid {other.pid}" in caplog.text
        assert EventKind.LOST not in [event.kind for event in dispatcher.poll()]
    finally:
        other.kill()
        other.wait()
    lost = _drain(dispatcher, EventKind.LOST, "moved")[-1]
    assert lost.error is not None and "job lost" in lost.error


def test_wait_returns_when_a_job_ends(make: Callable[..., LocalDispatcher], runs_root: Path) -> None:
    dispatcher = make()
    dispatcher.dispatch(JobDefinition(run_id="w", cmd=["python", "-c", WAIT_FOR_GO]))
    _drain(dispatcher, EventKind.STARTED, "w")
    (runs_root / "exp" / "w" / "go").touch()
    dispatcher.wait(60)  # returns when the supervisor exits, long before the timeout
    assert EventKind.FINISHED in [event.kind for event in dispatcher.poll()]


def test_job_files_in_the_run_dir(make: Callable[..., LocalDispatcher], runs_root: Path) -> None:
    dispatcher = make()
    code = "import json, os; print(json.load(open(os.environ['JOB_PARAMS_FILE'])))"
    train = JobDefinition(run_id="f", cmd=["python", "-c", code], overrides={"lr": 0.5})
    dispatcher.dispatch(train)
    assert _drain(dispatcher, EventKind.FINISHED, "f")[-1].succeeded
    evaluation = JobDefinition(
        run_id="f", cmd=["python", "-c", code], type=JobTypes.LAUNCH_EVAL, args={"k": 1}
    )
    dispatcher.dispatch(evaluation)
    assert _drain(dispatcher, EventKind.FINISHED, "f")[-1].job_type is JobTypes.LAUNCH_EVAL
    run_dir = runs_root / "exp" / "f"
    assert json.loads((run_dir / "params.json").read_text()) == {"k": 1}
    assert json.loads((run_dir / "train.params.json").read_text()) == {"lr": 0.5}
    assert (run_dir / "train.log").read_text() == "{'lr': 0.5}\n"
    assert (run_dir / "eval.log").read_text() == "{'k': 1}\n"
    for job in ("train", "eval"):
        assert (run_dir / f"{job}.dispatch.json").exists() and (run_dir / f"{job}.status.json").exists()


def test_bad_jobs_are_refused_before_anything_is_written(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    dispatcher = make()
    with pytest.raises(ConfigError):
        dispatcher.dispatch(JobDefinition(run_id="x", cmd="no-such-program-xyz"))
    with pytest.raises(DispatchError):
        dispatcher.dispatch(JobDefinition(run_id="x", cmd="python -c pass", nodes=2))
    assert dispatcher.find("x", TRAIN) is None and not (runs_root / "exp" / "x").exists()
    with pytest.raises(DispatchError):
        dispatcher.reattach("x:train:12", "y", TRAIN)
    with pytest.raises(DispatchError):
        dispatcher.cancel("not-an-id")


def test_the_job_host_asks_for_short_slices_and_its_jobs_do_not(runs_root: Path) -> None:
    default = current_slice_ns()
    supported = request_short_slices()
    restore_slices(supported)
    dispatcher = LocalDispatcher(runs_root, "exp", start_method="host")
    try:
        code = (
            "import json\nprint('SWEEPWISE_RESULT', json.dumps({'slice': open('/proc/self/sched').read()}))"
        )
        dispatcher.dispatch(JobDefinition(run_id="s", cmd=["python", "-c", code]))
        finished = _drain(dispatcher, EventKind.FINISHED, "s")[-1]
        assert finished.result is not None
        job_slice = next(
            int(line.rsplit(":", 1)[1])
            for line in finished.result["slice"].splitlines()
            if "se.slice" in line
        )
        assert job_slice == default  # the job runs as any process of this machine would
        host_slice = current_slice_ns(_status(runs_root, "s")["supervisor_pid"])
        assert host_slice == (SLICE_NS if supported is not None else default)
    finally:
        dispatcher.close()


def test_short_slices_are_given_back() -> None:
    before = current_slice_ns()
    with short_slices():
        inside = current_slice_ns()
    assert current_slice_ns() == before
    assert inside in (SLICE_NS, before)


def test_the_status_names_the_jobs_start_time_from_its_first_heartbeat(
    make: Callable[..., LocalDispatcher], runs_root: Path
) -> None:
    dispatcher = make(heartbeat_interval=0.05)
    dispatcher.dispatch(JobDefinition(run_id="p", cmd=["python", "-c", WAIT_FOR_GO]))
    status = wait_for(
        lambda: (
            (s := read_status(runs_root / "exp" / "p" / "train.status.json")) and s.get("pid_start") and s
        ),
        "a heartbeat with the job's start time",
    )
    assert status["state"] == "running" and status["pid_start"] == proc_start_time(status["pid"])
    (runs_root / "exp" / "p" / "go").touch()
    _drain(dispatcher, EventKind.FINISHED, "p")


def test_a_job_handed_to_a_job_host_as_it_dies_goes_to_a_new_host(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The host is SIGKILLed after the dispatcher's checks that it runs and before the job's
    # line reaches it, so the write meets a broken pipe (a soak run once failed a trial so).
    # That interleaving is forced by letting the dead host's client say it runs until the
    # write fails; the host, its pipe and the jobs are real.
    from sweepwise.dispatchers._local_host import JobHostClient

    marker = runs_root.parent / "ran"
    dispatcher = LocalDispatcher(runs_root, "exp", start_method="host", heartbeat_interval=0.2)
    try:
        dispatcher.dispatch(JobDefinition(run_id="a", cmd=_py("pass")))
        _drain(dispatcher, EventKind.FINISHED, "a")
        host = dispatcher._host
        assert host is not None
        dead = host.pid
        os.kill(dead, signal.SIGKILL)
        stat = Path(f"/proc/{dead}/stat")
        wait_for(
            lambda: stat.read_text().rpartition(")")[2].split()[0] == "Z", "the host to be dead, not reaped"
        )
        broke: list[OSError] = []
        alive, submit = JobHostClient.alive, JobHostClient.submit

        def alive_until_the_write(self: JobHostClient) -> bool:
            return True if self.pid == dead and not broke else alive(self)

        def recording_submit(self: JobHostClient, request: dict[str, Any]) -> None:
            try:
                submit(self, request)
            except OSError as exc:
                broke.append(exc)
                raise

        monkeypatch.setattr(JobHostClient, "alive", alive_until_the_write)
        monkeypatch.setattr(JobHostClient, "submit", recording_submit)
        code = f"open({str(marker)!r}, 'a').write('b\\n')"
        dispatcher.dispatch(JobDefinition(run_id="b", cmd=_py(code)))
        assert broke and "the job host stopped" in str(broke[0])  # the race was met
        finished = _drain(dispatcher, EventKind.FINISHED, "b")[-1]
        assert finished.succeeded
        assert marker.read_text() == "b\n"  # the job ran, once
        assert dispatcher._host is not None and dispatcher._host.pid != dead
    finally:
        dispatcher.close()
