"""The smaller commands: exec, cancel, status of every experiment, --store, and help."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import cli, markers, status_json

# Every status's machine name, in the order `--json` counts list them.
ZERO_COUNTS = dict.fromkeys(
    ("pending", "in_training", "trained", "in_eval", "completed", "stale", "failed", "cancelled", "stopped"),
    0,
)


def full_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`sweepwise ARGS...` through the typer CLI, past the fast path of `status`/`best --json`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    code = "from sweepwise.app.cli import run_app; run_app()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_exec_wraps_a_command_and_records_its_status(tmp_path: Path) -> None:
    result = cli(
        "exec",
        "--run-dir",
        str(tmp_path),
        "--job",
        "train",
        "--",
        sys.executable,
        "-c",
        "import sys; print('hello'); sys.exit(4)",
        cwd=tmp_path,
    )
    assert result.returncode == 4
    status = json.loads((tmp_path / "train.status.json").read_text())
    assert status["state"] == "exited" and status["exit_code"] == 4
    assert "hello" in (tmp_path / "train.log").read_text()


def test_cancel_an_experiment_stops_its_jobs(tmp_path: Path, make_sweep: Callable[..., Path]) -> None:
    spec = make_sweep("stopme", scheduler={"type": "batched_synced", "max_trials": 4, "batch_size": 2})
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=tmp_path,
        env={**os.environ, "TRAIN_SLEEP": "60"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(markers(tmp_path, "train")) < 2:
            time.sleep(0.05)
        result = cli("cancel", "stopme", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "cancelled experiment 'stopme' (2 unfinished run(s) stopped)" in result.stdout
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    status = status_json(tmp_path, "stopme")
    assert status["status"] == "cancelled"
    assert [row["status"] for row in status["runs"]] == ["cancelled", "cancelled"]
    again = cli("cancel", status["runs"][0]["run_id"], cwd=tmp_path)
    assert "already finished" in again.stdout


@pytest.mark.slow
def test_status_of_all_experiments_and_an_explicit_store(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep("one", scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2})
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert cli("run", str(spec), "--quiet", "--store", url, cwd=tmp_path).returncode == 0
    assert not (tmp_path / "sweepwise.db").exists()
    listing = json.loads(cli("status", "--json", "--store", url, cwd=tmp_path).stdout)
    assert listing["experiments"][0]["experiment"] == "one"
    assert listing["experiments"][0]["counts"] == {**ZERO_COUNTS, "completed": 2}
    default_store = cli("status", "--json", cwd=tmp_path)  # ./sweepwise.db was never created
    assert default_store.returncode == 1 and "no sweepwise store" in default_store.stderr
    from_env = cli("status", "--json", cwd=tmp_path, env={"SWEEPWISE_STORE": url})
    assert json.loads(from_env.stdout) == listing
    assert not (tmp_path / "sweepwise.db").exists()


@contextlib.contextmanager
def _read_only_view(folder: Path, view: Path) -> Any:
    """`folder` mounted read-only at `view` (a snapshot, a read-only share); root is required."""
    if os.geteuid() != 0:
        pytest.fail("this test bind-mounts a folder read-only and needs root (as .ci/run has)")
    view.mkdir()
    subprocess.run(["mount", "--bind", str(folder), str(view)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
        yield view
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_a_store_on_a_read_only_file_system_is_read(tmp_path: Path, make_sweep: Callable[..., Path]) -> None:
    # A finished sweep's store seen through a read-only mount: its WAL index cannot be made
    # there, and every reading command said it was "not a sweepwise store".
    work = tmp_path / "work"
    work.mkdir()
    spec = make_sweep("one", scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2})
    url = f"sqlite:///{work / 'sweepwise.db'}"
    assert cli("run", str(spec), "--quiet", "--store", url, cwd=tmp_path).returncode == 0
    with _read_only_view(work, tmp_path / "view") as view:
        store = ["--store", f"sqlite:///{view / 'sweepwise.db'}"]
        for run in (cli, full_cli):
            listing = run("status", "--json", *store, cwd=tmp_path)
            assert listing.returncode == 0, listing.stderr
            assert json.loads(listing.stdout)["experiments"][0]["counts"] == {**ZERO_COUNTS, "completed": 2}
            best = run("best", "one", "--json", *store, cwd=tmp_path)
            assert best.returncode == 0 and json.loads(best.stdout)["run_id"], best.stderr
            exported = run("export", "one", *store, cwd=tmp_path)
            assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 3, exported.stderr
        logs = full_cli("logs", "one_trial_0001", *store, cwd=tmp_path)
        assert logs.returncode == 0, logs.stderr
        assert sorted(path.name for path in view.iterdir()) == ["sweepwise.db"]  # nothing written
        # a controller with the store open (its -shm beside it, written through the other mount):
        # read as usual, locked, not as an immutable file that could change mid-read
        live = sqlite3.connect(work / "sweepwise.db")
        try:
            live.execute("PRAGMA journal_mode=WAL")
            live.execute("UPDATE experiments SET status = 'running'")
            live.commit()
            listing = cli("status", "--json", *store, cwd=tmp_path)
            assert listing.returncode == 0, listing.stderr
            assert json.loads(listing.stdout)["experiments"][0]["status"] == "running"
        finally:
            live.close()


def test_the_readme_names_every_json_status_in_the_order_status_prints_them() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `sweepwise status"))
    listed = row.split("`status` is a stable machine name (", 1)[1].split(")", 1)[0]
    assert [name.strip(" `") for name in listed.split(",")] == list(ZERO_COUNTS)


@pytest.mark.slow
def test_json_statuses_are_machine_names_in_one_shape_on_both_paths(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep("shape", scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2})
    assert cli("run", str(spec), "--quiet", cwd=tmp_path).returncode == 0
    one = status_json(tmp_path, "shape")
    assert [(row["status"], row["status_label"]) for row in one["runs"]] == [("completed", "COMPLETED")] * 2
    assert one["counts"] == {**ZERO_COUNTS, "completed": 2}
    assert list(one["counts"]) == list(ZERO_COUNTS)
    listing = json.loads(cli("status", "--json", cwd=tmp_path).stdout)
    assert listing["experiments"] == [{"experiment": "shape", "status": "complete", "counts": one["counts"]}]
    assert list(listing["experiments"][0]["counts"]) == list(ZERO_COUNTS)
    # the fast path and the typer CLI print the same bytes
    for args in (("status", "--json"), ("status", "shape", "--json"), ("best", "shape", "--json")):
        fast, full = cli(*args, cwd=tmp_path), full_cli(*args, cwd=tmp_path)
        assert (fast.returncode, full.returncode) == (0, 0), (args, fast.stderr, full.stderr)
        assert fast.stdout == full.stdout, args
    human = cli("status", "shape", cwd=tmp_path)
    assert "2 completed" in human.stdout and "COMPLETED" in human.stdout, human.stdout


def _dump(db: Path) -> list[str]:
    """Every row of the store `db`, as SQL (the write-ahead log included)."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return list(connection.iterdump())


