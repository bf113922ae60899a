"""Acceptance: a dispatcher from outside sweepwise runs the jobs (per stage), and `cancel` / `logs` use it.

The dispatchers (tests/plugin_helpers.py) wrap the local one and note every dispatch and
cancel, with the pid of the process that asked, in `<marks>/<name>.txt`: those files
prove which dispatcher ran (or stopped) each job. They come in through a spec's
`imports:`, or through the entry points of a distribution on `PYTHONPATH`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, cli, markers, status_json
from plugin_helpers import MARKED_DISPATCHERS, write_distribution

DEADLINE = 120.0


def _noted(marks: Path, name: str) -> list[str]:
    path = marks / f"{name}.txt"
    return path.read_text().splitlines() if path.exists() else []


def _plugged(tmp_path: Path) -> Path:
    """The dispatchers' module in the spec's directory; returns where they note their calls."""
    (tmp_path / "plug_dispatchers.py").write_text(MARKED_DISPATCHERS)
    marks = tmp_path / "plug-marks"
    marks.mkdir()
    return marks


def _runs(tmp_path: Path, experiment: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = status_json(tmp_path, experiment)["runs"]
    return runs


def test_a_dispatcher_registered_by_an_imported_module_runs_every_job(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    marks = _plugged(tmp_path)
    spec = make_sweep(
        name="plugged",
        imports=["plug_dispatchers"],
        dispatcher={"type": "marked_a", "marks": str(marks), "heartbeat_interval": 1},
        scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2},
    )
    result = cli("run", str(spec), "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = _runs(tmp_path, "plugged")
    assert [row["status"] for row in runs] == ["completed", "completed"]
    ids = [row["run_id"] for row in runs]
    expected = [f"dispatch {run_id} {job}" for run_id in ids for job in ("train", "eval")]
    assert sorted(_noted(marks, "marked_a")) == sorted(expected)
    assert sorted(markers(tmp_path, "train")) == sorted(markers(tmp_path, "eval")) == sorted(ids)
    logs = cli("logs", ids[0], cwd=tmp_path)  # read by the plug-in: it is a LogReader
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines()[0] == "[read by marked_a]"
    elsewhere = tmp_path / "elsewhere"  # where `imports:` do not import: the run directory's file
    elsewhere.mkdir()
    away = cli("logs", ids[0], "--store", f"sqlite:///{tmp_path / 'sweepwise.db'}", cwd=elsewhere)
    assert away.returncode == 0, away.stderr
    assert away.stdout.splitlines() == logs.stdout.splitlines()[1:]


@pytest.mark.slow  # routing by stage: tests/test_staged_dispatcher.py, in the fast subset
def test_the_eval_stage_runs_on_its_own_dispatcher(tmp_path: Path, make_sweep: Callable[..., Path]) -> None:
    marks = _plugged(tmp_path)
    spec = make_sweep(
        name="staged",
        imports=["plug_dispatchers"],
        dispatcher={"type": "marked_a", "marks": str(marks)},
        eval_dispatcher={"type": "marked_b", "marks": str(marks)},
        scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2},
    )
    result = cli("run", str(spec), "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ids = sorted(row["run_id"] for row in _runs(tmp_path, "staged"))
    assert sorted(_noted(marks, "marked_a")) == [f"dispatch {run_id} train" for run_id in ids]
    assert sorted(_noted(marks, "marked_b")) == [f"dispatch {run_id} eval" for run_id in ids]
    for job, reader in (("train", "marked_a"), ("eval", "marked_b")):
        logs = cli("logs", ids[0], "--job", job, cwd=tmp_path)
        assert logs.returncode == 0, logs.stderr
        assert logs.stdout.splitlines()[0] == f"[read by {reader}]"


def _wait_until(condition: Callable[[], object], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow  # `sweepwise cancel`: tests/test_cli_commands.py, in the fast subset
def test_cancel_stops_each_job_through_the_dispatcher_of_its_stage(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    marks = _plugged(tmp_path)
    slow_eval = "import os, time\nopen(os.path.join(os.environ['MARKERS'], 'eval.txt'), 'a').write('x\\n')\n"
    (tmp_path / "slow_eval.py").write_text(slow_eval + "time.sleep(300)\n")
    spec = make_sweep(
        name="stopped",
        imports=["plug_dispatchers"],
        dispatcher={"type": "marked_a", "marks": str(marks)},
        eval_dispatcher={"type": "marked_b", "marks": str(marks)},
        scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2},
        eval={"cmd": ["python", "slow_eval.py"], "env": {"MARKERS": str(tmp_path / "markers")}},
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    controller = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "-q"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until(lambda: len(markers(tmp_path, "eval")) == 2, "both eval jobs to start")
        _wait_until(
            lambda: [row["status"] for row in _runs(tmp_path, "stopped")] == ["in_eval", "in_eval"],
            "both runs to be in eval",
        )
        result = cli("cancel", "stopped", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "cancelled experiment 'stopped' (2 unfinished run(s) stopped)" in result.stdout
        _, stderr = controller.communicate(timeout=DEADLINE)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
    cancels = [line for line in _noted(marks, "marked_b") if line.startswith("cancel ")]
    by_cli = [line for line in cancels if not line.endswith(f" by {controller.pid}")]
    assert len(by_cli) == 2, (cancels, stderr)  # `sweepwise cancel` asked marked_b, the eval stage's
    assert not [line for line in _noted(marks, "marked_a") if line.startswith("cancel ")]
    assert [row["status"] for row in _runs(tmp_path, "stopped")] == ["cancelled", "cancelled"]


@pytest.mark.slow  # entry points: tests/test_registry.py, in the fast subset
def test_a_recipe_takes_installed_dispatchers_per_stage_from_the_command_line(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    site = write_distribution(
        tmp_path / "site",
        "sweepwise-marked",
        {
            "sweepwise.dispatchers": {
                "marked_a": "plug_dispatchers:MarkedA",
                "marked_b": "plug_dispatchers:MarkedB",
            }
        },
        {"plug_dispatchers": MARKED_DISPATCHERS},
    )
    marks = tmp_path / "plug-marks"
    marks.mkdir()
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "PLUG_MARKS": str(marks),
    }
    result = cli(
        "run",
        "examples.recipes.sweeps.train_and_eval",
        "max_trials=1",
        "dispatcher_type=marked_a",
        "eval_dispatcher_type=marked_b",
        "train_overrides.trainer.steps=30",
        "-q",
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    (run_id,) = [row["run_id"] for row in status_json(tmp_path, "recipes_train_and_eval")["runs"]]
    assert _noted(marks, "marked_a") == [f"dispatch {run_id} train"]
    assert _noted(marks, "marked_b") == [f"dispatch {run_id} eval"]
