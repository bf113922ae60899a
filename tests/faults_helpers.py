"""Helpers for the fault-injection tests: marker jobs, controllers as real processes, /proc scans.

The jobs judge the sweep by their own side effects: every train or eval job appends one
`run_id attempt` line to `markers/train.txt` / `markers/eval.txt` (O_APPEND) when it
starts, so a job started twice, or never, shows in the markers whatever the store says.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from conftest import cli

# One script for train and eval jobs (SWEEPWISE_JOB_TYPE tells which). Behaviour, from the env:
#   MARKERS          the markers directory (outside the runs dir, so a full disk cannot touch it)
#   <JOB>_SLEEPS     comma list of seconds: the k-th job of that type to start sleeps the k-th value
#                    (the last one for later jobs); "inf" sleeps until killed
#   RESULT_MODE      train only: "print" (a SWEEPWISE_RESULT line, the default) or "file"
#                    (result.json in the run dir, then a `train_result.txt` marker, then TRAIN_TAIL s)
#   RECORD_PARAMS    when set: what the job was given (argv words, SWEEPWISE_PARAMS, JOB_PARAMS_FILE)
#                    goes to markers/params.<job>.<run_id>.json
# SIGTERM is recorded in markers/sigterm.txt (`run_id attempt job`) before the job exits 143.
JOB = textwrap.dedent(
    """
    import json, os, signal, sys, time

    job = os.environ.get("SWEEPWISE_JOB_TYPE", "train")
    run = os.environ["SWEEPWISE_RUN_ID"]
    me = run + " " + os.environ.get("SWEEPWISE_ATTEMPT", "1")
    markers = os.environ["MARKERS"]


    def append(name, line):
        fd = os.open(os.path.join(markers, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (line + "\\n").encode())
        finally:
            os.close(fd)


    def on_term(signum, frame):
        append("sigterm.txt", me + " " + job)
        os._exit(143)


    signal.signal(signal.SIGTERM, on_term)
    print(job, me, "started", flush=True)  # the log gets its first page before anything can fill the disk
    append(job + ".txt", me)
    append("pids.txt", me + " " + job + " " + str(os.getpid()))
    params = dict(word.split("=", 1) for word in sys.argv[1:] if "=" in word)
    if os.environ.get("RECORD_PARAMS"):
        path = os.environ.get("JOB_PARAMS_FILE")
        given = {
            "argv": params,
            "env": json.loads(os.environ.get("SWEEPWISE_PARAMS") or "null"),
            "file_path": path,
            "file": json.load(open(path)) if path and os.path.exists(path) else None,
        }
        with open(os.path.join(markers, "params." + job + "." + run + ".json"), "w") as f:
            json.dump(given, f)

    with open(os.path.join(markers, job + ".txt")) as f:
        position = [line.strip() for line in f].index(me)
    sleeps = os.environ.get(job.upper() + "_SLEEPS", "0").split(",")
    pause = float(sleeps[min(position, len(sleeps) - 1)])
    if pause == float("inf"):
        while True:
            time.sleep(3600)
    time.sleep(pause)

    models = os.path.join(markers, "models")
    if job == "train":
        x = float(params.get("x", "0"))
        tmp = os.path.join(models, run + "." + str(os.getpid()))
        with open(tmp, "w") as f:
            json.dump({"x": x}, f)
        os.replace(tmp, os.path.join(models, run + ".json"))
        result = {"train_loss": 1 - x}
        if os.environ.get("RESULT_MODE") == "file":
            run_dir = os.environ["SWEEPWISE_RUN_DIR"]
            tmp = os.path.join(run_dir, "result.json.tmp")
            with open(tmp, "w") as f:
                json.dump(result, f)
            os.replace(tmp, os.path.join(run_dir, "result.json"))
            append("train_result.txt", me)
            time.sleep(float(os.environ.get("TRAIN_TAIL", "0")))
        else:
            print("SWEEPWISE_RESULT " + json.dumps(result), flush=True)
    else:
        with open(os.path.join(models, run + ".json")) as f:
            x = json.load(f)["x"]
        print("SWEEPWISE_RESULT " + json.dumps({"score": x * 10}), flush=True)
    append(job + "_done.txt", me)
    """
)


def write_sweep(
    directory: Path,
    name: str = "exp",
    *,
    env: dict[str, str] | None = None,
    train: dict[str, Any] | None = None,
    eval: dict[str, Any] | None = None,
    **overrides: Any,
) -> Path:
    """Write job.py and a spec running it as train and eval job into `directory`; return the spec.

    `env` is added to both jobs' environments; `train` / `eval` add fields to the job specs
    (`eval=None` keeps the eval job, pass `eval={"omit": True}` to leave it out).
    """
    (directory / "job.py").write_text(JOB)
    (directory / "markers" / "models").mkdir(parents=True, exist_ok=True)
    job_env = {"MARKERS": str(directory / "markers"), **(env or {})}
    spec: dict[str, Any] = {
        "name": name,
        "max_parallel": 4,
        "monitoring_interval": 1,
        "dispatcher": {"type": "local", "heartbeat_interval": 1},
        "stale_after": 10,
        "scheduler": {"type": "async_capped", "max_trials": 4, "max_concurrent_evals": 4},
        "optimizer": {"type": "random", "seed": 1},
        "train": {"cmd": ["python", "job.py"], "env": dict(job_env), **(train or {})},
        "eval": {"cmd": ["python", "job.py"], "env": dict(job_env), **(eval or {})},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    if (eval or {}).get("omit"):
        del spec["eval"]
    spec.update(overrides)
    path = directory / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without SWEEPWISE_* variables, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    env.update(extra or {})
    return env


# -- waiting -----------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60, step: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


# -- markers -----------------------------------------------------------------------------------


def marker_lines(directory: Path, name: str) -> list[tuple[str, ...]]:
    """The lines of markers/<name>.txt, split into words."""
    path = directory / "markers" / f"{name}.txt"
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines() if line.strip()]


def started(directory: Path, job: str) -> Counter[tuple[str, str]]:
    """How many `job` jobs started per (run_id, attempt)."""
    return Counter((words[0], words[1]) for words in marker_lines(directory, job))


def runs_started(directory: Path, job: str) -> Counter[str]:
    """How many `job` jobs started per run, whatever the attempt."""
    return Counter(words[0] for words in marker_lines(directory, job))


def job_pids(directory: Path) -> dict[tuple[str, str, str], int]:
    """(run_id, attempt, job) -> the pid the job recorded."""
    return {(w[0], w[1], w[2]): int(w[3]) for w in marker_lines(directory, "pids")}


# -- processes ---------------------------------------------------------------------------------


class Controller:
    """`sweepwise run SPEC --quiet` as a real process in a session of its own."""

    count = 0

    def __init__(
        self,
        spec: Path,
        cwd: Path,
        *args: str,
        env: dict[str, str] | None = None,
        quiet: bool = True,
        prefix: Iterable[str] = (),
    ) -> None:
        Controller.count += 1
        self.cwd = cwd
        logs = cwd / "controller-logs"
        logs.mkdir(exist_ok=True)
        self.out_path = logs / f"{Controller.count}.out"
        self.err_path = logs / f"{Controller.count}.err"
        argv = [*prefix, sys.executable, "-m", "sweepwise", "run", str(spec), *args]
        if quiet:
            argv.append("--quiet")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=clean_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the controller (only it: its job host and jobs live in sessions of their own)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def wait(self, timeout: float = 120) -> int:
        """Wait for the controller to end by itself; fail with its stderr after `timeout` s."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the controller did not end within {timeout:.0f} s; its stderr:\n{self.stderr()[-3000:]}"
            ) from None

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def processes_under(directory: Path) -> list[int]:
    """Live (non-zombie) processes whose cwd or command line is under `directory`, not this one."""
    root = str(directory.resolve())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            cmdline = ""
        if (cwd == root or cwd.startswith(root + "/")) or root in cmdline:
            if _proc_state(pid) not in (None, "Z", "X"):
                found.append(pid)
    return found


