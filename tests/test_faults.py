"""Fault injection, one test per case of issue 14: real processes, judged by the jobs' own markers.

Every train / eval job appends `run_id attempt` to markers/train.txt / eval.txt when it
starts (see `faults_helpers.JOB`), so "trained once, evaluated once" is read from what ran,
not from the store. Every process started under tmp_path is SIGKILLed in teardown.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import cli
from faults_helpers import (
    Controller,
    alive,
    clean_env,
    host_pids,
    integrity_ok,
    job_pids,
    kill_everything_under,
    marker_lines,
    processes_under,
    reboot,
    rows_of,
    runs_started,
    sigkill,
    started,
    statuses,
    summaries,
    wait_for,
    write_sweep,
)
from tmpfs import fill_disk, small_tmpfs


@pytest.fixture(autouse=True)
def _no_process_left(tmp_path: Path) -> Iterator[None]:
    yield
    kill_everything_under(tmp_path)


def assert_all_completed_once(cwd: Path, trials: int, experiment: str = "exp") -> list[dict]:  # type: ignore[type-arg]
    """Every run COMPLETED, and each trained exactly once and evaluated exactly once (by the markers)."""
    rows = rows_of(cwd, experiment)
    assert len(rows) == trials, statuses(rows)
    assert {row["status"] for row in rows} == {"completed"}, statuses(rows)
    ids = {row["run_id"] for row in rows}
    trained, evaluated = runs_started(cwd, "train"), runs_started(cwd, "eval")
    assert set(trained) == ids and set(trained.values()) == {1}, f"train jobs started per run: {trained}"
    assert set(evaluated) == ids and set(evaluated.values()) == {1}, f"eval jobs per run: {evaluated}"
    return rows


_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING) ")


def one_line(stderr: str) -> str:
    """The one line of an error on stderr (`--quiet`'s INFO / WARNING log records aside)."""
    lines = [line for line in stderr.splitlines() if line.strip() and not _LOG_RECORD.match(line)]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one error line on stderr, got {len(lines)}:\n{stderr[-3000:]}"
    return lines[0]


# -- 1 ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_case_01_an_eval_waiting_for_its_slot_is_not_declared_dead(tmp_path: Path) -> None:
    """Evals queued behind `max_concurrent_evals: 1` wait longer than `stale_after`: still not STALE."""
    spec = write_sweep(
        tmp_path,
        env={"TRAIN_SLEEPS": "0.2", "EVAL_SLEEPS": "2"},  # the 3rd eval waits 4 s, the 4th 6 s
        stale_after=3,
        monitoring_interval=0.25,  # a tick falls in the second between an eval's start and its heartbeat
        scheduler={"type": "async_capped", "max_trials": 4, "max_concurrent_evals": 1},
    )
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_all_completed_once(tmp_path, 4)


# -- 2 ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_case_02_a_controller_that_was_away_kills_no_healthy_job(tmp_path: Path) -> None:
    """Controller down longer than `stale_after`: one job ends meanwhile, one still runs at restart."""
    spec = write_sweep(
        tmp_path,
        env={"TRAIN_SLEEPS": "1,9"},
        stale_after=3,
        max_parallel=2,
        scheduler={"type": "async_capped", "max_trials": 2, "max_concurrent_evals": 2},
    )
    first = Controller(spec, tmp_path)
    wait_for(lambda: len(marker_lines(tmp_path, "train")) == 2, "both training jobs to start")
    first.kill()
    wait_for(lambda: marker_lines(tmp_path, "train_done"), "the short job to end (controller down)")
    time.sleep(5)  # the controller stays away longer than stale_after (3 s); the long job still runs
    assert len(marker_lines(tmp_path, "train_done")) == 1, "the long job must still run at the restart"

    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert marker_lines(tmp_path, "sigterm") == [], "a healthy job was sent SIGTERM"
    assert_all_completed_once(tmp_path, 2)


@pytest.mark.slow
def test_case_02b_a_machine_that_slept_with_everything_on_it_kills_no_job(tmp_path: Path) -> None:
    """Controller, host and jobs all stopped (SIGSTOP, as a sleeping laptop) for longer than stale_after."""
    spec = write_sweep(
        tmp_path,
        env={"TRAIN_SLEEPS": "4,4"},
        stale_after=3,
        max_parallel=2,
        scheduler={"type": "async_capped", "max_trials": 2, "max_concurrent_evals": 2},
    )
    controller = Controller(spec, tmp_path)
    wait_for(lambda: len(marker_lines(tmp_path, "train")) == 2, "both training jobs to start")
    others = [pid for pid in processes_under(tmp_path) if pid != controller.pid]
    for pid in [controller.pid, *others]:
        os.kill(pid, signal.SIGSTOP)
    time.sleep(6)  # asleep for twice stale_after
    os.kill(controller.pid, signal.SIGCONT)  # the controller wakes first, before any new heartbeat
    time.sleep(1.5)
    for pid in others:
        os.kill(pid, signal.SIGCONT)
    assert controller.wait(timeout=120) == 0, controller.stderr()[-3000:]
    assert marker_lines(tmp_path, "sigterm") == [], "a healthy job was sent SIGTERM"
    assert_all_completed_once(tmp_path, 2)


# -- 3 ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("new_store", ["db_deleted", "other_store"])
def test_case_03_a_new_store_does_not_reuse_old_run_directories(tmp_path: Path, new_store: str) -> None:
    """A seedless sweep run again against an empty store is refused, not paired with old results."""
    spec = write_sweep(
        tmp_path,
        optimizer={"type": "random"},  # no seed: a new store draws a new sequence
        scheduler={"type": "async_capped", "max_trials": 2, "max_concurrent_evals": 2},
    )
    first = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert_all_completed_once(tmp_path, 2)
    before = (marker_lines(tmp_path, "train"), marker_lines(tmp_path, "eval"))

    if new_store == "db_deleted":
        for path in tmp_path.glob("sweepwise.db*"):
            path.unlink()
        store: tuple[str, ...] = ()
    else:
        store = ("--store", f"sqlite:///{tmp_path / 'other.db'}")
    second = cli("run", str(spec), "--quiet", *store, cwd=tmp_path, timeout=120)

    assert second.returncode == 2, f"exit code {second.returncode}; stderr:\n{second.stderr[-3000:]}"
    line = one_line(second.stderr)
    assert "runs" in line, line  # it names the runs directory that holds another store's runs
    assert (marker_lines(tmp_path, "train"), marker_lines(tmp_path, "eval")) == before, "a job ran"
    listing = cli("status", "exp", "--json", *store, cwd=tmp_path)
    if listing.returncode == 0:  # the store may hold the experiment, but no result of the old runs
        paired = [row for row in json.loads(listing.stdout)["runs"] if row["score"] is not None]
        assert paired == [], f"old results paired with new suggestions: {paired}"


# -- 4 ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_case_04_a_slow_job_host_does_not_start_a_job_twice(tmp_path: Path) -> None:
    """The host handles the requests 12 s late (SWEEPWISE_TEST_HOST_DELAY, longer than the 10 s the
    controller used to wait for a claimed job); the controller is SIGKILLed and restarted meanwhile."""
    trials = 2
    spec = write_sweep(
        tmp_path,
        env={"TRAIN_SLEEPS": "0.5"},
        max_parallel=trials,
        scheduler={"type": "async_capped", "max_trials": trials, "max_concurrent_evals": trials},
    )
    runs = tmp_path / "runs" / "exp"
    first = Controller(spec, tmp_path, env={"SWEEPWISE_TEST_HOST_DELAY": "12"})
    wait_for(lambda: len(list(runs.glob("*/train.dispatch.json"))) == trials, "the training jobs' claims")
    hosts = wait_for(
        lambda: [p for p in processes_under(tmp_path) if b"sweepwise.runtime.jobhost" in _cmdline(p)],
        "the job host",
    )
    first.kill()
    # The hook must hold the host back: no job status, no job, for a while (a check that can only
    # miss a missing hook on a slow machine, never fail a working one).
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        assert not list(runs.glob("*/train.status.json")) and not marker_lines(tmp_path, "train"), (
            "the job host handled the requests at once: SWEEPWISE_TEST_HOST_DELAY (the slow-host hook) "
            "has no effect"
        )
        time.sleep(0.05)

    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=180)  # while the old host sleeps
    assert result.returncode == 0, result.stderr[-3000:]
    wait_for(lambda: not any(alive(pid) for pid in hosts), "the old job host to end", timeout=120)
    wait_for(lambda: not processes_under(tmp_path), "every job to end", timeout=60)
    assert_all_completed_once(tmp_path, trials)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# -- 5 ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("killed", ["host_and_controller", "host_alone"])