@pytest.mark.slow
def test_cancel_a_finished_experiment_changes_nothing(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep("done", scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2})
    assert cli("run", str(spec), "--quiet", cwd=tmp_path).returncode == 0
    before = status_json(tmp_path, "done")
    stored = _dump(tmp_path / "sweepwise.db")
    for args in (("cancel", "done"), ("cancel", "done", "--experiment")):
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "experiment 'done' has already finished (complete); nothing to cancel\n"
    assert _dump(tmp_path / "sweepwise.db") == stored  # nothing written
    assert status_json(tmp_path, "done") == before
    assert before["status"] == "complete"


@pytest.mark.slow
def test_unknown_experiment_and_run_are_one_line_errors(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep("known", scheduler={"type": "batched_synced", "max_trials": 1, "batch_size": 1})
    assert cli("run", str(spec), "--quiet", cwd=tmp_path).returncode == 0
    for args in (("status", "unknown"), ("best", "unknown"), ("logs", "nope_trial_0001"), ("cancel", "nope")):
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 1, args
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    bad_job = cli("logs", "known_trial_0001", "--job", "test", cwd=tmp_path)
    assert bad_job.returncode == 2 and "--job" in bad_job.stderr


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "status", "best", "logs", "cancel", "dashboard", "report"):
        assert command in result.stdout


