"""Issue 15: results are small, scores and costs finite numbers, and every JSON we write is strict."""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import cli
from sweepwise.core import keys
from sweepwise.core.jsonsafe import dumps_strict, json_safe
from sweepwise.engine.hooks import MissingMetricError, finite_number
from sweepwise.runtime.results import read_job_result
from sweepwise.stores._codec import cost_of, to_json

HUGE = "1" + "0" * 400  # a 401-digit integer: valid JSON, too large for a float

# Training reports a NaN loss and progress through sweepwise.report; eval writes a
# result.json chosen by the run's `case`.
TRAIN = textwrap.dedent(
    """
    import sweepwise
    sweepwise.report(step=1, loss=float("nan"), progress=float("nan"))
    """
)
EVAL = textwrap.dedent(
    """
    import os, sys
    case = dict(word.split("=", 1) for word in sys.argv[1:])["case"]
    HUGE = "1" + "0" * 400
    texts = {
        "normal": '{"score": 0.5, "loss": NaN, "steps": %s, "worst": -Infinity}' % HUGE,
        "nan": '{"score": NaN}',
        "inf": '{"score": Infinity}',
        "ninf": '{"score": -Infinity}',
        "bigint": '{"score": %s}' % HUGE,
        "true": '{"score": true}',
        "string": '{"score": "0.9"}',
        "cost_nan": '{"score": 0.5, "cost": NaN}',
        "cost_neg": '{"score": 0.5, "cost": -1}',
        "cost_big": '{"score": 0.5, "cost": %s}' % HUGE,
    }
    with open(os.path.join(os.environ["SWEEPWISE_RUN_DIR"], "result.json"), "w") as f:
        if case == "big_file":  # 2 MB of data in a valid result
            f.write('{"score": 0.5, "data": "' + "x" * 2_000_000 + '"}')
        else:
            f.write(texts[case])
    """
)

REASONS = {
    "nan": 'the result\'s "score" is NaN, not a finite number',
    "inf": 'the result\'s "score" is Infinity, not a finite number',
    "ninf": 'the result\'s "score" is -Infinity, not a finite number',
    "bigint": 'the result\'s "score" is a 401-digit integer, too large for a float, not a finite number',
    "true": 'the result\'s "score" is true, not a number',
    "string": 'the result\'s "score" is the string "0.9", not a number',
    "cost_nan": 'the result\'s "cost" is NaN, not a finite number',
    "cost_neg": 'the result\'s "cost" is -1; a cost must be >= 0',
    "cost_big": 'the result\'s "cost" is a 401-digit integer, too large for a float, not a finite number',
    "big_file": "eval.result.json is 2 MB, over the 1 MB limit (SWEEPWISE_MAX_RESULT_BYTES); "
    "report a summary, not data",
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def strict(text: str) -> Any:
    """`text` parsed as strict JSON: no NaN / Infinity, no integer too large for a float."""
    assert not re.search(r"[:\[,]\s*-?\d{309}", text), "an integer too large for a float"
    return json.loads(text, parse_constant=_reject_constant)


@pytest.mark.slow
def test_bad_scores_costs_and_large_results_fail_their_runs_and_json_stays_strict(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    cases = ["normal", *REASONS]
    spec = make_sweep(
        "values",
        max_parallel=6,
        monitoring_interval=0.5,
        scheduler={"type": "grid_search"},
        parameters={"case": {"choices": cases}},
    )
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "eval.py").write_text(EVAL)
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr

    for args in (["status", "--json"], ["status", "values", "--json"], ["best", "values", "--json"]):
        shown = cli(*args, cwd=tmp_path)
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
        strict(shown.stdout)
    rows = {
        row["suggestion"]["case"]: row
        for row in strict(cli("status", "values", "--json", cwd=tmp_path).stdout)["runs"]
    }
    assert sorted(rows) == sorted(cases)
    normal = rows.pop("normal")
    assert (normal["status"], normal["score"], normal["error"]) == ("completed", 0.5, None)
    for case, row in rows.items():
        assert (row["status"], row["error"], row["score"]) == ("failed", REASONS[case], None), case

    best = strict(cli("best", "values", "--json", cwd=tmp_path).stdout)
    assert (best["run_id"], best["score"]) == (normal["run_id"], 0.5)
    human = cli("status", "values", cwd=tmp_path)
    assert human.returncode == 0 and "Traceback" not in human.stderr, human.stderr
    assert "FAILED" in human.stdout and "COMPLETED" in human.stdout

    # The stored result of the normal run: its NaN and its huge integer kept as strings.
    from sweepwise.stores.sqlite_reader import SQLiteReader

    reader = SQLiteReader(tmp_path / "sweepwise.db")
    run = reader.fetch_runs({"run_id": normal["run_id"]})[0]
    assert run.summary[keys.EVAL_RESULT] == {"score": 0.5, "loss": "NaN", "steps": HUGE, "worst": "-Infinity"}
    reader.close()
    stored = sum(path.stat().st_size for path in tmp_path.glob("sweepwise.db*"))
    assert stored < 1_000_000, stored  # the 2 MB result was not stored


def test_a_result_over_the_limit_is_rejected_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "eval.result.json").write_text('{"score": 0.5, "data": "' + "x" * 2974 + '"}')
    monkeypatch.setenv("SWEEPWISE_MAX_RESULT_BYTES", "2000")
    assert read_job_result(tmp_path, "eval") == (
        None,
        "eval.result.json is 3 kB, over the 2 kB limit (SWEEPWISE_MAX_RESULT_BYTES); "
        "report a summary, not data",
    )
    monkeypatch.setenv("SWEEPWISE_MAX_RESULT_BYTES", "4000")
    result, error = read_job_result(tmp_path, "eval")
    assert error is None and result is not None and result["score"] == 0.5