def test_case_05_a_dead_job_host_loses_no_finished_result(tmp_path: Path, killed: str) -> None:
    """The job host dies (with or without its controller) while its jobs run on and finish."""
    spec = write_sweep(
        tmp_path,
        env={"TRAIN_SLEEPS": "3"},
        max_parallel=2,
        scheduler={"type": "async_capped", "max_trials": 2, "max_concurrent_evals": 2},
    )
    controller = Controller(spec, tmp_path)
    wait_for(lambda: len(marker_lines(tmp_path, "train")) == 2, "both training jobs to start")
    hosts = wait_for(lambda: host_pids(tmp_path / "runs"), "the jobs' status files to name their host")
    assert len(hosts) == 1, hosts
    if killed == "host_and_controller":
        controller.kill()
    (host,) = hosts
    sigkill(host)
    wait_for(lambda: not alive(host), "the job host to die")
    assert len(marker_lines(tmp_path, "train_done")) == 0, "the jobs must outlive their host"

    if killed == "host_and_controller":
        wait_for(lambda: len(marker_lines(tmp_path, "train_done")) == 2, "the orphaned jobs to finish")
        result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=180)
        code, stderr = result.returncode, result.stderr
    else:
        code, stderr = controller.wait(timeout=180), controller.stderr()
    assert code == 0, stderr[-3000:]
    rows = assert_all_completed_once(tmp_path, 2)
    done = summaries(tmp_path / "sweepwise.db", "exp")
    for row in rows:  # the orphaned job's own result was taken
        assert done[row["run_id"]]["train/result"] == {"train_loss": 1 - row["suggestion"]["x"]}


