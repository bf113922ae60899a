"""`sweepwise export`, `sweepwise import` and `warm_start` (issue 18; docs/stores.md, "Export and import").

Everything runs the real command line on a real SQLite store, as a user would.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import cli, status_json

# Floats that a decimal round trip through `%g` or `str` of old would spoil.
TRICKY = [0.1 + 0.2, 1e-300, 5e-324, 2.0**53 + 1.0, 1 / 3, -0.0, 123456789.123456789]


def _source_csv(path: Path) -> Path:
    """Three completed runs with tricky floats, a string choice "3" (not the number), a failed run."""
    t = TRICKY
    lines = [
        "run_id,status,score,cost,param.lr,param.act,param.width,result.accuracy",
        f"a1,completed,{t[0]!r},{abs(t[3])!r},{t[4]!r},relu,16,0.5",
        f'a2,completed,{t[1]!r},{abs(t[4])!r},{t[5]!r},"""3""",32,',
        f"a3,completed,{t[2]!r},,{t[6]!r},tanh,64,0.25",
        "a4,failed,,,0.5,relu,16,",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _by_trial(status: dict[str, Any]) -> list[tuple[Any, Any, dict[str, Any]]]:
    return [(run["score"], run["cost"], run["suggestion"]) for run in status["runs"]]


def _hex(values: list[tuple[Any, Any, dict[str, Any]]]) -> list[Any]:
    """Every float as `float.hex`, so an equality check is bit for bit (-0.0 != 0.0)."""

    def exact(value: Any) -> Any:
        if isinstance(value, float):
            return value.hex()
        if isinstance(value, dict):
            return {key: exact(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [exact(item) for item in value]
        return value

    return [exact(list(item)) for item in values]


# --- import from CSV, export, import again --------------------------------------------------


@pytest.mark.slow
def test_csv_import_then_export_round_trips_exactly(tmp_path: Path) -> None:
    imported = cli("import", "first", "--csv", str(_source_csv(tmp_path / "in.csv")), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "imported 3 runs" in imported.stderr and "1 not completed" in imported.stderr
    first = status_json(tmp_path, "first")
    assert first["status"] == "complete" and first["counts"]["completed"] == 3
    assert [run["score"] for run in first["runs"]] == TRICKY[:3]
    assert [run["cost"] for run in first["runs"]] == [abs(TRICKY[3]), abs(TRICKY[4]), None]
    assert first["runs"][1]["suggestion"] == {"lr": TRICKY[5], "act": "3", "width": 32}
    assert [run["suggestion"]["lr"] for run in first["runs"]] == TRICKY[4:7]

    exported = cli("export", "first", "--format", "csv", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    (tmp_path / "first.csv").write_text(exported.stdout)
    again = cli("import", "second", "--csv", str(tmp_path / "first.csv"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    second = status_json(tmp_path, "second")
    assert _hex(_by_trial(second)) == _hex(_by_trial(first))
    assert cli("export", "second", cwd=tmp_path).stdout.split("\n")[0] == exported.stdout.split("\n")[0]
    rows = _rows(cli("export", "second", cwd=tmp_path).stdout)
    assert [row["result.accuracy"] for row in rows] == ["0.5", "", "0.25"]
    assert [row["param.act"] for row in rows] == ["relu", '"3"', "tanh"]  # the string "3", not 3

    best = json.loads(cli("best", "second", "--json", cwd=tmp_path).stdout)
    assert best["score"] == max(TRICKY[:3])


def test_import_minimize_goal_ranks_the_lowest_first(tmp_path: Path) -> None:
    source = _source_csv(tmp_path / "in.csv")
    assert cli("import", "low", "--csv", str(source), "--goal", "minimize", cwd=tmp_path).returncode == 0
    best = json.loads(cli("best", "low", "--json", cwd=tmp_path).stdout)
    assert (best["goal"], best["score"]) == ("minimize", min(TRICKY[:3]))


# --- bad input: one line, exit 2, nothing written -------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("param.x,cost\n0.5,1\n", "--csv: " + "{path} has no score column"),
        ("score,cost\n1.0,1\n", "--csv: {path} has no param.<name> column"),
        ("param.x,score\n0.5,1.0\n0.6,high\n", "--csv: line 3, column score: 'high' is not a number"),
        ("param.x,score\n0.5,1.0\n0.6,\n", "--csv: line 3, column score: None is not a number"),
        ("param.x,score,cost\n0.5,1.0,-2\n", "--csv: line 2, column cost: -2 is not a finite number >= 0"),
        ("param.x,score,status\n0.5,,failed\n", "--csv: holds no completed run with a score"),
    ],
)
def test_bad_csv_is_refused_and_writes_nothing(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = cli("import", "bad", "--csv", str(path), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + message.format(path=path)), result.stderr
    assert not (tmp_path / "sweepwise.db").exists()


@pytest.mark.slow
def test_a_real_sweep_round_trips_through_csv(tmp_path: Path, make_sweep: Callable[..., Path]) -> None:
    # FAIL_ABOVE: the train job fails for x > 0.7, so the export holds failed runs too
    spec = make_sweep("swept")
    ran = cli("run", str(spec), "--quiet", cwd=tmp_path, env={"FAIL_ABOVE": "0.7"})
    source = status_json(tmp_path, "swept")
    completed = [run for run in source["runs"] if run["status"] == "completed"]
    assert completed and len(completed) < len(source["runs"]), ran.stderr

    exported = cli("export", "swept", "--out", "swept.csv", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    rows = _rows((tmp_path / "swept.csv").read_text())
    assert [row["status"] for row in rows] == [run["status"] for run in source["runs"]]
    assert all(row["result.score"] for row in rows if row["status"] == "completed")
    imported = cli("import", "copied", "--csv", "swept.csv", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    copied = status_json(tmp_path, "copied")
    assert _hex(_by_trial(copied)) == _hex([(r["score"], r["cost"], r["suggestion"]) for r in completed])
    again = _rows(cli("export", "copied", cwd=tmp_path).stdout)
    assert [row["result.score"] for row in again] == [
        r["result.score"] for r in rows if r["status"] == "completed"
    ]


@pytest.mark.slow
def test_import_refuses_a_name_that_exists_and_keeps_the_store(tmp_path: Path) -> None:
    source = _source_csv(tmp_path / "in.csv")
    assert cli("import", "taken", "--csv", str(source), cwd=tmp_path).returncode == 0
    before = status_json(tmp_path, "taken")
    result = cli("import", "taken", "--csv", str(source), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: NAME: experiment 'taken' exists already in sqlite:///{tmp_path / 'sweepwise.db'}; "
        "import under another name"
    )
    assert status_json(tmp_path, "taken") == before
    with sqlite3.connect(tmp_path / "sweepwise.db") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (3,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name"], "error: NAME: may hold only letters"),
        (["ok"], "error: --csv: give one source"),
        (["ok", "--csv", "x.csv", "--goal", "up"], "error: --goal: unknown goal 'up'"),
        (["ok", "--optuna-storage", "sqlite:///o.db"], "error: --study: is required"),
        (["ok", "--csv", "missing.csv"], "error: --csv: no such file missing.csv"),
        (["ok", "--optuna-storage", "sqlite:///nope.db", "--study", "s"], "error: --optuna-storage: no such"),
    ],
)
def test_bad_import_command_lines(tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("import", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(message), result.stderr
    assert not (tmp_path / "sweepwise.db").exists() and not (tmp_path / "nope.db").exists()


@pytest.mark.slow
def test_bad_export_command_lines(tmp_path: Path) -> None:
    assert cli("import", "e", "--csv", str(_source_csv(tmp_path / "in.csv")), cwd=tmp_path).returncode == 0
    cases = [
        (["e", "--format", "xml"], 2, "error: --format: unknown format 'xml'; use one of csv, json, parquet"),
        (["e", "--format", "parquet"], 2, "error: --out: Parquet is a binary format"),
        (["e", "--out", "no/such/dir/e.csv"], 2, "error: --out: directory"),
        (["nope"], 1, "error: EXPERIMENT: no experiment named 'nope' in "),
    ]
    for args, code, message in cases:
        result = cli("export", *args, cwd=tmp_path)
        assert result.returncode == code, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(message), args
        assert result.stdout == ""
    written = [p.name for p in tmp_path.iterdir() if not p.name.startswith("sweepwise.db")]
    assert written == ["in.csv"]


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path) -> None:
    assert cli("import", "e", "--csv", str(_source_csv(tmp_path / "in.csv")), cwd=tmp_path).returncode == 0
    blocker = tmp_path / "no_pyarrow"
    blocker.mkdir()
    (blocker / "pyarrow.py").write_text("raise ImportError('No module named pyarrow')\n")
    path = f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    result = cli(
        "export", "e", "--format", "parquet", "--out", "e.parquet", cwd=tmp_path, env={"PYTHONPATH": path}
    )
    assert result.returncode == 2
    assert result.stderr.strip() == 'error: pyarrow is not installed: run pip install "sweepwise[parquet]"'
    assert not (tmp_path / "e.parquet").exists()


# --- export formats -----------------------------------------------------------------------------


@pytest.mark.slow
def test_json_and_parquet_exports_hold_the_exact_values(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    assert cli("import", "e", "--csv", str(_source_csv(tmp_path / "in.csv")), cwd=tmp_path).returncode == 0
    status = status_json(tmp_path, "e")

    as_json = cli("export", "e", "--format", "json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert (document["experiment"], document["metric"], document["goal"]) == ("e", "score", "maximize")
    for row, run in zip(document["runs"], status["runs"], strict=True):
        assert (row["run_id"], row["status"], row["score"], row["cost"]) == (
            run["run_id"],
            "completed",
            run["score"],
            run["cost"],
        )
        params = {key.removeprefix("param."): value for key, value in row.items() if key.startswith("param.")}
        assert _hex([(0, 0, params)]) == _hex([(0, 0, run["suggestion"])])

    written = cli("export", "e", "--format", "parquet", "--out", "e.parquet", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.schema.metadata[b"sweepwise.goal"] == b"maximize"
    rows = table.to_pylist()
    assert [r["score"].hex() for r in rows] == [run["score"].hex() for run in status["runs"]]
    assert [r["param.lr"].hex() for r in rows] == [run["suggestion"]["lr"].hex() for run in status["runs"]]
    assert [r["param.act"] for r in rows] == ["relu", "3", "tanh"]
    assert [r["cost"] for r in rows] == [run["cost"] for run in status["runs"]]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --- Optuna ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_import_of_an_optuna_study_takes_its_complete_trials(tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(
        study_name="quad",
        storage=storage,
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", -2.0, 2.0)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        if trial.number == 3:
            raise optuna.TrialPruned()
        return (x - 0.5) ** 2 + (0.0 if kind == "a" else 1.0)

    study.optimize(objective, n_trials=8)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 7

    result = cli("import", "from-optuna", "--optuna-storage", storage, "--study", "quad", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imported 7 runs" in result.stderr and "1 not completed" in result.stderr
    status = status_json(tmp_path, "from-optuna")
    assert [run["score"] for run in status["runs"]] == [t.value for t in complete]
    assert [run["suggestion"] for run in status["runs"]] == [t.params for t in complete]
    assert [run["cost"] for run in status["runs"]] == [t.duration.total_seconds() for t in complete]
    best = json.loads(cli("best", "from-optuna", "--json", cwd=tmp_path).stdout)
    assert (best["goal"], best["score"]) == ("minimize", study.best_value)
    assert best["parameters"] == study.best_params

    missing = cli("import", "other", "--optuna-storage", storage, "--study", "nope", cwd=tmp_path)
    assert missing.returncode == 2
    expected = f"error: --study: no study 'nope' in {storage} (studies: quad); fix the name"
    assert missing.stderr.strip() == expected


# --- warm start ------------------------------------------------------------------------------------

OBJECTIVE = textwrap.dedent(
    """
    import json, sys
    p = dict(word.split("=", 1) for word in sys.argv[1:])
    x, y = float(p["x"]), float(p["y"])
    print("SWEEPWISE_RESULT " + json.dumps({"score": -((x - 0.63) ** 2 + (y - 0.37) ** 2)}))
    """
)
# Imported runs: a 5 x 5 grid over the space and one point near the optimum (0.63, 0.37); plus
# two that do not fit the sweep's space (one misses y, one has x outside [0, 1]).
_GRID = [0.1, 0.3, 0.5, 0.7, 0.9]
_WARM_POINTS = [(x, y) for x in _GRID for y in _GRID] + [(0.61, 0.39)]
WARM_CSV = (
    "param.x,param.y,param.extra,score\n"
    + "".join(f"{x!r},{y!r},7,{-((x - 0.63) ** 2 + (y - 0.37) ** 2)!r}\n" for x, y in _WARM_POINTS)
    + "0.8,,7,-0.01\n1.5,0.2,7,-0.5\n"
)
IMPORTED_BEST = max(-((x - 0.63) ** 2 + (y - 0.37) ** 2) for x, y in _WARM_POINTS)


def _warm_sweep(tmp_path: Path, name: str, **extra: Any) -> Path:
    (tmp_path / "objective.py").write_text(OBJECTIVE)
    spec: dict[str, Any] = {
        "name": name,
        "max_parallel": 4,
        "monitoring_interval": 0.2,
        "scheduler": {"type": "batched_synced", "max_trials": 4, "batch_size": 4},
        "optimizer": {"type": "protein", "seed": 3},
        "train": {"cmd": ["python", "objective.py"]},
        "parameters": {
            "x": {"distribution": "uniform", "min": 0.0, "max": 1.0},
            "y": {"distribution": "uniform", "min": 0.0, "max": 1.0},
        },
        **extra,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
def test_warm_started_first_batch_beats_a_cold_start(tmp_path: Path) -> None:
    (tmp_path / "warm.csv").write_text(WARM_CSV)
    assert cli("import", "past", "--csv", "warm.csv", cwd=tmp_path).returncode == 0

    cold = cli("run", str(_warm_sweep(tmp_path, "cold")), "--quiet", cwd=tmp_path)
    assert cold.returncode == 0, cold.stderr
    warm = cli("run", str(_warm_sweep(tmp_path, "warm", warm_start="past")), "--quiet", cwd=tmp_path)
    assert warm.returncode == 0, warm.stderr
    assert "warning: warm_start: skipped 2 of 28 runs: each misses a parameter" in warm.stderr

    def best_of(name: str) -> float:
        return max(run["score"] for run in status_json(tmp_path, name)["runs"])

    # Seeds are fixed: the cold start's first batch is a space-filling design; the warm start's
    # is drawn to the imported runs' best region and improves on the best of them.
    assert best_of("warm") > best_of("cold")
    assert best_of("warm") > IMPORTED_BEST


COUNTING = textwrap.dedent(
    """
    from sweepwise.optimizers import register_optimizer
    from sweepwise.optimizers.random import RandomOptimizer

    LOG = {log!r}

    class Counting:
        def __init__(self, space, seed):
            self.inner = RandomOptimizer(space, seed=seed)

        def suggest(self, observations, n_suggestions=1, pending=None):
            with open(LOG, "a") as f:
                f.write(f"{{len(observations)}}\\n")
            return self.inner.suggest(observations, n_suggestions, pending)

    @register_optimizer("counting")
    def make(spec, space, *, goal):
        return Counting(space, spec.seed)
    """
)


@pytest.mark.slow
def test_warm_start_survives_a_resume_without_observing_twice(tmp_path: Path) -> None:
    (tmp_path / "warm.csv").write_text(WARM_CSV)
    assert cli("import", "past", "--csv", "warm.csv", cwd=tmp_path).returncode == 0
    log = tmp_path / "counts.txt"
    (tmp_path / "counting_opt.py").write_text(COUNTING.format(log=str(log)))
    spec = _warm_sweep(
        tmp_path,
        "resumed",
        warm_start=["past"],
        imports=["counting_opt"],
        optimizer={"type": "counting", "seed": 1},
        scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2},
    )
    first = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = cli("run", str(spec), "max_trials=4", "--quiet", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    # 26 imported runs fit the space: 26 before the first batch, 26 + 2 before the second (after
    # the resume), never 26 twice over
    assert log.read_text().split() == ["26", "28"]
    assert status_json(tmp_path, "resumed")["counts"]["completed"] == 4


@pytest.mark.slow
def test_warm_start_naming_no_experiment_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    spec = _warm_sweep(tmp_path, "lonely", warm_start="nowhere")
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: warm_start: no experiment named 'nowhere' in ")
    assert not (tmp_path / "sweepwise.db").exists() and not (tmp_path / "runs").exists()


def test_warm_start_is_refused_for_a_scheduler_without_an_optimizer(tmp_path: Path) -> None:
    spec = _warm_sweep(
        tmp_path, "grid", warm_start="past", scheduler={"type": "train_and_eval"}, parameters={}
    )
    result = cli("run", str(spec), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: warm_start: scheduler 'train_and_eval' has no optimizer")


# --- the pieces, without a process ------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, 0, -7, 2**70, 0.1, -0.0, 5e-324, 1e308, 1 / 3, True, False, "relu", "3", "", "null", " 1", "a,b"]
    + [[1, 2.5], {"k": "v"}, "NaN"],
)
def test_a_cell_reads_back_to_the_same_value(value: Any) -> None:
    from sweepwise.app.transfer.cells import decode_cell, encode_cell

    back = decode_cell(encode_cell(value))
    assert back == value and type(back) is type(value)
    if isinstance(value, float):
        assert back.hex() == value.hex()


def test_warm_observations_are_fitted_to_the_space_and_come_first() -> None:
    from sweepwise.core.models import Observation
    from sweepwise.optimizers.warm_start import WarmStarted, fit_to_space
    from sweepwise.space import SearchSpace

    space = SearchSpace.from_dict(
        {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}, "act": {"choices": ["relu", "tanh"]}}
    )
    given = [
        Observation(1.0, 2.0, {"x": 0.5, "act": "relu", "dropped": 3}),
        Observation(1.0, 2.0, {"x": 0.5}),  # misses act
        Observation(1.0, 2.0, {"x": 1.5, "act": "relu"}),  # outside x's range
        Observation(1.0, 2.0, {"x": 0.5, "act": "gelu"}),  # not a choice
    ]
    fitted = fit_to_space(given, space)
    assert fitted.skipped == 3
    assert [obs.suggestion for obs in fitted.observations] == [{"x": 0.5, "act": "relu"}]

    seen: list[list[Observation]] = []

    class Recording:
        def suggest(
            self, observations: list[Observation], n_suggestions: int = 1, pending: Any = None
        ) -> list[dict[str, Any]]:
            seen.append(observations)
            return [{}] * n_suggestions

    own = [Observation(0.0, 1.0, {"x": 0.1, "act": "tanh"})]
    optimizer = WarmStarted(Recording(), fitted.observations)
    optimizer.suggest(own, 2)
    optimizer.suggest(own, 2)  # called again, as after a resume: the warm ones once each time
    assert seen == [fitted.observations + own] * 2
