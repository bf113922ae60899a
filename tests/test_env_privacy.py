"""Env values are recorded by name only, and what sweepwise writes is private to the user.

A sweep's `train.env` holds a secret and a value marked safe (`record_env`). The jobs
see both; the secret is found in no file under the sweep's directory but the jobs' own
marker file, even after the controller was killed and its jobs were started again from
their stored definitions (README, `train`; docs/design.md, crash safety).
"""

from __future__ import annotations

import json
import os
import stat
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import cli, markers, status_json
from sweepwise.app.experiment import Experiment
from sweepwise.stores.sql import SQLStore

pytestmark = pytest.mark.slow

SECRET = "s3cret-value"
VISIBLE = "visible"

# A train job that writes what env it saw to the marker file `env.txt`, fails its first
# attempt when asked to (so a retry starts it again from its stored definition).
TRAIN = textwrap.dedent(
    """
    import json, os, sys
    markers = os.environ["MARKERS"]
    with open(os.path.join(markers, "train.txt"), "a") as f:
        f.write(os.environ["SWEEPWISE_RUN_ID"] + "\\n")
    seen = {name: os.environ.get(name) for name in ("API_KEY", "SAFE")}
    with open(os.path.join(markers, "env.txt"), "a") as f:
        f.write(json.dumps({"attempt": os.environ["SWEEPWISE_ATTEMPT"], **seen}) + "\\n")
    if os.environ.get("FAIL_FIRST") and os.environ["SWEEPWISE_ATTEMPT"] == "1":
        sys.exit(3)
    print("SWEEPWISE_RESULT " + json.dumps({"score": 1.0}))
    """
)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """Run the test's `sweepwise` processes under umask 022 (which lets everyone read new files)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def sweep(tmp_path: Path, make_sweep: Callable[..., Path]) -> Callable[..., Path]:
    """A one-job-type sweep whose train job records the env it saw (see `TRAIN`)."""

    def write(*, api_key: bool = True, **train_env: str) -> Path:
        env = {"MARKERS": str(tmp_path / "markers"), "SAFE": VISIBLE, **train_env}
        if api_key:
            env["API_KEY"] = SECRET
        path = make_sweep(
            scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2},
            train={"cmd": ["python", "train_env.py"], "env": env, "record_env": ["SAFE", "MARKERS"]},
            eval=None,
            retries={"max_attempts": 2, "on": ["lost", "failed"]},
        )
        (tmp_path / "train_env.py").write_text(TRAIN)
        return path

    return write


def seen_env(directory: Path) -> list[dict[str, str | None]]:
    """What every train job start wrote to `markers/env.txt`."""
    path = directory / "markers" / "env.txt"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def files_holding(directory: Path, text: str) -> list[Path]:
    """Every file under `directory` whose bytes contain `text`."""
    needle = text.encode()
    return sorted(path for path in directory.rglob("*") if path.is_file() and needle in path.read_bytes())


def test_a_secret_reaches_the_jobs_but_no_file_and_survives_a_controller_crash(
    tmp_path: Path, sweep: Callable[..., Path], umask_022: None
) -> None:
    spec = sweep()
    crashed = cli("run", str(spec), "--quiet", cwd=tmp_path, env={"SWEEPWISE_CRASH_AT": "after_intent:1"})
    assert crashed.returncode == -9, crashed.stderr  # killed right after the intents were committed
    assert markers(tmp_path, "train") == []  # nothing started: the rerun starts the stored jobs

    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stderr
    assert sorted(markers(tmp_path, "train")) == ["exp_trial_0001", "exp_trial_0002"]
    assert seen_env(tmp_path) == [{"attempt": "1", "API_KEY": SECRET, "SAFE": VISIBLE}] * 2

    marker_file = tmp_path / "markers" / "env.txt"
    assert files_holding(tmp_path, SECRET) == sorted([tmp_path / "sweep.yaml", marker_file])
    stored = [path.name for path in files_holding(tmp_path, VISIBLE)]
    assert "sweepwise.db" in stored or "sweepwise.db-wal" in stored
    assert "adaptive_config.json" in stored
    assert {run["status"] for run in status_json(tmp_path, "exp")["runs"]} == {"completed"}


def test_a_retried_job_gets_the_secret_from_the_spec_it_is_run_with(
    tmp_path: Path, sweep: Callable[..., Path]
) -> None:
    spec = sweep(FAIL_FIRST="1")
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seen = seen_env(tmp_path)
    assert sorted(entry["attempt"] for entry in seen) == ["1", "1", "2", "2"]
    assert all(entry["API_KEY"] == SECRET and entry["SAFE"] == VISIBLE for entry in seen)
    expected = sorted([tmp_path / "sweep.yaml", tmp_path / "markers" / "env.txt"])
    assert files_holding(tmp_path, SECRET) == expected


def test_a_variable_the_spec_no_longer_gives_is_left_out_with_one_warning(
    tmp_path: Path, sweep: Callable[..., Path]
) -> None:
    spec = sweep()
    crashed = cli("run", str(spec), "--quiet", cwd=tmp_path, env={"SWEEPWISE_CRASH_AT": "after_intent:1"})
    assert crashed.returncode == -9, crashed.stderr
    sweep(api_key=False)  # the key was removed from the spec before the sweep was resumed

    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert seen_env(tmp_path) == [{"attempt": "1", "API_KEY": None, "SAFE": VISIBLE}] * 2
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line and "API_KEY" in line]
    assert len(warnings) == 1, result.stderr  # one for the variable, not one per job


def test_the_store_and_the_runs_directory_are_private_to_the_user(
    tmp_path: Path, sweep: Callable[..., Path], umask_022: None
) -> None:
    spec = sweep()
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    def others_may_read(path: Path) -> bool:
        return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)

    store_files = [tmp_path / "sweepwise.db", *tmp_path.glob("sweepwise.db-*")]
    assert store_files and not [path for path in store_files if others_may_read(path)]
    runs = tmp_path / "runs"
    directories = [runs, runs / "exp", *[path for path in (runs / "exp").iterdir() if path.is_dir()]]
    assert len(directories) == 4  # runs/, its experiment and the two run directories
    assert not [path for path in directories if others_may_read(path)]
    assert not others_may_read(runs / "exp" / "adaptive_config.json")
    assert others_may_read(tmp_path / "train_env.py")  # a user's file keeps its mode


def test_resuming_a_sweep_recorded_with_its_env_values_shows_none_of_them(
    tmp_path: Path, sweep: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = sweep()
    monkeypatch.chdir(tmp_path)
    record = Experiment.from_file(spec).record()
    record["spec"]["train"]["env"]["API_KEY"] = SECRET  # as sweepwise recorded it before `record_env`
    record["scheduler_config"]["train"]["env"]["API_KEY"] = SECRET
    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    store.ensure_experiment("exp", record)
    store.close()

    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stderr
    assert seen_env(tmp_path) == [{"attempt": "1", "API_KEY": SECRET, "SAFE": VISIBLE}] * 2
