"""The runtime: supervisor, exec wrapper, result readers and the report client, with real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from local_dispatcher_fixtures import wait_for
from sweepwise.runtime.exec import main as exec_main
from sweepwise.runtime.results import (
    last_output,
    read_job_result,
    read_new_metrics,
    read_status,
    tail_lines,
)
from sweepwise.runtime.supervise import Supervisor, exit_status, process_alive, supervise

PY = sys.executable


def _supervise(run_dir: Path, code: str, *, job: str = "train", **kwargs: Any) -> int:
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "SWEEPWISE_RUN_DIR": str(run_dir),
        "SWEEPWISE_METRICS_FILE": str(run_dir / f"{job}.metrics.jsonl"),
        "SWEEPWISE_RESULT_FILE": str(run_dir / f"{job}.result.json"),
    }
    return supervise(
        [PY, "-c", code],
        cwd=run_dir,
        env=env,
        log_path=run_dir / f"{job}.log",
        status_path=run_dir / f"{job}.status.json",
        run_dir=run_dir,
        job_name=job,
        **kwargs,
    )


def _status(run_dir: Path, job: str = "train") -> dict[str, Any]:
    status = read_status(run_dir / f"{job}.status.json")
    assert status is not None
    return status


# -- supervise ---------------------------------------------------------------------------


def test_supervise_exit_zero(tmp_path: Path) -> None:
    code = _supervise(tmp_path, "import sys; print('hello'); print('err', file=sys.stderr)")
    assert code == 0
    status = _status(tmp_path)
    assert status["state"] == "exited" and status["exit_code"] == 0 and status["cancelled"] is False
    assert status["supervisor_pid"] == os.getpid() and isinstance(status["pid"], int)
    assert status["started_at"] <= status["heartbeat_at"] <= status["ended_at"]
    assert (tmp_path / "train.log").read_text().splitlines() == ["hello", "err"]


def test_supervise_exit_three(tmp_path: Path) -> None:
    assert _supervise(tmp_path, "raise SystemExit(3)") == 3
    assert _status(tmp_path)["exit_code"] == 3


def test_supervise_job_killed_by_signal(tmp_path: Path) -> None:
    code = _supervise(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert code == -signal.SIGKILL
    assert _status(tmp_path)["exit_code"] == -9
    assert exit_status(code) == 137


@pytest.mark.parametrize(
    "end",
    ["os.kill(os.getpid(), signal.SIGTERM)", "raise SystemExit(143)"],
    ids=["killed-by-sigterm", "exits-143-as-a-shell-does"],
)
def test_a_job_signalled_by_an_engine_before_its_supervisor_is_recorded_cancelled(
    tmp_path: Path, end: str
) -> None:
    # `scancel` signals every process of the SLURM job: the job may end before its supervisor
    # has seen its own SIGTERM. The `<job>.cancel` file, written before the engine's cancel,
    # is what says the end was a cancel. Here the job writes it and ends itself; the
    # supervisor gets no signal at all.
    marker = tmp_path / "train.cancel"
    job = f"import os, signal; open({str(marker)!r}, 'w').write('{{}}'); {end}"
    _supervise(tmp_path, job)
    status = _status(tmp_path)
    assert status["cancelled"] is True


def test_a_job_that_ends_by_sigterm_without_a_cancel_file_is_not_cancelled(tmp_path: Path) -> None:
    assert _supervise(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGTERM)") == -15
    assert _status(tmp_path)["cancelled"] is False


def test_supervise_refreshes_the_heartbeat(tmp_path: Path) -> None:
    # The job itself waits until the supervisor has refreshed heartbeat_at.
    job = (
        "import json, os, sys, time\n"
        "path = os.path.join(os.environ['SWEEPWISE_RUN_DIR'], 'train.status.json')\n"
        "deadline = time.time() + 60\n"
        "while time.time() < deadline:\n"
        "    s = json.load(open(path))\n"
        "    if s['heartbeat_at'] > s['started_at'] and s['state'] == 'running': sys.exit(0)\n"
        "    time.sleep(0.01)\n"
        "sys.exit(1)\n"
    )
    assert _supervise(tmp_path, job, heartbeat_interval=0.05) == 0


def test_supervise_renames_result_json(tmp_path: Path) -> None:
    job = (
        "import os; path = os.path.join(os.environ['SWEEPWISE_RUN_DIR'], 'result.json'); "
        "open(path, 'w').write('{\"s\": 1}')"
    )
    assert _supervise(tmp_path, job) == 0
    assert not (tmp_path / "result.json").exists()
    assert json.loads((tmp_path / "train.result.json").read_text()) == {"s": 1}
    assert read_job_result(tmp_path, "train") == ({"s": 1}, None)
    # The eval job of the same run starts without the train job's result.json.
    assert _supervise(tmp_path, "pass", job="eval") == 0
    assert read_job_result(tmp_path, "eval") == (None, None)


def test_a_stale_result_json_is_not_taken_for_the_new_job(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text('{"from": "a dead job"}')
    assert _supervise(tmp_path, "pass", job="eval") == 0
    assert read_job_result(tmp_path, "eval") == (None, None)
    assert (tmp_path / "result.json.before-eval").exists()


def test_supervise_command_that_cannot_start(tmp_path: Path) -> None:
    code = supervise(
        [str(tmp_path / "nope")],
        cwd=tmp_path,
        env={},
        log_path=tmp_path / "train.log",
        status_path=tmp_path / "train.status.json",
        run_dir=tmp_path,
        job_name="train",
    )
    assert code == 127
    assert _status(tmp_path)["exit_code"] == 127
    assert "cannot start" in (tmp_path / "train.log").read_text()


# -- exec wrapper --------------------------------------------------------------------------


def test_python_m_exec_runs_a_job(tmp_path: Path) -> None:
    job = "import os; print('SWEEPWISE_RESULT {\"score\": 0.5}'); print(os.environ['SWEEPWISE_JOB_TYPE'])"
    proc = subprocess.run(
        [
            PY,
            "-m",
            "sweepwise.runtime.exec",
            "--run-dir",
            str(tmp_path),
            "--job",
            "eval",
            "--",
            "python",
            "-c",
            job,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert proc.returncode == 0, proc.stderr
    assert _status(tmp_path, "eval")["exit_code"] == 0
    assert (tmp_path / "eval.log").read_text().splitlines()[-1] == "eval"
    assert read_job_result(tmp_path, "eval") == ({"score": 0.5}, None)


def test_exec_main_passes_the_exit_code_and_defaults_from_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPWISE_RUN_DIR", str(tmp_path))
    monkeypatch.delenv("SWEEPWISE_JOB_TYPE", raising=False)
    assert exec_main(["--heartbeat", "0.5", "--", PY, "-c", "raise SystemExit(3)"]) == 3
    assert _status(tmp_path)["exit_code"] == 3  # job defaults to train


def test_exec_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exec_main(["--run-dir", str(tmp_path), PY]) == 2
    assert "after '--'" in capsys.readouterr().err
    assert exec_main(["--run-dir", str(tmp_path), "--"]) == 2
    assert exec_main(["--job", "test", "--", PY]) == 2


def test_exec_forwards_sigterm_and_records_the_cancel(tmp_path: Path) -> None:
    pid_file = tmp_path / "job.pid"
    job = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    proc = subprocess.Popen(
        [PY, "-m", "sweepwise.runtime.exec", "--run-dir", str(tmp_path), "--", PY, "-c", job]
    )
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the job to start")
        job_pid = int(pid_file.read_text())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    status = _status(tmp_path)
    assert status["cancelled"] is True and status["exit_code"] == -signal.SIGTERM
    assert not process_alive(job_pid)


def test_a_cancel_from_another_thread_kills_a_job_that_ignores_sigterm_after_the_grace_period(
    tmp_path: Path,
) -> None:
    # How a Ray task stops its job: `Supervisor.cancel` from another thread, while `run` waits
    # for a heartbeat an hour away; the SIGKILL comes after the grace period, not that hour.
    pid_file = tmp_path / "job.pid"
    job = (
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    )
    supervisor = Supervisor(
        [PY, "-c", job],
        str(tmp_path),
        {},
        str(tmp_path / "train.log"),
        str(tmp_path / "train.status.json"),
        str(tmp_path),
        "train",
        heartbeat_interval=3600,
        kill_grace=1,
    )
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(supervisor.run()), daemon=True)
    runner.start()
    job_pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the job to start"))
    supervisor.cancel()
    runner.join(timeout=60)
    assert codes == [-signal.SIGKILL] and not process_alive(job_pid)
    status = _status(tmp_path)
    assert status["cancelled"] is True and status["exit_code"] == -signal.SIGKILL


# -- results ----------------------------------------------------------------------------------


def test_result_line_in_the_log_last_one_wins(tmp_path: Path) -> None:
    (tmp_path / "train.log").write_text(
        'noise\nSWEEPWISE_RESULT {"score": 1}\nmore\r\nSWEEPWISE_RESULT {"score": 2}\r\ntrailing\n'
    )
    assert read_job_result(tmp_path, "train") == ({"score": 2}, None)


def test_a_result_line_up_to_the_limit_is_read_and_a_longer_one_is_refused_as_too_large(
    tmp_path: Path,
) -> None:
    # Only the log's last 64 KiB were read: a 200 KB result line was never seen ("no score"),
    # and a 2 MB one was not refused as too large.
    log = tmp_path / "train.log"
    medium = {"score": 1.0, "curve": [0.5] * 40_000}  # about 200 KB
    log.write_text("hello\nSWEEPWISE_RESULT " + json.dumps(medium) + "\n")
    assert read_job_result(tmp_path, "train", rows=False) == (medium, None)
    log.write_text("SWEEPWISE_RESULT " + json.dumps({"score": 1.0, "curve": [0.5] * 400_000}) + "\n")
    assert read_job_result(tmp_path, "train", rows=False) == (
        None,
        "the last SWEEPWISE_RESULT line of train.log is 2 MB, over the 1 MB limit "
        "(SWEEPWISE_MAX_RESULT_BYTES); report a summary, not data",
    )
    # a long last line that is not a result is no error: the result may come from elsewhere
    log.write_text("x" * 2_000_000 + "\n")
    assert read_job_result(tmp_path, "train", rows=False) == (None, None)


def test_malformed_result_line_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "train.log").write_text('SWEEPWISE_RESULT {"score": 1}\nSWEEPWISE_RESULT {score: 2}\n')
    result, error = read_job_result(tmp_path, "train")
    assert result is None and error is not None and "\n" not in error
    assert "SWEEPWISE_RESULT line of train.log is not valid JSON (line 1 column 2" in error


def test_malformed_result_json_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "train.result.json").write_text('{"score": 0.9,,\n}\n')
    (tmp_path / "train.log").write_text('SWEEPWISE_RESULT {"score": 1}\n')  # result.json comes first
    result, error = read_job_result(tmp_path, "train")
    assert result is None and error is not None and "\n" not in error
    assert error.startswith("train.result.json is not valid JSON (line 1 column 15: ")
    assert error.endswith('write one JSON object, e.g. {"score": 0.9}')


def test_result_json_that_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "eval.result.json").write_text("[0.9]")
    result, error = read_job_result(tmp_path, "eval")
    assert result is None and error is not None and "\n" not in error
    assert "eval.result.json holds an array" in error


def test_metrics_rows_are_the_last_resort(tmp_path: Path) -> None:
    assert read_job_result(tmp_path, "train") == (None, None)
    (tmp_path / "train.log").write_text("no result here\n")
    (tmp_path / "train.metrics.jsonl").write_text(
        '{"step": 1, "time": 1.0, "loss": 2}\n{"step": 2, "time": 2.0, "loss": 1}\n{"step": 3, "ti'
    )
    assert read_job_result(tmp_path, "train") == ({"loss": 1}, None)


def test_read_new_metrics_reads_every_complete_new_row_in_order(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    assert read_new_metrics(path, 0) == ([], 0)
    path.write_text('{"step": 1}\n{"step": 2}\n{"st')
    rows, offset = read_new_metrics(path, 0)
    assert rows == [{"step": 1}, {"step": 2}] and offset == len('{"step": 1}\n{"step": 2}\n')
    assert read_new_metrics(path, offset) == ([], offset)
    with path.open("a") as handle:
        handle.write('ep": 3}\nnot json\n[4]\n{"step": 5}\n')
    rows, offset = read_new_metrics(path, offset)
    assert rows == [{"step": 3}, {"step": 5}] and offset == path.stat().st_size


def test_tail_lines_and_last_output(tmp_path: Path) -> None:
    path = tmp_path / "log"
    assert tail_lines(path) == []
    path.write_text("".join(f"line {i}\n" for i in range(10_000)) + "last\n\n  \n")
    assert tail_lines(path, 3) == ["last", "", "  "]
    assert tail_lines(path, 5)[:2] == ["line 9998", "line 9999"]
    assert len(tail_lines(path)) == 20
    assert last_output(path) == "last"
    path.write_text("no newline at the end")
    assert tail_lines(path) == ["no newline at the end"]


def test_read_status_is_tolerant(tmp_path: Path) -> None:
    assert read_status(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{")
    assert read_status(tmp_path / "bad.json") is None
    (tmp_path / "list.json").write_text("[]")
    assert read_status(tmp_path / "list.json") is None


# -- report client ------------------------------------------------------------------------------


def test_report_and_report_result_from_a_real_job(tmp_path: Path) -> None:
    job = (
        "import sweepwise\n"
        "sweepwise.report(step=1, loss=0.5)\n"
        "sweepwise.report(step=2, loss=0.25, acc=0.75)\n"
        "sweepwise.report_result(score=0.5)\n"
        "sweepwise.report_result(score=0.9, cost=3)\n"
    )
    assert _supervise(tmp_path, job) == 0
    rows = [json.loads(line) for line in (tmp_path / "train.metrics.jsonl").read_text().splitlines()]
    assert [(row["step"], row["loss"]) for row in rows] == [(1, 0.5), (2, 0.25)]
    assert all(isinstance(row["time"], float) for row in rows)
    assert read_job_result(tmp_path, "train") == ({"score": 0.9, "cost": 3}, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "train.log",
        "train.metrics.jsonl",
        "train.result.json",
        "train.status.json",
    ]


def test_report_falls_back_to_the_run_dir(tmp_path: Path) -> None:
    job = "import sweepwise; sweepwise.report(step=0, x=1); sweepwise.report_result(x=2)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEPWISE_")}
    subprocess.run([PY, "-c", job], env={**env, "SWEEPWISE_RUN_DIR": str(tmp_path)}, check=True)
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["x"] == 1
    assert json.loads((tmp_path / "result.json").read_text()) == {"x": 2}


def test_a_metric_named_time_is_refused_not_taken_for_the_rows_timestamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sweepwise

    monkeypatch.setenv("SWEEPWISE_METRICS_FILE", str(tmp_path / "m.jsonl"))
    with pytest.raises(ValueError, match="'time' is each row's timestamp.*time_s"):
        sweepwise.report(step=7, time=3.2, score=0.5)
    assert not (tmp_path / "m.jsonl").exists()  # nothing half-written


def test_report_outside_sweepwise_warns_once_and_writes_nothing(tmp_path: Path) -> None:
    job = "import sweepwise as s; s.report(step=0, x=1); s.report(x=2); s.report_result(x=3)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEPWISE_")}
    proc = subprocess.run(
        [PY, "-W", "always", "-c", job], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert proc.stderr.count("not running under sweepwise") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # mounts a tmpfs (root): the full suite runs it
def test_a_row_a_full_disk_cuts_short_raises_and_the_next_row_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last row may be the job's result: a row the disk cuts short must fail the job, not
    # leave an older row as its result; a job that goes on writes its next row whole.
    import contextlib
    import errno

    import sweepwise
    from sweepwise.runtime import report as report_module
    from sweepwise.runtime.results import last_metrics_row
    from tmpfs import fill_disk, small_tmpfs

    with small_tmpfs(tmp_path / "disk") as disk:
        path = disk / "train.metrics.jsonl"
        monkeypatch.setenv("SWEEPWISE_METRICS_FILE", str(path))
        monkeypatch.setattr(report_module, "_torn", False)
        sweepwise.report(step=1, loss=0.5)  # its page has room for some 4 KB more
        filler = fill_disk(disk / "filler")
        with pytest.raises(OSError) as cut:
            sweepwise.report(step=2, loss=0.25, note="x" * 8000)  # more than the page has left
        assert cut.value.errno == errno.ENOSPC
        assert b'"step":2' in path.read_bytes()  # part of it is on disk ...
        assert last_metrics_row(path)["step"] == 1  # ... and passed over: the job failed, not stale
        with pytest.raises(OSError):
            sweepwise.report(step=3, loss=0.2)  # still full: nothing written
        filler.unlink()
        sweepwise.report(step=4, loss=0.125)
        rows = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                rows.append(json.loads(line)["step"])
        assert rows == [1, 4]
        assert last_metrics_row(path) == {"step": 4, "time": last_metrics_row(path)["time"], "loss": 0.125}
        assert [row["step"] for row in read_new_metrics(path, 0)[0]] == [1, 4]  # the cut row passed over


@pytest.mark.parametrize("exit_code", [0, 3])
def test_the_remote_runner_gives_the_last_row_as_the_result_only_of_a_job_that_exited_0(
    tmp_path: Path, exit_code: int
) -> None:
    # A Ray or SkyPilot job's result is the runner's last SWEEPWISE_RESULT line. The last
    # `sweepwise.report` row is progress: for a job that failed, printing it as a result line
    # would make the run look finished with it wherever the exit is not seen.
    code = f"import sys, sweepwise; sweepwise.report(step=1, accuracy=0.3); sys.exit({exit_code})"
    env = _remote_env(tmp_path, [PY, "-c", code])
    runner = subprocess.run(RUNNER, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert runner.returncode == exit_code, runner.stderr
    results = [line for line in runner.stdout.splitlines() if line.startswith("SWEEPWISE_RESULT ")]
    assert results == (['SWEEPWISE_RESULT {"accuracy":0.3}'] if exit_code == 0 else []), runner.stdout


# A job that starts a helper in its own process group, records both pids, and ends only when told.
GUARDED_JOB = """
import os, signal, subprocess, sys, time
from pathlib import Path
work = Path(sys.argv[1])
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # the helper inherits it
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
(work / "pids").write_text(f"{os.getpid()} {helper.pid}")
while not (work / "go").exists():
    time.sleep(0.05)
