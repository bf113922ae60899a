"""The real-problem benchmark: its tables load, their specs are valid sweepwise spaces, look-ups
are finite, and `benchmarks/optimizers.py --suite real` / `--suite curves` run end to end.

Only that the suites run and what they print are checked, not their figures.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from sweepwise.space import SearchSpace

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import optimizers  # noqa: E402
from real import curves  # noqa: E402
from real.problems import RealProblem, load_problems  # noqa: E402


def _corner(problem: RealProblem, pick: int) -> dict[str, object]:
    """A grid point: each parameter's first (pick=0) or last (pick=-1) value."""
    return {name: p["values"][pick] for name, p in problem.params.items()}


def test_tables_load_and_stay_small() -> None:
    problems = load_problems()
    assert len(problems) >= 8
    assert {p.model for p in problems.values()} == {"hgb", "mlp", "svm"}
    size = sum(f.stat().st_size for f in (BENCHMARKS / "real" / "tables").glob("*.json.gz"))
    assert size < 3_000_000
    for problem in problems.values():
        points, seeds, steps = problem.loss.shape
        assert points == len(problem.rows) and seeds == problem.seeds >= 2 and steps == len(problem.steps)
        assert problem.cost.shape == problem.loss.shape
        assert (problem.cost >= 0).all() and (problem.loss >= 0).all()


def test_specs_are_valid_sweepwise_spaces() -> None:
    for problem in load_problems().values():
        space = SearchSpace.from_dict(problem.parameters())
        assert set(space.names) == set(problem.params)
        SearchSpace.from_dict(problem.parameters(with_step=False))


def test_lookups_are_finite_and_snap_to_the_grid() -> None:
    for problem in load_problems().values():
        for seed in range(3):
            for pick in (0, -1):
                params = _corner(problem, pick)
                loss, cost = problem.evaluate(params, seed)
                assert math.isfinite(loss) and math.isfinite(cost) and cost >= 0
                assert problem.regret(loss, seed) >= 0
                nudged = {k: v * 1.01 if problem.params[k]["kind"] == "log" else v for k, v in params.items()}
                assert problem.evaluate(nudged, seed) == (loss, cost)
                losses, costs = problem.curve(params, seed)
                assert len(losses) == len(problem.steps) and list(costs) == sorted(costs)
                assert problem.evaluate(params, seed, step=problem.steps[0])[1] == costs[0]


def test_conditional_parameter_is_ignored_where_its_condition_fails() -> None:
    problem = load_problems()["svc-digits"]
    base = {"C": 1.0, "gamma": 0.01, "kernel": "rbf"}
    assert problem.evaluate(base | {"degree": 2}, 0) == problem.evaluate(base | {"degree": 4}, 0)
    poly = base | {"kernel": "poly"}
    assert problem.row(poly | {"degree": 2}) != problem.row(poly | {"degree": 4})


def test_real_suite_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--suite", "real", "--problems", "svc-breast-cancer", "--seeds", "1", "--workers", "1"]
    argv += ["--optimizers", "protein,random,optuna-tpe", "--budget-scale", "0.2"]
    assert optimizers.main(argv) == 0
    out = capsys.readouterr().out
    assert "| svc-breast-cancer | seq |" in out and "| svc-breast-cancer | batch |" in out
    assert "## Median cost" in out


def test_real_suite_counts_the_runs_reaching_the_target_on_each_table_seed() -> None:
    # ten table seeds: run seeds 0 and 10 face split 0, seed 1 split 1, ... seed 9 split 9
    finals = {"random": [0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.0]}
    results = {
        (name, "svc-breast-cancer", "seq", seed): {"regret": [1.0, final], "cost": [1.0, 2.0]}
        for name, runs in finals.items()
        for seed, final in enumerate(runs)
    }
    targets = {("svc-breast-cancer", "seq"): 0.0}
    lines = optimizers.by_table_seed(results, targets, list(finals))
    splits = "1/2 · 1/1 · 0/1 · 1/1 · 0/1 · 1/1 · 0/1 · 1/1 · 0/1 · 1/1"
    assert lines[-1] == f"| svc-breast-cancer | seq | {splits} |"
    # ten seeds face ten splits once each: nothing to add to the seeds themselves
    first_ten = {k: v for k, v in results.items() if k[3] < 10}
    assert optimizers.by_table_seed(first_ten, targets, list(finals)) == []