def test_a_result_line_or_metrics_row_over_the_limit_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPWISE_MAX_RESULT_BYTES", "100")
    (tmp_path / "eval.log").write_text(
        "SWEEPWISE_RESULT " + json.dumps({"score": 0.5, "data": "x" * 200}) + "\n"
    )
    result, error = read_job_result(tmp_path, "eval")
    assert result is None and error is not None and "over the 100 bytes limit" in error
    (tmp_path / "eval.log").unlink()
    (tmp_path / "eval.metrics.jsonl").write_text(
        json.dumps({"step": 1, "score": 0.5, "data": "x" * 200}) + "\n"
    )
    result, error = read_job_result(tmp_path, "eval")
    assert result is None and error is not None and "metrics.jsonl" in error and "over the 100 bytes" in error


def test_the_sanitiser_replaces_what_strict_json_cannot_hold() -> None:
    huge = int(HUGE)
    value = {"a": [math.nan, math.inf, -math.inf, 1.5, huge, -huge, 7, True, None, "NaN"], "b": (1, {2})}
    assert json_safe(value) == {
        "a": ["NaN", "Infinity", "-Infinity", 1.5, HUGE, "-" + HUGE, 7, True, None, "NaN"],
        "b": [1, [2]],
    }
    text = dumps_strict(value)
    assert strict(text) == json_safe(value)
    assert dumps_strict({"x": 1.5}) == json.dumps({"x": 1.5})  # nothing to replace: unchanged
    assert strict(to_json({"loss": math.nan, "steps": huge}, what="summary")) == {
        "loss": "NaN",
        "steps": HUGE,
    }
    with pytest.raises(TypeError, match="summary must be JSON-serialisable"):
        to_json({"x": object()}, what="summary")


def test_a_cost_is_a_finite_number_at_least_zero() -> None:
    key = keys.OBSERVATION_COST
    assert cost_of({key: 2}) == 2.0
    for bad in (math.nan, math.inf, -1, True, int(HUGE), "3"):
        assert cost_of({key: bad}) is None, bad


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, 'the result\'s "score" is true, not a number'),
        (None, 'the result\'s "score" is null, not a number'),
        ([1], 'the result\'s "score" is an array, not a number'),
        (math.nan, 'the result\'s "score" is NaN, not a finite number'),
        (-math.inf, 'the result\'s "score" is -Infinity, not a finite number'),
    ],
)
def test_finite_number_names_the_key_and_what_it_is(value: Any, reason: str) -> None:
    with pytest.raises(MissingMetricError) as raised:
        finite_number("score", value)
    assert str(raised.value) == reason
    assert finite_number("score", 3) == 3.0


def test_report_writes_a_nan_loss_as_strict_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sweepwise

    metrics, result = tmp_path / "train.metrics.jsonl", tmp_path / "train.result.json"
    monkeypatch.setenv("SWEEPWISE_METRICS_FILE", str(metrics))
    monkeypatch.setenv("SWEEPWISE_RESULT_FILE", str(result))
    sweepwise.report(step=1, loss=math.nan, best=-math.inf)
    sweepwise.report_result(score=0.5, loss=math.nan)
    row = strict(metrics.read_text())
    assert (row["loss"], row["best"]) == ("NaN", "-Infinity")
    assert strict(result.read_text()) == {"score": 0.5, "loss": "NaN"}


