"""A sweep whose jobs report a score per step and mark every step they reach, for early stopping.

Shared by the local test (tests/test_early_stopping.py) and the backends' (SLURM, Ray): the
same sweep and the same checks, judged from the jobs' own marker files.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from conftest import status_json

STEPS = 30

TRAIN = textwrap.dedent(
    """
    import os, sys, time
    import sweepwise
    x = float(sys.argv[1].split("=", 1)[1])
    run_id = os.environ["SWEEPWISE_RUN_ID"]
    with open(os.path.join(os.environ["MARKERS"], "train.txt"), "a") as f:
        f.write(run_id + "\\n")
    for step in range(1, STEPS + 1):
        with open(os.path.join(os.environ["MARKERS"], run_id + ".steps"), "a") as f:
            f.write(f"{step}\\n")
        sweepwise.report(step=step, score=x * step / STEPS)
        time.sleep(float(os.environ.get("STEP_SLEEP", "0.05")))
    sweepwise.report_result(score=x)
    """
).replace("STEPS", str(STEPS))


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