# -- 6 ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_case_06_a_reboot_does_not_strand_the_sweep(tmp_path: Path) -> None:
    """Controller, host and jobs SIGKILLed together, 3 times: lost jobs are retried, results kept."""
    trials = 12
    spec = write_sweep(
        tmp_path,
        env={
            "TRAIN_SLEEPS": ",".join(["0.8", "2.5", "4"] * 30),
            "RESULT_MODE": "file",  # result.json is written, then the job lingers TRAIN_TAIL s
            "TRAIN_TAIL": "1.5",
            "EVAL_SLEEPS": "0.2",
        },
        scheduler={"type": "async_capped", "max_trials": trials, "max_concurrent_evals": 2},
        retries={"max_attempts": 4},  # 3 reboots may land on one job: a 4th attempt finishes it
    )
    finished_before_kill: set[tuple[str, str]] = set()
    for _ in range(3):
        seen = len(marker_lines(tmp_path, "train_result"))
        controller = Controller(spec, tmp_path)
        wait_for(
            lambda seen=seen, controller=controller: (
                len(marker_lines(tmp_path, "train_result")) > seen or not controller.alive()
            ),
            "a training job to write its result.json",
        )
        assert controller.alive(), f"the sweep ended before the reboot:\n{controller.stderr()[-3000:]}"
        reboot(tmp_path)
        controller.kill()
        finished_before_kill |= {tuple(words) for words in marker_lines(tmp_path, "train_result")}  # type: ignore[misc]

    final = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    rows = rows_of(tmp_path)
    assert len(rows) == trials, statuses(rows)  # attempts are not trials
    assert {row["status"] for row in rows} == {"completed"}, statuses(rows)
    trained, evaluated = started(tmp_path, "train"), started(tmp_path, "eval")
    assert set(trained.values()) == {1}, f"a (run, attempt) trained twice: {trained}"
    assert set(evaluated.values()) == {1}, f"a (run, attempt) evaluated twice: {evaluated}"
    assert any(attempt != "1" for _, attempt in trained), "no lost training job was retried"
    for row in rows:
        assert (row["run_id"], str(row["attempt"])) in evaluated, row
    for run_id, attempt in finished_before_kill:  # its result.json counts: not trained again
        later = [a for r, a in trained if r == run_id and int(a) > int(attempt)]
        assert later == [], f"run {run_id} had written result.json at attempt {attempt}, retrained: {later}"