def _runs(protein: list[tuple[list[float], list[float]]], peer: tuple[list[float], list[float]]) -> dict:
    """Results on 8 problems: Protein's (regret, cost) trace per seed, every peer's the same on each."""
    out = {}
    for problem in range(8):
        for seed, (regret, cost) in enumerate(protein):
            out[("protein", f"p{problem}", "seq", seed)] = {"regret": regret, "cost": cost}
            for name in ("optuna-tpe", "optuna-gp"):
                out[(name, f"p{problem}", "seq", seed)] = {"regret": peer[0], "cost": peer[1]}
    return out


def test_the_verdicts_odds_over_resampled_seeds_tell_a_clear_win_from_a_coin_toss() -> None:
    names = ["protein", "optuna-tpe", "optuna-gp"]
    cells = [(f"p{problem}", "seq") for problem in range(8)]
    peer = ([1.0, 0.1], [1.0, 10.0])  # ends at 0.1, reached at cost 10
    ahead = _runs([([0.05, 0.0], [1.0, 2.0])] * 10, peer)  # better, and there at cost 1
    assert optimizers.verdict_odds(ahead, cells, names, rounds=50) == (1.0, 1.0)
    level = _runs([peer] * 10, peer)  # a tie: regret at or below holds, cost 3/4 of theirs does not
    assert optimizers.verdict_odds(level, cells, names, rounds=50) == (1.0, 0.0)
    # half its seeds end at 0, half at 0.2: which half a draw holds decides the verdict
    coin = _runs([([0.5, 0.0], [1.0, 2.0]), ([0.5, 0.2], [1.0, 2.0])] * 5, peer)
    regret, cost = optimizers.verdict_odds(coin, cells, names, rounds=200)
    assert 0.0 < regret < 1.0 and 0.0 < cost < 1.0
    assert optimizers.verdict_odds(ahead, cells, ["protein", "optuna-tpe"]) is None  # GP not run


def test_curves_suite_runs_sweepwise_with_and_without_its_stopper(capsys: pytest.CaptureFixture[str]) -> None:
    problems = curves.curve_problems()
    assert problems and all(len(p.steps) > 1 for p in problems.values())
    argv = ["--suite", "curves", "--problems", "hgb-diabetes", "--seeds", "1", "--workers", "1"]
    methods = "random,random+sha,sweepwise-random,sweepwise-random+asha,raytune-random+asha"
    argv += ["--optimizers", methods, "--budget-scale", "0.4"]
    assert optimizers.main(argv) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("| hgb-diabetes |")]
    cells = [cell.strip() for cell in row.split("|")[3:-1]]
    assert len(cells) == 5 and "—" not in cells, row
    started = [int(cell.split("; ")[1].split("/")[0]) for cell in cells]
    completed = [int(cell.split("; ")[1].split("/")[1]) for cell in cells]
    assert started[3] > started[2]  # with the stopper, the same budget starts more trials
    assert started[4] > completed[4]  # Ray Tune's ASHA stopped some


@pytest.mark.slow
def test_real_suite_with_every_optimizer(capfd: pytest.CaptureFixture[str]) -> None:
    argv = ["--suite", "real", "--problems", "mlp-diabetes", "--seeds", "1", "--workers", "1"]
    assert optimizers.main([*argv, "--budget-scale", "0.2"]) == 0
    out, err = capfd.readouterr()
    assert "runs," in err and "Generated new trial" not in err  # Ax's INFO lines would bury progress
    assert "| protein | random | optuna-tpe | optuna-gp | ax |" in out
    assert "## Protein against the issue's targets" in out
    assert "## Protein against each optimizer, seed by seed" in out
    # one seed faces one split: the split-by-split counts would only repeat the seed's own
    assert "by table seed" not in out


def test_a_benchmark_saves_each_run_and_resumes_from_its_out_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs.json"
    argv = ["--suite", "real", "--problems", "svc-breast-cancer", "--seeds", "2", "--workers", "1"]
    argv += ["--optimizers", "random", "--budget-scale", "0.2", "--modes", "seq", "--out", str(out)]
    assert optimizers.main(argv) == 0
    first = optimizers.load_results(out)
    assert len(first) == 2
    # as if killed after its first run: the second invocation runs only what is missing
    optimizers.save_results(out, {key: first[key] for key in sorted(first)[:1]})
    assert optimizers.main(argv) == 0
    assert "1 runs read back from" in capsys.readouterr().err
    again = optimizers.load_results(out)
    assert again.keys() == first.keys()
    for key, run in again.items():  # the same traces (the seconds per suggestion are timed anew)
        assert (run["regret"], run["cost"]) == (first[key]["regret"], first[key]["cost"])