def describe(pids: Iterable[int]) -> str:
    lines = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmd = "?"
        lines.append(f"{pid}: {cmd}")
    return "\n".join(lines)


def kill_everything_under(directory: Path, timeout: float = 20) -> None:
    """SIGKILL every process group and process under `directory` until none is left."""
    deadline = time.monotonic() + timeout
    while (pids := processes_under(directory)) and time.monotonic() < deadline:
        for pid in pids:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        time.sleep(0.05)


def reboot(directory: Path) -> int:
    """SIGKILL controller, job host and jobs together, as a power cut would; return how many."""
    pids = processes_under(directory)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP)  # freeze all first: none sees another die
        except ProcessLookupError:
            pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    kill_everything_under(directory)
    return len(pids)


def host_pids(runs_dir: Path) -> set[int]:
    """Pids of the job hosts the jobs' status files name."""
    pids = set()
    for path in runs_dir.glob("*/*/*.status.json"):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if status.get("host") and isinstance(status.get("supervisor_pid"), int):
            pids.add(status["supervisor_pid"])
    return pids


def alive(pid: int) -> bool:
    return _proc_state(pid) not in (None, "Z", "X")


def sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- the store ---------------------------------------------------------------------------------


def integrity_ok(db: Path) -> bool:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def leases(db: Path, experiment: str) -> int:
    with sqlite3.connect(db) as conn:
        query = "SELECT COUNT(*) FROM leases WHERE experiment = ?"
        return int(conn.execute(query, (experiment,)).fetchone()[0])


def summaries(db: Path, experiment: str) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT run_id, summary FROM runs WHERE experiment = ?", (experiment,))
        return {run_id: json.loads(summary) for run_id, summary in rows}


# -- status ------------------------------------------------------------------------------------


def rows_of(cwd: Path, experiment: str = "exp", *store: str) -> list[dict[str, Any]]:
    """`sweepwise status EXPERIMENT --json`'s runs."""
    result = cli("status", experiment, "--json", *store, cwd=cwd)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)["runs"]
    return rows


def statuses(rows: list[dict[str, Any]]) -> dict[str, str]:
    """run_id -> "STATUS (error)", for assertion messages."""
    return {row["run_id"]: f"{row['status']} ({row['error']})" for row in rows}