# -- 7 ---------------------------------------------------------------------------------------------


@pytest.mark.slow  # tests/test_experiment_spec.py refuses the same spec in the fast subset
def test_case_07_stale_after_below_two_heartbeats_is_refused(tmp_path: Path) -> None:
    spec = write_sweep(
        tmp_path,
        dispatcher={"type": "local"},  # the default heartbeat, 5 s
        stale_after=3,
        scheduler={"type": "async_capped", "max_trials": 1, "max_concurrent_evals": 1},
    )
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=120)
    assert result.returncode == 2, f"exit code {result.returncode}; stderr:\n{result.stderr[-3000:]}"
    assert "stale_after" in one_line(result.stderr)
    assert not (tmp_path / "sweepwise.db").exists(), "the store was written before the spec was refused"
    assert marker_lines(tmp_path, "train") == []


# -- 8 ---------------------------------------------------------------------------------------------


def _pid_free_outside() -> int:
    for pid in range(30000, 20000, -7):
        if not os.path.exists(f"/proc/{pid}") and not os.path.exists(f"/proc/{pid + 1}"):
            return pid
    raise AssertionError("no free pid in 20000..30000")


def _in_new_pid_namespace() -> list[str]:
    """A prefix that runs a command in a new PID namespace, at a pid no process has outside it."""
    pid = _pid_free_outside()
    # ns_last_pid: the command (forked, not exec'ed by sh) gets `pid` inside the namespace
    script = f'echo {pid - 1} > /proc/sys/kernel/ns_last_pid && "$@"; exit $?'
    return ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script, "sh"]