def test_a_benchmark_of_another_selection_keeps_the_out_files_other_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs.json"
    argv = ["--suite", "real", "--problems", "svc-breast-cancer", "--workers", "1", "--modes", "seq"]
    argv += ["--optimizers", "random", "--budget-scale", "0.2", "--out", str(out)]
    assert optimizers.main([*argv, "--seeds", "2"]) == 0
    first = optimizers.load_results(out)
    # more seeds of one optimizer, then another optimizer alone, on the same file
    assert optimizers.main([*argv, "--seeds", "3"]) == 0
    other = [a if a != "random" else "optuna-tpe" for a in argv]
    assert optimizers.main([*other, "--seeds", "1"]) == 0
    tables = capsys.readouterr().out.split("## Final regret")[-1]
    assert "| optuna-tpe |" in tables and "random" not in tables  # the tables: this selection's runs
    kept = optimizers.load_results(out)
    assert sorted(kept) == sorted(
        [("random", "svc-breast-cancer", "seq", s) for s in range(3)]
        + [("optuna-tpe", "svc-breast-cancer", "seq", 0)]
    )
    for key, run in first.items():  # the first runs are kept as they were, not run again
        assert (kept[key]["regret"], kept[key]["cost"]) == (run["regret"], run["cost"])


@pytest.mark.slow
def test_build_rebuilds_a_shipped_table_with_the_same_losses(tmp_path: Path) -> None:
    import gzip
    import json

    from real import build

    assert build.main(["--problems", "svc-breast-cancer", "--out", str(tmp_path)]) == 0
    with gzip.open(tmp_path / "svc-breast-cancer.json.gz", "rt") as fh:
        rebuilt = json.load(fh)
    with gzip.open(BENCHMARKS / "real" / "tables" / "svc-breast-cancer.json.gz", "rt") as fh:
        shipped = json.load(fh)
    assert rebuilt["seeds"] == shipped["seeds"] == 10  # ten splits: ten seeds face ten functions
    assert rebuilt["points"] == shipped["points"]
    assert rebuilt["loss"] == shipped["loss"]  # the fit seconds are measured again, the losses not