def test_human_status_shows_the_newest_runs_and_all_with_a_flag(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    from sweepwise.app.display import print_status

    rows = [
        {"run_id": f"r{i}", "status": "completed", "suggestion": {}, "score": 1.0, "cost": 1.0, "error": None}
        for i in range(40)
    ]
    payload = {
        "experiment": "big",
        "status": "complete",
        "counts": {**ZERO_COUNTS, "completed": 40},
        "runs": rows,
    }
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_status(payload)
    assert (
        "newest 30 of 40 runs" in out.getvalue() and "r39" in out.getvalue() and "r9 " not in out.getvalue()
    )
    assert "40 completed" in out.getvalue() and "COMPLETED" in out.getvalue()


def _stopped_runs_payload() -> dict[str, object]:
    suggestion = {"l2": 5.86151628004e-05, "learning_rate": 0.281570168643, "steps": 1308, "width": 64}
    rows = [
        {
            "run_id": f"early-stopping_trial_{i:04d}",
            "status": "stopped" if i % 2 else "completed",
            "stopped_at": {"step": 1750, "value": 0.4} if i % 2 else None,
            "progress": 0.5,
            "suggestion": suggestion,
            "score": 0.7625,
            "cost": 1.516,
            "error": None,
        }
        for i in range(1, 5)
    ]
    return {
        "experiment": "es",
        "status": "complete",
        "counts": {**ZERO_COUNTS, "completed": 2, "stopped": 2},
        "runs": rows,
    }


def _printed_status(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> list[str]:
    import io

    from sweepwise.app.display import print_status

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_status(_stopped_runs_payload())
    return out.getvalue().splitlines()


def test_piped_status_prints_each_run_whole_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _printed_status(monkeypatch, None)
    for i in range(1, 5):
        (line,) = [line for line in lines if f"early-stopping_trial_{i:04d}" in line]
        status = "STOPPED at step 1750" if i % 2 else "COMPLETED"
        assert status in line and "0.7625" in line and "1.516" in line and "50%" in line, line
        assert "l2=5.862e-05, learning_rate=0.2816, steps=1308, width=64" in line, line


def test_status_on_a_narrow_terminal_keeps_statuses_and_numbers_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = _printed_status(monkeypatch, "80")
    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert text.count("STOPPED at step 1750") == 2 and text.count("COMPLETED") == 2, text
    assert text.count("0.7625") == 4 and text.count("1.516") == 4, text
    for i in range(1, 5):
        assert f"early-stopping_trial_{i:04d}" in text
    for part in ("steps=1308", "width=64"):  # the parameters wrap between parameters
        assert text.count(part) == 4, text


@pytest.mark.slow
def test_json_of_failed_and_train_only_runs_and_of_best_with_nothing_scored(tmp_path: Path) -> None:
    # train-only jobs: the first sleeps then fails, the second completes without a score
    # (its metric is missing), so nothing ever scores
    job = (
        "import json, sys, time\n"
        "x = float(dict(word.split('=', 1) for word in sys.argv[1:])['x'])\n"
        "time.sleep(0.5)\n"
        "sys.exit(3) if x < 0.5 else print('SWEEPWISE_RESULT ' + json.dumps({'other': 1}))\n"
    )
    (tmp_path / "job.py").write_text(job)
    spec = {
        "name": "shapes",
        "metric": "score",
        "scheduler": {"type": "batched_synced", "max_trials": 4, "batch_size": 4},
        "optimizer": {"type": "random", "seed": 1},
        "train": {"cmd": [sys.executable, "job.py"]},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    (tmp_path / "sweep.yaml").write_text(json.dumps(spec))
    cli("run", "sweep.yaml", "--quiet", cwd=tmp_path)
    runs = status_json(tmp_path, "shapes")["runs"]
    assert runs and all(row["status"] == "failed" for row in runs), runs
    for row in runs:
        assert row["runtime"] >= 0.5, row  # the time the failed job ran, not 0.0
        assert row["eval_exit_code"] is None, row  # a train-only run never had an eval
    for run in (cli, full_cli):
        best = run("best", "shapes", "--json", cwd=tmp_path)
        assert best.returncode == 1, best.stderr
        assert "ended (complete) with no completed run with a score (4 failed)" in best.stderr
        row = json.loads(best.stdout)
        assert set(row) == {"experiment", "run_id", "metric", "goal", "score", "cost", "parameters"}
        assert (row["experiment"], row["run_id"], row["metric"], row["score"]) == (
            "shapes",
            None,
            "score",
            None,
        )


def _one_line_exit_2(result: subprocess.CompletedProcess[str], *parts: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(part in lines[0] for part in parts), lines[0]


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (("run", "--bogus"), ("No such option: --bogus", "(see `", " run --help`)")),
        (("statuz",), ("No such command 'statuz'", "Did you mean 'status'?", "sweepwise --help`)")),
        (("run",), ("Missing argument 'TARGET' (see `", " run --help`)")),
        (("report", "e"), ("Missing option '--out'",)),
        (("logs", "r1", "--lines", "many"), ("'--lines'", " logs --help`)")),
        (("--bogus",), ("No such option: --bogus", "sweepwise --help`)")),
    ],
)
def test_a_usage_error_is_one_line_exit_2(
    args: tuple[str, ...], parts: tuple[str, ...], tmp_path: Path
) -> None:
    # click printed these in a box of four or five lines, with the usage line
    _one_line_exit_2(cli(*args, cwd=tmp_path), *parts)


def test_no_command_shows_the_help(tmp_path: Path) -> None:
    result = cli(cwd=tmp_path)
    assert result.returncode == 2 and "[OPTIONS] COMMAND [ARGS]..." in result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (("status", "--store", "http://x"), ("store:", "sqlite:///")),
        (("best", "e", "--store", "http://x"), ("store:",)),
        (("export", "e", "--store", "mysql://a@b/c"), ("store:", "pip install")),
        (("export", "e", "--out", "."), ("--out:", "is a directory")),
        (("report", "e", "--out", "."), ("--out:", "is a directory")),
        (("status", os.fsdecode(b"caf\xe9")), ("is not UTF-8 text",)),
        (("logs", os.fsdecode(b"\xff_trial_0001")), ("is not UTF-8 text",)),
    ],
    ids=[
        "unknown scheme",
        "best",
        "missing driver",
        "export to a dir",
        "report to a dir",
        "latin-1",
        "run id",
    ],
)
def test_bad_reading_commands_are_one_line_exit_2(
    tmp_path: Path, args: tuple[str, ...], parts: tuple[str, ...]
) -> None:
    (tmp_path / "past.csv").write_text("run_id,score,param.x\nr1,0.5,1\n")
    assert cli("import", "e", "--csv", "past.csv", cwd=tmp_path).returncode == 0  # a store to read
    env = {"SWEEPWISE_STORE": args[2]} if args[1:2] == ("--store",) and args[0] == "status" else None
    _one_line_exit_2(cli(*args, cwd=tmp_path), *parts)
    if env is not None:  # the environment's store URL is checked as --store's is
        _one_line_exit_2(cli(args[0], cwd=tmp_path, env=env), *parts)