def test_a_remote_jobs_metrics_lines_are_its_well_formed_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a remote job's log carries (docs/backends.md, "Early stopping on every backend"): every
    # well-formed SWEEPWISE_METRICS line counts, in order; a cut, non-object or oversized one does not.
    from sweepwise.runtime.results import metrics_from_lines

    monkeypatch.setenv("SWEEPWISE_MAX_RESULT_BYTES", "64")
    first, good = 'SWEEPWISE_METRICS {"step": 1}', 'SWEEPWISE_METRICS {"step": 2, "loss": 0.5}'
    both = [{"step": 1}, {"step": 2, "loss": 0.5}]
    assert metrics_from_lines([first, "epoch 1", good, "epoch 2 done"]) == both
    for bad in (
        'SWEEPWISE_METRICS {"step": 3, "lo',
        "SWEEPWISE_METRICS [3]",
        "SWEEPWISE_METRICS " + "9" * 80,
    ):
        assert metrics_from_lines([good, bad]) == [{"step": 2, "loss": 0.5}], bad
    assert metrics_from_lines(['  SWEEPWISE_METRICS {"step": 9}', "no rows"]) == []  # not at a line's start


# A job's JSON nested thousands deep: `json.loads` raises RecursionError, not ValueError, which once
# took the controller down with a traceback at its first poll (and again at every restart).
DEEP_TRAIN = textwrap.dedent(
    """
    import os, sys
    case = dict(word.split("=", 1) for word in sys.argv[1:])["case"]
    deep = "[" * 5000 + "]" * 5000
    with open(os.environ["SWEEPWISE_METRICS_FILE"], "a") as f:
        f.write('{"step": 1, "score": 0.5}\\n')
        f.write('{"step": 2, "score": 0.5, "x": ' + deep + '}\\n')  # the newest row
    if case == "file":
        with open(os.environ["SWEEPWISE_RESULT_FILE"], "w") as f:
            f.write('{"score": 0.5, "x": ' + deep + '}')
    elif case == "line":
        print('SWEEPWISE_RESULT {"score": 0.5, "x": ' + deep + '}')
    else:
        print('SWEEPWISE_RESULT {"score": 0.5}')
    """
)


def test_a_value_nested_thousands_deep_fails_its_run_not_the_sweep(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep(
        "deep",
        monitoring_interval=0.2,
        scheduler={"type": "grid_search"},
        stopper={"type": "asha", "grace_period": 1},
        parameters={"case": {"choices": ["file", "line", "rows"]}},
        eval=None,
    )
    (tmp_path / "train.py").write_text(DEEP_TRAIN)
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    rows = {
        row["suggestion"]["case"]: row
        for row in strict(cli("status", "deep", "--json", cwd=tmp_path).stdout)["runs"]
    }
    how = 'write one JSON object, e.g. {"score": 0.9}'
    assert rows["file"]["error"] == f"train.result.json is nested more than 64 levels deep; {how}"
    line = 'print one JSON object on one line, e.g. SWEEPWISE_RESULT {"score": 0.9}'
    assert (
        rows["line"]["error"]
        == f"the last SWEEPWISE_RESULT line of train.log is nested more than 64 levels deep; {line}"
    )
    assert (rows["rows"]["status"], rows["rows"]["score"]) == (
        "completed",
        0.5,
    )  # the deep row is passed over


def test_loads_bounded_refuses_what_is_nested_too_deep() -> None:
    from sweepwise.core.jsonsafe import MAX_DEPTH, loads_bounded

    assert loads_bounded('{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}
    assert loads_bounded("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    for depth in (MAX_DEPTH + 1, 100_000):
        with pytest.raises(ValueError, match=f"nested more than {MAX_DEPTH} levels deep"):
            loads_bounded("[" * depth + "]" * depth)


def test_a_result_with_an_integer_too_long_to_read_names_why(tmp_path: Path) -> None:
    from sweepwise.runtime.results import read_job_result

    (tmp_path / "train.result.json").write_text('{"score": ' + "9" * 5000 + "}")
    result, error = read_job_result(tmp_path, "train")
    assert result is None and error is not None
    assert error.startswith("train.result.json holds an integer of more than 4300 digits; write one JSON")