@pytest.mark.slow
@pytest.mark.parametrize("holder", ["inside_namespace", "outside_namespace"])
def test_case_08_a_controller_in_another_pid_namespace_keeps_its_lease(tmp_path: Path, holder: str) -> None:
    spec = write_sweep(
        tmp_path,
        env={"TRAIN_SLEEPS": "4"},
        max_parallel=2,
        scheduler={"type": "async_capped", "max_trials": 2, "max_concurrent_evals": 2},
    )
    inside = _in_new_pid_namespace()
    first = Controller(spec, tmp_path, prefix=inside if holder == "inside_namespace" else ())
    wait_for(
        lambda: len(marker_lines(tmp_path, "train")) == 2 or not first.alive(),
        "the first controller to start its jobs",
    )
    assert first.alive(), first.stderr()[-3000:]

    argv = [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"]
    if holder == "outside_namespace":
        argv = [*inside, *argv]
    second = subprocess.run(
        argv,
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert second.returncode == 3, f"exit code {second.returncode}; stderr:\n{second.stderr[-3000:]}"
    assert "already being run" in second.stderr

    assert first.wait(timeout=120) == 0, first.stderr()[-3000:]
    assert_all_completed_once(tmp_path, 2)


# -- 9 ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs under tmp_path, unmounted in teardown (after every process using it)."""
    with small_tmpfs(tmp_path / "disk") as disk:
        try:
            yield disk
        finally:
            kill_everything_under(tmp_path)


@pytest.mark.slow
def test_case_09_a_full_disk_stops_the_sweep_cleanly_and_a_rerun_finishes(
    tmp_path: Path, small_disk: Path
) -> None:
    trials = 10
    spec = write_sweep(
        tmp_path,
        # jobs 3 and 4 train 3 s: the disk fills while they run and nothing else is being started
        env={"TRAIN_SLEEPS": "0.3,0.3,3,3,0.3", "EVAL_SLEEPS": "0"},
        stale_after=60,
        max_parallel=2,
        runs_dir=str(small_disk / "runs"),
        scheduler={"type": "async_capped", "max_trials": trials, "max_concurrent_evals": 2},
    )
    store = f"sqlite:///{small_disk / 'sweepwise.db'}"
    controller = Controller(spec, tmp_path, "--store", store)
    wait_for(
        lambda: (
            (len(marker_lines(tmp_path, "train")) >= 4 and len(marker_lines(tmp_path, "eval_done")) >= 2)
            or not controller.alive()
        ),
        "4 training jobs started and 2 runs evaluated",
    )
    assert controller.alive(), controller.stderr()[-3000:]
    filler = small_disk / "filler"
    fill_disk(filler)

    code = controller.wait(timeout=120)
    assert code != 0, f"the sweep ended with exit 0 on a full disk:\n{controller.stderr()[-3000:]}"
    line = one_line(controller.stderr())
    assert "database or disk is full" in line or "No space left on device" in line, line
    assert "release_lease" not in line, line

    filler.unlink()
    rerun = cli("run", str(spec), "--quiet", "--store", store, cwd=tmp_path, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    rows = rows_of(tmp_path, "exp", "--store", store)
    assert len(rows) == trials and {row["status"] for row in rows} == {"completed"}, statuses(rows)
    trained, evaluated = started(tmp_path, "train"), started(tmp_path, "eval")
    assert set(trained.values()) == {1}, f"a (run, attempt) trained twice: {trained}"
    assert set(evaluated.values()) == {1}, f"a (run, attempt) evaluated twice: {evaluated}"
    assert {run for run, _ in evaluated} == {row["run_id"] for row in rows}
    assert integrity_ok(small_disk / "sweepwise.db")


# -- 10 --------------------------------------------------------------------------------------------


@pytest.mark.slow  # tests/test_timeouts.py runs a sweep with a hung job in the fast subset
def test_case_10_a_hung_job_times_out(tmp_path: Path) -> None:
    """`train.timeout: 2`: the job that sleeps forever is killed, its run FAILED, the sweep ends."""
    spec = write_sweep(
        tmp_path,
        env={"TRAIN_SLEEPS": "inf,0"},  # the first training job hangs
        train={"timeout": 2},
        max_parallel=3,
        scheduler={"type": "async_capped", "max_trials": 3, "max_concurrent_evals": 3},
    )
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, f"exit code {result.returncode}; stderr:\n{result.stderr[-3000:]}"
    rows = rows_of(tmp_path)
    hung = marker_lines(tmp_path, "train")[0][0]
    by_id = {row["run_id"]: row for row in rows}
    assert by_id[hung]["status"] == "failed", statuses(rows)
    assert "timeout" in (by_id[hung]["error"] or "").lower(), by_id[hung]["error"]
    assert {row["status"] for row in rows if row["run_id"] != hung} == {"completed"}, statuses(rows)
    pid = job_pids(tmp_path)[(hung, "1", "train")]
    wait_for(lambda: not alive(pid), f"the timed-out job (pid {pid}) to be gone", timeout=30)


# -- 11 --------------------------------------------------------------------------------------------


@pytest.mark.slow  # tests/test_eval_params.py checks the same three ways in the fast subset
def test_case_11_eval_jobs_get_the_hyperparameters(tmp_path: Path) -> None:
    spec = write_sweep(
        tmp_path,
        env={"RECORD_PARAMS": "1"},
        scheduler={"type": "async_capped", "max_trials": 2, "max_concurrent_evals": 2},
    )
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = assert_all_completed_once(tmp_path, 2)
    for row in rows:
        run_id = row["run_id"]
        run_dir = tmp_path / "runs" / "exp" / run_id
        given = {
            job: json.loads((tmp_path / "markers" / f"params.{job}.{run_id}.json").read_text())
            for job in ("train", "eval")
        }
        assert float(given["train"]["argv"]["x"]) == row["suggestion"]["x"]
        assert given["eval"]["argv"] == given["train"]["argv"], "eval job: no key=value words"
        assert given["eval"]["env"] == given["train"]["env"] == row["suggestion"], "SWEEPWISE_PARAMS"
        assert given["eval"]["file_path"] == str(run_dir / "params.json"), "JOB_PARAMS_FILE"
        assert given["eval"]["file"] == given["train"]["file"] == row["suggestion"], "params.json"
        assert json.loads((run_dir / "params.json").read_text()) == row["suggestion"], "params.json after"