@pytest.mark.parametrize(
    ("csv_text", "parts"),
    [
        ("run_id,score,param.x\nr1,1," + "a" * 200_000 + "\n", ("line 2", "field limit")),
        ("run_id,score,param.x\nr1,1.0\n", ("line 2 has fewer cells",)),
        ('run_id,score,param.x\nr1,1,"abc\n', ("line 2",)),
        ("run_id,score,param.x,score\nr1,1,2,3\n", ("'score' appears more than once",)),
    ],
    ids=["a 200 kB cell", "a short row", "an unclosed quote", "a repeated column"],
)
def test_a_malformed_csv_is_refused_in_one_line_and_imports_nothing(
    tmp_path: Path, csv_text: str, parts: tuple[str, ...]
) -> None:
    (tmp_path / "bad.csv").write_text(csv_text)
    _one_line_exit_2(cli("import", "bad", "--csv", "bad.csv", cwd=tmp_path), "--csv:", *parts)
    assert not (tmp_path / "sweepwise.db").exists()


def test_an_export_keeps_a_result_no_utf8_can_hold_and_reads_it_back() -> None:
    from sweepwise.app.transfer.cells import decode_cell, encode_cell

    for value in ("\ud800", "a\x1b[2Jb", "tab\tnewline\n"):
        cell = encode_cell(value)
        cell.encode("utf-8")  # writable as UTF-8
        assert cell.isprintable() and decode_cell(cell) == value


def test_control_characters_a_job_printed_are_shown_not_played(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's last output or a reported value may hold escapes that clear or retitle a terminal."""
    import io

    from sweepwise.app.display import print_best, print_status

    rows = [
        {
            "run_id": "r1",
            "status": "failed",
            "suggestion": {"tag": "\x1b]0;PWN\x07v"},
            "score": None,
            "cost": None,
            "error": "exit code 3; last output: \x1b[2Jgone",
        }
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_status({"experiment": "e", "status": "complete", "counts": {"failed": 1}, "runs": rows})
        best = {"run_id": "r1", "metric": "m", "score": 1.0, "goal": "maximize", "cost": 2.0}
        print_best({**best, "parameters": {"tag": "\x1b]0;PWN\x07v"}})
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "last output: \\x1b[2Jgone" in text and "tag = \\x1b]0;PWN\\x07v" in text
