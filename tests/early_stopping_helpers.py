"""A sweep whose jobs report a score per step and mark every step they reach, for early stopping.

Shared by the local test (tests/test_early_stopping.py) and the backends' (SLURM, Ray): the
same sweep and the same checks, judged from the jobs' own marker files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import cli, status_json
from sweepwise.core import keys
from sweepwise.runtime.supervise import process_alive

STEPS = 30

TRAIN = textwrap.dedent(
    """
    import os, sys, time
    import sweepwise
    x = float(sys.argv[1].split("=", 1)[1])
    run_id = os.environ["SWEEPWISE_RUN_ID"]
    with open(os.path.join(os.environ["MARKERS"], "train.txt"), "a") as f:
        f.write(run_id + "\\n")
    hold = os.path.join(os.environ["MARKERS"], run_id + ".hold")
    for step in range(1, STEPS + 1):
        deadline = time.time() + 120
        while os.path.exists(hold) and time.time() < deadline:  # a test holds the job where it is
            time.sleep(0.05)
        with open(os.path.join(os.environ["MARKERS"], run_id + ".steps"), "a") as f:
            f.write(f"{step}\\n")
        sweepwise.report(step=step, score=x * step / STEPS)
        time.sleep(float(os.environ.get("STEP_SLEEP", "0.05")))
    sweepwise.report_result(score=x)
    """
).replace("STEPS", str(STEPS))


# The sweep's job, but it notes each SIGTERM and trains on (as a job saving a checkpoint would), and
# notes how many of the sweep's other jobs were alive when it started.
STUBBORN_PREAMBLE = """
import os, signal
markers = os.environ["MARKERS"]
me = os.environ["SWEEPWISE_RUN_ID"]
def _note_term(signum, frame):
    with open(os.path.join(markers, me + ".terms"), "a") as f:
        f.write("term\\n")