with open(work / "side_effects", "a") as out:
    out.write("done\\n")
"""


@pytest.mark.parametrize("job_kind", ["polite", pytest.param("stubborn", marks=pytest.mark.slow)])
def test_a_remote_job_stops_when_its_runner_is_killed_outright(tmp_path: Path, job_kind: str) -> None:
    # Ray kills a stopped job's workers, and the runners of a multi-node job's ranks with them,
    # with SIGKILL: the job, in a process group of its own, must not run on unseen (a retry
    # would run it twice). A job that ignores SIGTERM is SIGKILLed after the grace period.
    from faults_helpers import alive

    env = _remote_env(tmp_path, [PY, "-c", GUARDED_JOB, str(tmp_path), job_kind])
    runner = subprocess.Popen(RUNNER, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL)
    pids = [int(word) for word in wait_for(lambda: _read(tmp_path / "pids"), "the job's pids").split()]
    # a framework's signal to the job's group (a checkpoint request) must not end the guard
    wait_for(lambda: _guard_ignores(pids[0], signal.SIGUSR1), "the guard to be ready")
    os.killpg(pids[0], signal.SIGUSR1)
    runner.kill()
    runner.wait()
    wait_for(lambda: not any(alive(pid) for pid in pids), "the job and its helper to end", timeout=60)
    (tmp_path / "go").touch()
    assert not (tmp_path / "side_effects").exists()  # it never went on
    log = (tmp_path / "runs" / "exp" / "r1" / "train.log").read_text()
    assert "sweepwise: the job's supervisor died: stopping the job" in log


def test_a_remote_job_that_ends_leaves_no_guard_behind(tmp_path: Path) -> None:
    from faults_helpers import alive

    (tmp_path / "go").touch()
    env = _remote_env(tmp_path, [PY, "-c", GUARDED_JOB, str(tmp_path), "polite"])
    runner = subprocess.run(RUNNER, env=env, cwd=tmp_path, capture_output=True)
    assert runner.returncode == 0, runner.stderr
    job_pid = int(_read(tmp_path / "pids").split()[0])
    assert not [pid for pid in _group_members(job_pid) if alive(pid)]  # the helper and the guard are gone
    assert (tmp_path / "side_effects").read_text() == "done\n"
    assert "supervisor died" not in (tmp_path / "runs" / "exp" / "r1" / "train.log").read_text()


RUNNER = [PY, "-m", "sweepwise.runtime.remote"]


def _remote_env(tmp_path: Path, cmd: list[str]) -> dict[str, str]:
    """The environment of a remote runner that runs `cmd` as job r1 of experiment exp."""
    from sweepwise.core.models import JobDefinition
    from sweepwise.runtime.remote import JOB_ENV, RUNS_ROOT_ENV

    job = JobDefinition(run_id="r1", cmd=cmd)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEPWISE_")}
    return env | {
        JOB_ENV: job.model_dump_json(),
        RUNS_ROOT_ENV: str(tmp_path / "runs"),
        "SWEEPWISE_EXPERIMENT": "exp",
    }


def _read(path: Path) -> str | None:
    try:
        return path.read_text() or None
    except FileNotFoundError:
        return None


def _guard_ignores(pgid: int, signum: int) -> bool:
    """Whether the guard in process group `pgid` is running and ignores `signum`."""
    for pid in _group_members(pgid):
        try:
            if b"sweepwise.runtime.group_guard" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        ignored = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
        return bool(ignored >> (signum - 1) & 1)
    return False


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (OSError, ValueError):
            continue
        if int(stat[stat.rfind(")") + 2 :].split()[2]) == pgid:
            members.append(int(entry))
    return members


def test_the_remote_runner_writes_the_newest_row_into_the_log_and_again_when_buried(tmp_path: Path) -> None:
    # What a dispatcher that cannot read the node's files reads (docs/backends.md, "Early
    # stopping on every backend"): the newest row on a line of its own, written again after
    # more output, and not again while the job is silent.
    import io
    import threading

    from sweepwise.runtime.remote import _follow

    log, metrics = tmp_path / "train.log", tmp_path / "train.metrics.jsonl"
    out, stop = io.BytesIO(), threading.Event()

    def append(path: Path, text: str) -> None:
        with path.open("a") as handle:
            handle.write(text)

    follower = threading.Thread(target=_follow, args=(str(log), 0, str(metrics), 0, stop, out, 0.5))
    follower.start()
    try:
        append(log, "epoch 1 ")  # a line the job leaves open
        wait_for(lambda: out.getvalue() == b"epoch 1 ", "the open line copied")
        append(metrics, '{"step": 1, "loss": 0.5}\n')
        row = 'SWEEPWISE_METRICS {"step":1,"loss":0.5}\n'
        wait_for(lambda: row.encode() in out.getvalue(), "the row in the log")
        assert out.getvalue() == ("epoch 1 \n" + row).encode()
        for batch in range(30):  # output without a new row, for longer than repeat_after
            append(log, f"batch {batch}\n")
            wait_for(lambda b=batch: f"batch {b}\n".encode() in out.getvalue(), "the output copied")
            if out.getvalue().count(row.encode()) == 2:
                break
            stop.wait(0.05)
        assert out.getvalue().count(row.encode()) == 2
        assert out.getvalue().endswith(row.encode())  # right after the output that buried it
        silent = out.getvalue()
        stop.wait(1.0)  # no output: nothing is written again
        assert out.getvalue() == silent
    finally:
        stop.set()
        follower.join()