def _pool_workers(group: int) -> list[int]:
    """The running multiprocessing workers (spawned children) of process group `group`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # ended while we looked
            continue
        if int(fields[2]) == group and fields[0] != "Z" and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_benchmark_stopped_by_sigterm_ends_its_workers_and_keeps_a_whole_out_file(tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import time

    out = tmp_path / "runs.json"
    argv = ["--suite", "real", "--problems", "mlp-diabetes", "--seeds", "40", "--workers", "2"]
    argv += ["--optimizers", "protein", "--modes", "seq", "--no-timing", "--out", str(out)]
    bench = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / "optimizers.py"), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the benchmark and its pool's workers in a group of their own
    )
    deadline = time.monotonic() + 600  # a guard against a hang, not a timed assertion
    while not (out.exists() and json.loads(out.read_text()).keys() - {"timing"}):
        assert bench.poll() is None and time.monotonic() < deadline, bench.stderr and bench.stderr.read()
        time.sleep(0.2)
    bench.send_signal(signal.SIGTERM)  # as `kill`, or a session's end, stops it
    assert bench.wait(timeout=120) == 128 + signal.SIGTERM  # a shell's code for "ended by SIGTERM"
    # its workers went with it (before it exited): none is left running on the machine's cores
    assert _pool_workers(bench.pid) == []
    saved = optimizers.load_results(out)  # a whole file (it resumes from it), of the runs done before
    assert 1 <= len(saved) < 40


@pytest.mark.slow
def test_a_second_benchmark_on_the_same_out_file_is_refused_and_the_first_keeps_its_runs(
    tmp_path: Path,
) -> None:
    import json
    import signal
    import subprocess
    import time

    out = tmp_path / "runs.json"
    script = [sys.executable, str(BENCHMARKS / "optimizers.py")]
    argv = ["--suite", "real", "--problems", "mlp-diabetes", "--optimizers", "protein", "--modes", "seq"]
    argv += ["--workers", "1", "--no-timing", "--out", str(out)]
    first = subprocess.Popen(  # far more runs than it gets to do before it is stopped
        [*script, *argv, "--seeds", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 600  # a guard against a hang, not a timed assertion
    while not (out.exists() and json.loads(out.read_text()).keys() - {"timing"}):
        assert first.poll() is None and time.monotonic() < deadline, first.stderr and first.stderr.read()
        time.sleep(0.2)
    seen = len(optimizers.load_results(out))
    second = subprocess.run([*script, *argv, "--seeds", "1000"], capture_output=True, text=True, timeout=600)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--out {out}: another benchmark (pid {first.pid})" in lines[0]
    assert first.poll() is None  # the first goes on, its runs still in the file and growing
    while len(optimizers.load_results(out)) <= seen:
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=120) == 128 + signal.SIGTERM  # as with a pool of workers
    assert sorted(p.name for p in tmp_path.iterdir()) == [".runs.json.lock", "runs.json"]  # no temp file
    kept = optimizers.load_results(out)
    assert {seed for _, _, _, seed in kept} == set(range(len(kept)))  # one worker: seeds in order
    # the lock went with the first: a third copy resumes from the first's runs and runs the rest
    third = subprocess.run([*script, *argv, "--seeds", str(len(kept) + 1)], capture_output=True, text=True)
    assert third.returncode == 0, third.stderr
    assert f"{len(kept)} runs read back" in third.stderr
    assert len(optimizers.load_results(out)) == len(kept) + 1


@pytest.mark.slow
def test_a_full_disk_ends_the_benchmark_with_one_line_and_its_out_file_keeps_the_runs_before(
    tmp_path: Path,
) -> None:
    import json
    import subprocess

    from tmpfs import fill_disk, small_tmpfs

    with small_tmpfs(tmp_path / "disk") as disk:
        out = disk / "runs.json"
        script = [sys.executable, str(BENCHMARKS / "optimizers.py"), "--suite", "real"]
        script += ["--problems", "svc-digits", "--optimizers", "protein", "--modes", "seq"]
        script += ["--workers", "2", "--no-timing"]
        first = subprocess.run([*script, "--out", str(out), "--seeds", "2"], capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        fill_disk(disk / "filler")
        full = subprocess.run([*script, "--out", str(out), "--seeds", "4"], capture_output=True, text=True)
        assert full.returncode == 1
        assert "Traceback" not in full.stderr
        last = full.stderr.replace("\r", "\n").strip().splitlines()[-1]
        assert last.startswith(f"--out {out}: cannot write it (No space left on device)")
        assert sorted(json.loads(out.read_text())) == [  # the runs before, whole, and no temp file
            "protein|svc-digits|seq|0",
            "protein|svc-digits|seq|1",
            "timing",
        ]
        assert sorted(p.name for p in disk.iterdir()) == [".runs.json.lock", "filler", "runs.json"]
        # a fresh out file on the full disk: its lock is taken (no pid written) and the first save refused
        fresh = subprocess.run(
            [*script, "--seeds", "1", "--out", str(disk / "other.json")], capture_output=True, text=True
        )
        assert fresh.returncode == 1 and "Traceback" not in fresh.stderr
        assert (
            fresh.stderr.strip().splitlines()[-1].startswith(f"--out {disk / 'other.json'}: cannot write it")
        )
        assert not (disk / "other.json").exists()


def test_a_table_write_that_fails_leaves_the_table_before_it(tmp_path: Path) -> None:
    import gzip
    import json

    from real import build

    path = tmp_path / "svc-breast-cancer.json.gz"
    build.write_table(path, {"loss": [[[0.5]]]})
    with pytest.raises(TypeError):  # fails halfway through writing, as a full disk would
        build.write_table(path, {"loss": [[[0.25]]], "cost": object()})
    with gzip.open(path, "rt") as fh:
        assert json.load(fh) == {"loss": [[[0.5]]]}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no half-written file beside it


def test_a_regret_a_rounding_error_above_the_target_reaches_it_in_every_table() -> None:
    # the same gap to the split's best, 0.0038, computed on two splits: it differs in the last bits
    names = ["protein", "optuna-tpe", "optuna-gp"]
    low, high = 0.4438 - 0.44, 0.5438 - 0.54
    assert low != high and abs(low - high) < 1e-15
    results = {
        (name, "mlp-diabetes", "seq", seed): {"regret": [1.0, final], "cost": [1.0, 3.0]}
        for name in names
        for seed, final in enumerate([low, high, low, high, low, high, low, high, low, high, high])
    }
    target = min(low, high)
    assert optimizers.cost_to_reach(results, ("protein", "mlp-diabetes", "seq"), target) == [3.0] * 11
    splits = optimizers.by_table_seed(results, {("mlp-diabetes", "seq"): target}, ["protein"])
    assert splits[-1] == "| mlp-diabetes | seq | 2/2 · " + " · ".join(["1/1"] * 9) + " |"
    # every seed reaches it at cost 3, so no resample makes the cost median infinite
    cells = [("mlp-diabetes", "seq")]
    assert optimizers.verdict_odds(results, cells, names, rounds=20) == (1.0, 0.0)