signal.signal(signal.SIGTERM, _note_term)
def _alive(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return False
others = [n for n in os.listdir(markers) if n.endswith(".pid") and n != me + ".pid"]
beside = sum(_alive(int(open(os.path.join(markers, n)).read())) for n in others)
with open(os.path.join(markers, me + ".beside"), "w") as f:
    f.write(str(beside))
with open(os.path.join(markers, me + ".pid.tmp"), "w") as f:
    f.write(str(os.getpid()))
# all at once: a job starting beside this one must never read a pid file not yet written
os.replace(os.path.join(markers, me + ".pid.tmp"), os.path.join(markers, me + ".pid"))
"""


def write_sweep(
    directory: Path,
    stopper: dict[str, Any] | str,
    *,
    trials: int = 9,
    name: str = "es",
    dispatcher: dict[str, Any] | None = None,
    step_sleep: float | None = None,
) -> Path:
    """Write `train.py` and `sweep.yaml` (random search over x, batches of 3) into `directory`."""
    directory.mkdir(exist_ok=True)
    (directory / "train.py").write_text(TRAIN)
    (directory / "markers").mkdir(exist_ok=True)
    env = {"MARKERS": str(directory / "markers")}
    if step_sleep is not None:  # in the job's own env: a remote backend does not pass the controller's on
        env["STEP_SLEEP"] = str(step_sleep)
    spec: dict[str, Any] = {
        "name": name,
        "max_parallel": 3,
        "monitoring_interval": 0.2,
        "scheduler": {"type": "batched_synced", "max_trials": trials, "batch_size": 3},
        "optimizer": {"type": "random", "seed": 5},
        "stopper": stopper,
        "train": {"cmd": ["python", "train.py"], "env": env},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    if dispatcher is not None:
        spec["dispatcher"] = dispatcher
    path = directory / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def job_steps(directory: Path, run_id: str) -> list[int]:
    """Every step the run's job reached, from its own marker file."""
    path = directory / "markers" / f"{run_id}.steps"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def check_asha_sweep(directory: Path, name: str, result: subprocess.CompletedProcess[str]) -> None:
    """What a finished ASHA sweep must show: some runs stopped early, none started twice."""
    assert result.returncode == 0, result.stderr
    runs = status_json(directory, name)["runs"]
    stopped = [row for row in runs if row["status"] == "stopped"]
    assert stopped, [row["status"] for row in runs]
    assert {row["status"] for row in runs} <= {"completed", "stopped"}
    for row in stopped:  # ended by the stop: its job never reached the last step, and it has a score
        assert max(job_steps(directory, row["run_id"])) < STEPS, row
        assert row["score"] is not None and row["cost"] is not None
    for row in runs:
        if row["status"] == "completed":
            assert max(job_steps(directory, row["run_id"])) == STEPS
    started = Counter((directory / "markers" / "train.txt").read_text().split())
    assert sorted(started) == sorted(row["run_id"] for row in runs)
    assert set(started.values()) == {1}, started  # a stopped run is never started again


def check_rung_scores_reach_the_optimizer(
    directory: Path, name: str, *, judged_the_score: bool = True
) -> None:
    """Each run's observation carries its scores at the rungs it passed: its job's own values
    there (x * step / STEPS), or none when the stopper judged another metric."""
    from sweepwise.schedulers.base import collect_observations
    from sweepwise.stores.sql import SQLStore

    store = SQLStore(f"sqlite:///{directory / 'sweepwise.db'}")
    try:
        runs = store.fetch_runs({"group": name})
    finally:
        store.close()
    observations = collect_observations(runs)
    assert len(observations) == len(runs)
    passed = 0
    for obs in observations:
        if not judged_the_score:
            assert obs.rungs is None, obs
            continue
        x = float(obs.suggestion["x"])
        assert obs.rungs, obs  # every run reached the first rung
        assert obs.rungs == {rung: pytest.approx(x * rung / STEPS) for rung in obs.rungs}, obs
        passed += any(rung < (obs.step or STEPS) for rung in obs.rungs)
    assert passed or not judged_the_score  # some run went on past a rung: that is what is learnt


def decided_stops(directory: Path, name: str) -> list[str]:
    """The runs whose stop is decided (in the store), finished or not."""
    from sweepwise.stores.sql import SQLStore

    store = SQLStore(f"sqlite:///{directory / 'sweepwise.db'}")
    try:
        return [run.run_id for run in store.fetch_runs({"group": name}) if keys.STOP in run.summary]
    finally:
        store.close()


def check_a_kill_between_the_decision_and_the_cancel(
    directory: Path,
    *,
    name: str = "es",
    dispatcher: dict[str, Any] | None = None,
    after_the_cancel: bool = False,
) -> None:
    """SIGKILL the controller right after it commits a stop, rerun it: the run is stopped once.

    Judged from the decided run's job: it was still running after the kill, it is stopped by
    the restarted controller before its last step, and no job ever starts twice.
    `after_the_cancel`: the kill comes right after the cancel's SIGTERM instead, to jobs that
    train on after SIGTERM (`STUBBORN_PREAMBLE`): the job's supervisor SIGKILLs it after the
    grace period, or the restarted controller cancels it again, whichever comes first.
    """
    stopper = {"type": "asha", "grace_period": 2, "reduction_factor": 3}
    spec = write_sweep(directory, stopper, trials=3, name=name, dispatcher=dispatcher, step_sleep=0.4)
    if after_the_cancel:
        train = directory / "train.py"
        train.write_text(STUBBORN_PREAMBLE + train.read_text())
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    env["SWEEPWISE_CRASH_AT"] = "after_stop_cancel:1" if after_the_cancel else "after_stop_decision:1"
    first = subprocess.run(  # no pipes: the jobs it leaves running would hold them open
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    assert first.returncode == -signal.SIGKILL
    (decided,) = decided_stops(directory, name)
    hold = directory / "markers" / f"{decided}.hold"
    hold.touch()  # its job waits where it is, however long the restarted controller takes
    assert max(job_steps(directory, decided)) < STEPS  # its job still runs: the crash came before the cancel
    terms = directory / "markers" / f"{decided}.terms"
    if after_the_cancel:  # or before the SIGKILL, to a job that trains on after its SIGTERM
        pid = int((directory / "markers" / f"{decided}.pid").read_text())
        deadline = time.monotonic() + 30
        while not terms.exists() and time.monotonic() < deadline:  # its handler runs in a moment
            time.sleep(0.05)
        assert terms.read_text() == "term\n" and process_alive(pid)
    again = cli("run", str(spec), "--quiet", cwd=directory, timeout=600)
    assert again.returncode == 0, again.stderr
    rows = {row["run_id"]: row for row in status_json(directory, name)["runs"]}
    assert rows[decided]["status"] == "stopped"
    final = max(job_steps(directory, decided))
    assert final < STEPS, final  # cancelled by the restarted controller, not run to its end
    if after_the_cancel:  # killed: by its supervisor once the grace period was over, or cancelled again
        assert terms.read_text() in ("term\n", "term\n" * 2) and not process_alive(pid)
    hold.unlink()
    time.sleep(1.0)  # a job still running would have gone on to another step by now
    assert max(job_steps(directory, decided)) == final
    started = Counter((directory / "markers" / "train.txt").read_text().split())
    assert started[decided] == 1 and set(started.values()) == {1}, started  # never started again
