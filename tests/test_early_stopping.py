"""Early stopping: the spec's `stopper` ends runs from what their jobs report.

The rules are checked on `Stopper` directly; the sweeps run real `sweepwise run`
processes whose training jobs report one row per step with `sweepwise.report` and write
each step they reach to a file of their own, so what was stopped, and when, is judged
from the jobs' side effects.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import cli, status_json
from early_stopping_helpers import (
    STEPS,
    STUBBORN_PREAMBLE,
    TRAIN,
    check_a_kill_between_the_decision_and_the_cancel,
    check_asha_sweep,
    check_rung_scores_reach_the_optimizer,
    job_steps,
    write_sweep,
)
from sweepwise.core import keys
from sweepwise.core.errors import ConfigError, DispatchError
from sweepwise.core.models import JobStatus
from sweepwise.core.records import RunInfo
from sweepwise.engine.stopping import Stopper, StopperSpec

# -- the rules ------------------------------------------------------------------------------


def _run(run_id: str, step: int, value: float, rungs: dict[str, float] | None = None) -> RunInfo:
    summary: dict[str, Any] = {keys.TRAIN_METRICS: {"step": step, "score": value}}
    if rungs is not None:
        summary[keys.RUNGS] = rungs
    return RunInfo(run_id, group="exp", summary=summary, has_started_training=True)


def test_asha_keeps_the_best_third_at_each_rung_and_never_judges_before_the_grace_period() -> None:
    stopper = Stopper(
        StopperSpec(type="asha", grace_period=2, reduction_factor=3, max_t=18), "score", "maximize"
    )
    assert list(stopper.rungs()) == [2, 6, 18]
    assert stopper.decide(_run("a", 1, 0.1)) is None  # before the grace period: nothing to judge
    first = stopper.decide(_run("a", 2, 0.9))
    assert first is not None and not first.stop and first.rungs == {"2": 0.9}
    assert not stopper.decide(_run("b", 2, 0.5)).stop  # type: ignore[union-attr]  # 2 values: too few
    third = stopper.decide(_run("c", 3, 0.1))  # at step 3 it passed rung 2, with 3 values there
    assert third is not None and third.stop and (third.step, third.value) == (3, 0.1)
    assert not stopper.decide(_run("d", 2, 0.95)).stop  # type: ignore[union-attr]  # the best so far
    assert stopper.decide(_run("a", 4, 0.9, rungs={"2": 0.9})) is None  # no new rung reached


def test_a_minimized_metric_stops_the_largest_and_max_t_is_never_cut() -> None:
    stopper = Stopper(
        StopperSpec(type="asha", grace_period=1, reduction_factor=2, max_t=4), "loss", "minimize"
    )
    for run_id, loss in (("a", 1.0), ("b", 2.0)):
        stopper.decide(RunInfo(run_id, summary={keys.TRAIN_METRICS: {"step": 1, "loss": loss}}))
    worst = stopper.decide(RunInfo("c", summary={keys.TRAIN_METRICS: {"step": 1, "loss": 3.0}}))
    assert worst is not None and worst.stop
    at_end = stopper.decide(RunInfo("e", summary={keys.TRAIN_METRICS: {"step": 4, "loss": 9.0}}))
    assert at_end is not None and not at_end.stop  # it trained as long as any run will


def test_median_needs_min_samples_then_stops_below_the_median() -> None:
    stopper = Stopper(StopperSpec(type="median", grace_period=1, min_samples=3), "score", "maximize")
    assert not any(stopper.decide(_run(r, 1, v)).stop for r, v in (("a", 0.5), ("b", 0.7)))  # type: ignore[union-attr]
    assert stopper.decide(_run("c", 1, 0.4)).stop  # type: ignore[union-attr]
    assert not stopper.decide(_run("d", 1, 0.6)).stop  # type: ignore[union-attr]


def test_a_run_that_diverged_is_stopped_at_its_first_rung_even_before_anyone_else_reported() -> None:
    # A NaN loss never recovers: the run is stopped at the first rung it reaches, though no
    # other run has a value there to compare with; a good value at the same rung is not.
    def loss(run_id: str, step: int, value: Any) -> RunInfo:
        return RunInfo(run_id, summary={keys.TRAIN_METRICS: {"step": step, "loss": value}})

    for kind in ("asha", "median"):
        spec = StopperSpec(type=kind, grace_period=2, reduction_factor=2, max_t=8)
        stopper = Stopper(spec, "loss", "minimize")
        assert stopper.decide(loss("a", 1, "NaN")) is None  # before the grace period
        # as `report` writes NaN and +inf, and as a job's own JSON may hold them
        for run_id, value in (("a", "NaN"), ("b", float("nan")), ("c", "Infinity"), ("d", float("inf"))):
            decision = stopper.decide(loss(run_id, 2, value))
            assert decision is not None and decision.stop and decision.step == 2, (kind, value)
            assert decision.rungs == {}  # nothing recorded at the rung to judge others by
        assert not stopper.decide(loss("e", 2, 0.5)).stop  # type: ignore[union-attr]  # the first value
        assert stopper.decide(loss("f", 8, "NaN")) is None  # at max_t: nothing left to save
        assert stopper.decide(loss("g", 2, "-Infinity")) is None  # a loss of -inf: not judged
    maximize = Stopper(StopperSpec(type="asha", grace_period=1), "score", "maximize")
    wrong_way = maximize.decide(_run("a", 1, float("-inf")))
    assert wrong_way is not None and wrong_way.stop and wrong_way.value == -math.inf  # shown as judged
    assert maximize.decide(_run("b", 1, float("inf"))) is None


def test_a_stopper_judging_another_metric_uses_its_own_goal_and_scores_in_the_experiments_metric() -> None:
    # The sweep maximises an accuracy the job reports only now and then; the stopper judges
    # the training loss, lower being better. A stopped run's score is never a loss.
    spec = StopperSpec(type="asha", grace_period=1, reduction_factor=2, metric="loss", goal="minimize")
    stopper = Stopper(spec, "accuracy", "maximize")

    def report(run_id: str, loss: Any, **more: float) -> RunInfo:
        return RunInfo(run_id, summary={keys.TRAIN_METRICS: {"step": 1, "loss": loss, **more}})

    first = stopper.decide(report("a", 1.0, accuracy=0.9))
    assert first is not None and not first.stop and first.score == 0.9
    assert not stopper.decide(report("b", 0.5)).stop  # type: ignore[union-attr]  # the lowest loss goes on
    worst = stopper.decide(report("c", 3.0, accuracy=0.4))
    assert worst is not None and worst.stop and (worst.value, worst.score) == (3.0, 0.4)
    unscored = stopper.decide(report("d", 4.0))
    assert unscored is not None and unscored.stop and unscored.score is None  # no accuracy in its report
    diverged = stopper.decide(report("e", "NaN", accuracy=0.5))
    assert diverged is not None and diverged.stop and math.isnan(diverged.score)  # type: ignore[arg-type]
    same = Stopper(StopperSpec(type="asha", grace_period=1), "score", "maximize").decide(_run("a", 1, 0.3))
    assert same is not None and same.score == 0.3  # the experiment's own metric: its value is the score


def test_a_run_whose_reports_the_stopper_never_judged_is_warned_of_once() -> None:
    stopper = Stopper(StopperSpec(type="asha", grace_period=5), "accuracy", "maximize")

    def trained(run_id: str, step: int, **summary: Any) -> RunInfo:
        row = {"step": step, "loss": 0.1, "progress": 1.0}
        return RunInfo(run_id, summary={keys.TRAIN_METRICS: row, **summary}, has_completed_training=True)

    assert stopper.never_judged(trained("a", 4)) is None  # ended before the grace period
    assert stopper.never_judged(trained("b", 9, **{keys.RUNGS: {"5": 0.7}})) is None  # judged
    warning = stopper.never_judged(trained("c", 9))
    assert warning is not None and "\n" not in warning
    assert (
        "run c trained to step 9" in warning
        and "its reports carry loss, progress but not 'accuracy', the metric it judges;" in warning
    )
    assert "sweepwise.report(step=..., accuracy=...)" in warning and "stopper.metric" in warning
    assert stopper.never_judged(trained("d", 9)) is None  # once per controller
    busy = Stopper(StopperSpec(type="asha", grace_period=5), "loss", "minimize")
    assert busy.decide(trained("a", 5)) is not None  # it judged a report: it works
    assert busy.never_judged(trained("b", 9)) is None  # a run it missed is no sign of a wrong set-up
    quick = Stopper(StopperSpec(type="asha", grace_period=5), "loss", "minimize")
    assert quick.never_judged(trained("c", 9)) is None and quick.never_judged(trained("d", 9)) is None
    assert "its training had ended when the controller first read its reports, as had the ones before;" in (
        quick.never_judged(trained("e", 9)) or ""
    )  # the third in a row, nothing judged: trainings shorter than the controller's reads
    worded = Stopper(StopperSpec(type="median"), "accuracy", "maximize")
    text = RunInfo(
        "f", summary={keys.TRAIN_METRICS: {"step": 3, "accuracy": "high"}}, has_completed_training=True
    )
    assert "its reports give 'accuracy' as 'high', not a number;" in (worded.never_judged(text) or "")
    no_step = RunInfo(
        "h", summary={keys.TRAIN_METRICS: {"step": None, "accuracy": 0.5}}, has_completed_training=True
    )
    stepless = Stopper(StopperSpec(type="asha"), "accuracy", "maximize").never_judged(no_step) or ""
    assert stepless.startswith(
        "run h trained without a report the stopper could judge: its reports give no step;"
    )
    long = RunInfo(
        "i", summary={keys.TRAIN_METRICS: {"step": 3, "accuracy": "x" * 10_000}}, has_completed_training=True
    )
    assert len(Stopper(StopperSpec(type="asha"), "accuracy", "maximize").never_judged(long) or "") < 400
    fractional = Stopper(StopperSpec(type="asha"), "accuracy", "maximize")
    half = RunInfo(
        "g", summary={keys.TRAIN_METRICS: {"step": 2.5, "accuracy": 0.5}}, has_completed_training=True
    )
    assert "its reports give the step as 2.5, not a whole number;" in (fractional.never_judged(half) or "")
    assert Stopper(StopperSpec(), "accuracy", "maximize").never_judged(trained("e", 9)) is None  # none


def test_a_step_given_as_something_else_than_a_number_is_warned_of() -> None:
    for step, shown in (("3", "'3'"), (True, "True"), (math.inf, "inf"), (10**400, "1000000")):
        row = {"step": step, "acc": 0.5}
        run = RunInfo("s", summary={keys.TRAIN_METRICS: row}, has_completed_training=True)
        warning = Stopper(StopperSpec(type="asha"), "acc", "maximize").never_judged(run) or ""
        if step == 10**400:  # a whole number, but more steps than any rung: judged, so no warning
            assert Stopper(StopperSpec(type="asha"), "acc", "maximize").decide(run) is not None
            continue
        assert f"its reports give the step as {shown}, not a whole number;" in warning, (step, warning)


def test_every_report_since_the_last_read_is_judged_at_its_own_rung() -> None:
    # A job reports steps 1..8 between two reads: each rung's value is the first report at or past
    # it (0.2 at rung 2, 0.4 at 4, 0.8 at 8), not the newest report's (0.8 everywhere).
    stopper = Stopper(StopperSpec(type="asha", grace_period=2, reduction_factor=2), "score", "maximize")
    rows = [{"step": step, "score": step / 10} for step in range(1, 9)]
    first = stopper.decide(_run("a", 8, 0.8), rows)
    assert first is not None and first.rungs == {"2": 0.2, "4": 0.4, "8": 0.8} and not first.stop
    # a run as good at every step, read at step 3, is not cut against a's later value
    assert not stopper.decide(_run("b", 3, 0.3), [{"step": 3, "score": 0.3}]).stop  # type: ignore[union-attr]
    # a run worse at rung 2 is stopped there, on the report of that step, though newer ones came along
    worse = [{"step": step, "score": step / 20} for step in range(1, 6)]
    stop = stopper.decide(_run("c", 5, 0.25), worse)
    assert stop is not None and stop.stop and (stop.step, stop.value, stop.rungs) == (2, 0.1, {"2": 0.1})
    # rows without the judged metric (another report call of the same step) are passed over
    split = [{"step": 2, "loss": 1.0}, {"step": 2, "score": 0.9}, {"step": 3, "loss": 0.5}]
    mixed = Stopper(StopperSpec(type="asha", grace_period=2), "score", "maximize").decide(
        RunInfo("d", summary={keys.TRAIN_METRICS: split[-1]}), split
    )
    assert mixed is not None and mixed.rungs == {"2": 0.9}
    # rows of an event the run did not take (its newest report is another): the newest alone counts
    other = stopper.decide(_run("e", 4, 0.4), [{"step": 2, "score": 0.0}, {"step": 9, "score": 0.0}])
    assert other is not None and other.rungs == {"2": 0.4, "4": 0.4}


def test_a_training_read_after_its_end_counts_at_the_rungs_and_is_never_stopped() -> None:
    stopper = Stopper(StopperSpec(type="asha", grace_period=1, reduction_factor=2), "score", "maximize")
    for run_id, value in (("fast-good", 0.9), ("fast-bad", 0.1)):  # trainings quicker than a read
        rows = [{"step": step, "score": value} for step in (1, 2, 3, 4)]
        done = stopper.decide(_run(run_id, 4, value), rows, finished=True)
        assert done is not None and not done.stop and done.rungs == {"1": value, "2": value, "4": value}
    judged = stopper.decide(_run("slow", 1, 0.5))  # judged against both: below the best half
    assert judged is not None and judged.stop
    trained = RunInfo("e", summary={keys.TRAIN_METRICS: {"step": 9, "other": 1}}, has_completed_training=True)
    assert stopper.never_judged(trained) is None  # a running training was judged: no warning


def test_a_step_counted_in_floats_is_judged_and_report_writes_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    import sweepwise

    stopper = Stopper(StopperSpec(type="asha", grace_period=2), "score", "maximize")
    whole = stopper.decide(RunInfo("a", summary={keys.TRAIN_METRICS: {"step": 2.0, "score": 0.5}}))
    assert whole is not None and whole.step == 2 and whole.rungs == {"2": 0.5}
    assert stopper.decide(RunInfo("b", summary={keys.TRAIN_METRICS: {"step": 2.5, "score": 0.5}})) is None
    monkeypatch.setenv("SWEEPWISE_METRICS_FILE", str(tmp_path / "metrics.jsonl"))
    for step in (5.0, np.float64(6.0), 0.5, 7):
        sweepwise.report(step=step, loss=1.0)  # type: ignore[arg-type]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [5, 6, 0.5, 7]
    assert [type(row["step"]) for row in rows] == [int, int, float, int]


def test_a_restarted_stopper_learns_the_rungs_from_the_runs() -> None:
    spec = StopperSpec(type="asha", grace_period=1, reduction_factor=2)
    stopper = Stopper(spec, "score", "maximize")
    stopper.learn([_run("a", 1, 0.9, rungs={"1": 0.9}), _run("b", 1, 0.8, rungs={"1": 0.8})])
    stopper.learn([_run("d", 1, 0.5, rungs={"²": 0.5, "1": 10**400})])  # a tampered store: ignored
    assert stopper.decide(_run("c", 1, 0.1)).stop  # type: ignore[union-attr]
    assert Stopper(StopperSpec(), "score", "maximize").decide(_run("c", 1, 0.1)) is None  # none


def test_a_bad_stopper_is_one_line_naming_the_field(tmp_path: Path) -> None:
    from sweepwise.app.experiment import Experiment

    (tmp_path / "train.py").write_text("")
    for stopper, words in (
        ({"type": "hyperband"}, "stopper.type"),
        ({"type": "asha", "reduction_factor": 1}, "stopper.reduction_factor"),
        ({"type": "asha", "grace": 2}, "stopper.grace"),
        ({"type": "asha", "grace_period": 10, "max_t": 10}, "must be greater than grace_period (10)"),
        ({"type": "median", "max_t": 1}, "stopper.max_t"),
        ({"type": "asha", "goal": "lower"}, "stopper.goal"),
        (
            {"type": "asha", "metric": "time", "goal": "minimize"},
            "stopper.metric: is 'time', which every report",
        ),
        ({"type": "asha", "metric": "step", "goal": "minimize"}, "stopper.metric: is 'step'"),
        ({"type": "asha", "metric": " "}, "stopper.metric: is empty"),
        (
            {"type": "asha", "metric": "loss"},
            "stopper.goal: is required when stopper.metric ('loss') is not the experiment's metric "
            "('score'): add goal: minimize or goal: maximize to the stopper",
        ),
        (
            {"type": "median", "goal": "minimize"},
            "stopper.goal: is minimize but the experiment's goal for the same metric ('score') is maximize",
        ),
    ):
        data = {"name": "exp", "stopper": stopper, "train": {"cmd": ["python", "train.py"]}}
        with pytest.raises(ConfigError) as error:
            Experiment.from_dict(data, base_dir=tmp_path)
        assert words in str(error.value), str(error.value)
    for stopper in (
        {"type": "asha", "metric": "score"},
        {"type": "none", "metric": "loss"},
        {"type": "asha", "metric": "score", "goal": "maximize"},
    ):
        data = {"name": "exp", "stopper": stopper, "train": {"cmd": ["python", "train.py"]}}
        assert Experiment.from_dict(data, base_dir=tmp_path).spec.stopper.type == stopper["type"]


def test_resuming_with_a_stopper_that_judges_another_metric_or_way_is_refused(tmp_path: Path) -> None:
    # The values at the rungs are recorded in the runs: a stopper judging something else next
    # would compare losses with accuracies. Other stopper changes are allowed.
    from sweepwise.app.experiment import Experiment

    (tmp_path / "train.py").write_text("")

    def experiment(stopper: dict[str, Any] | str) -> Experiment:
        data = {"name": "exp", "metric": "acc", "stopper": stopper, "train": {"cmd": ["python", "train.py"]}}
        return Experiment.from_dict(data, base_dir=tmp_path)

    on_loss = {"type": "asha", "metric": "loss", "goal": "minimize"}
    stored = experiment(on_loss).record()
    for stopper, field, words in (
        (
            {"type": "asha"},
            "stopper.metric",
            "the stopper judged 'loss' (minimize) and would now judge 'acc' (maximize)",
        ),
        ({**on_loss, "goal": "maximize"}, "stopper.goal", "would now judge 'loss' (maximize)"),
    ):
        with pytest.raises(ConfigError) as info:
            experiment(stopper).check_resume(stored)
        assert info.value.field == field and words in info.value.message, info.value.message
    for stopper in ({**on_loss, "grace_period": 3}, {**on_loss, "type": "median"}, "none"):
        experiment(stopper).check_resume(stored)
    experiment(on_loss).check_resume(experiment("none").record())  # no stopper before
    legacy = experiment("none").record()
    legacy["spec"].pop("stopper")  # an experiment recorded before stoppers existed
    experiment(on_loss).check_resume(legacy)


# -- sweeps ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_asha_stops_the_worst_runs_through_the_cancel_path_and_each_job_runs_once(tmp_path: Path) -> None:
    spec = write_sweep(tmp_path, {"type": "asha", "grace_period": 5, "reduction_factor": 3, "max_t": STEPS})
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, env={"STEP_SLEEP": "0.1"}, timeout=600)
    check_asha_sweep(tmp_path, "es", result)
    assert "stopped at step" in result.stderr
    check_rung_scores_reach_the_optimizer(tmp_path, "es")


# A job whose score is x * step / 60 (a larger x is better at every step), where the worse half
# steps fast (a small model) and the better half slowly: between two reads of the controller a
# fast job reports many steps. Each rung must hold the value at that rung's step, not the newest.
_FAST_WORSE_TRAIN = """
import os, sys, time
import sweepwise
x = float(sys.argv[1].split("=", 1)[1])
me = os.environ["SWEEPWISE_RUN_ID"]
for step in range(1, 61):
    with open(os.path.join(os.environ["MARKERS"], me + ".steps"), "a") as f:
        f.write(f"{step}\\n")
    sweepwise.report(step=step, score=x * step / 60)
    time.sleep(0.02 if x < 0.5 else 0.15)
sweepwise.report_result(score=x)
"""


@pytest.mark.slow
def test_runs_read_many_steps_apart_are_judged_at_the_same_rungs(tmp_path: Path) -> None:
    write_sweep(tmp_path, {"type": "asha", "grace_period": 2, "reduction_factor": 2})
    (tmp_path / "train.py").write_text(_FAST_WORSE_TRAIN)
    spec = yaml.safe_load((tmp_path / "sweep.yaml").read_text())
    spec.update(max_parallel=4, monitoring_interval=1.0, scheduler={"type": "grid_search", "points": 4})
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    result = cli("run", "sweep.yaml", "--quiet", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    by_x = sorted(status_json(tmp_path, "es")["runs"], key=lambda row: float(row["suggestion"]["x"]))
    assert [round(float(row["suggestion"]["x"]), 3) for row in by_x] == [0.0, 0.333, 0.667, 1.0]
    for row in by_x[2:]:  # the two best at every step train to their end, by their own marker files
        assert row["status"] == "completed" and job_steps(tmp_path, row["run_id"])[-1] == 60, row


# The sweep's job, reporting a training loss (lower for a larger x) as it goes and the score only
# at its end. A larger x trains slower, so in each batch the lowest loss reaches a rung last, and
# is judged against the others: a stopper that took the loss the wrong way would stop it.
_LOSS_TRAIN = TRAIN.replace(
    f"sweepwise.report(step=step, score=x * step / {STEPS})",
    "sweepwise.report(step=step, loss=1.0 - x + 1.0 / step)",
).replace('time.sleep(float(os.environ.get("STEP_SLEEP", "0.05")))', "time.sleep(0.02 + 0.2 * x)")
assert _LOSS_TRAIN.count("0.2 * x") == 1 and "loss=" in _LOSS_TRAIN


@pytest.mark.slow
def test_a_stopper_on_the_training_loss_stops_the_highest_losses_and_never_scores_a_run_with_one(
    tmp_path: Path,
) -> None:
    stopper = {"type": "asha", "grace_period": 5, "reduction_factor": 3, "metric": "loss", "goal": "minimize"}
    spec = write_sweep(tmp_path, stopper)
    (tmp_path / "train.py").write_text(_LOSS_TRAIN)
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    runs = status_json(tmp_path, "es")["runs"]
    x = {row["run_id"]: row["suggestion"]["x"] for row in runs}
    stopped = [row["run_id"] for row in runs if row["status"] == "stopped"]
    completed = [row for row in runs if row["status"] == "completed"]
    assert stopped and len(stopped) + len(completed) == len(runs), [row["status"] for row in runs]
    lowest_loss = max(x, key=x.__getitem__)  # never stopped: no run has a lower loss at any rung
    assert lowest_loss not in stopped and all(x[run_id] < x[lowest_loss] for run_id in stopped)
    for row in runs:  # a stopped run's score would be a loss: it has none; a completed one its x
        reached = max(job_steps(tmp_path, row["run_id"]))
        if row["status"] == "stopped":
            assert row["score"] is None and reached < STEPS, row
        else:
            assert row["score"] == pytest.approx(x[row["run_id"]]) and reached == STEPS, row
    started = Counter((tmp_path / "markers" / "train.txt").read_text().split())
    assert set(started.values()) == {1}, started
    best = json.loads(cli("best", "es", "--json", cwd=tmp_path).stdout)
    assert best["run_id"] == lowest_loss, best
    check_rung_scores_reach_the_optimizer(tmp_path, "es", judged_the_score=False)


@pytest.mark.slow
def test_a_stopper_whose_metric_no_report_carries_warns_once_and_stops_nothing(tmp_path: Path) -> None:
    spec = write_sweep(tmp_path, {"type": "asha", "grace_period": 5, "reduction_factor": 3}, trials=3)
    (tmp_path / "train.py").write_text(_LOSS_TRAIN)
    result = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    warnings = [
        line for line in result.stderr.splitlines() if "without a report the stopper could judge" in line
    ]
    assert len(warnings) == 1, result.stderr
    assert "its reports carry loss but not 'score', the metric it judges;" in warnings[0]
    assert [row["status"] for row in status_json(tmp_path, "es")["runs"]] == ["completed"] * 3


@pytest.mark.slow
def test_a_controller_killed_between_the_decision_and_the_cancel_stops_the_run_once(tmp_path: Path) -> None:
    check_a_kill_between_the_decision_and_the_cancel(tmp_path)


@pytest.mark.slow
def test_a_controller_killed_after_the_sigterm_of_a_stop_before_its_sigkill_stops_the_run_once(
    tmp_path: Path,
) -> None:
    # The cancel returns at once (docs/design.md, "Cancelling a job"): a controller killed then
    # leaves a job that trains on after SIGTERM running until its supervisor's SIGKILL or the
    # restarted controller's cancel.
    check_a_kill_between_the_decision_and_the_cancel(tmp_path, after_the_cancel=True)


class _CancelFailsOnce:
    """The sweep's real local dispatcher, but the first cancel of each job fails (a cluster that
    did not answer); that job is held at its step (`markers/<run>.hold`) until a cancel reaches it."""

    def __init__(self, inner: Any, markers: Path) -> None:
        self.inner, self.markers = inner, markers
        self.run_of: dict[str, str] = {}
        self.cancels: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def dispatch(self, job: Any) -> str:
        dispatch_id: str = self.inner.dispatch(job)
        self.run_of[dispatch_id] = job.run_id
        return dispatch_id

    def cancel(self, dispatch_id: str) -> None:
        self.cancels[dispatch_id] += 1
        if self.cancels[dispatch_id] == 1:
            (self.markers / f"{self.run_of[dispatch_id]}.hold").touch()
            raise DispatchError("the cluster did not answer")
        self.inner.cancel(dispatch_id)


@pytest.mark.slow
def test_a_cancel_that_fails_is_tried_again_until_the_stopped_job_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sweepwise.app.experiment import Experiment
    from sweepwise.stores.sql import SQLStore

    monkeypatch.chdir(tmp_path)  # the runs dir, `runs/`, is relative to it
    stopper = {"type": "asha", "grace_period": 2, "reduction_factor": 3}
    spec = write_sweep(tmp_path, stopper, trials=3, step_sleep=0.2)
    experiment = Experiment.from_file(spec)
    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    try:
        store.ensure_experiment("es", experiment.record())
        controller = experiment.build_controller(store)
        flaky = _CancelFailsOnce(controller.dispatcher, tmp_path / "markers")
        controller.dispatcher = flaky
        runs = {run.run_id: run for run in controller.run()}
    finally:
        store.close()
    held = [path.stem for path in (tmp_path / "markers").glob("*.hold")]
    assert held, "no run was stopped"
    finals = {run_id: max(job_steps(tmp_path, run_id)) for run_id in held}
    for run_id in held:  # held at its step by the failed cancel, then ended by the one tried again
        assert runs[run_id].status is JobStatus.STOPPED and finals[run_id] < STEPS
        (tmp_path / "markers" / f"{run_id}.hold").unlink()
    time.sleep(1.0)  # a held job still alive would go on to another step by now
    assert {run_id: max(job_steps(tmp_path, run_id)) for run_id in held} == finals
    assert sorted(flaky.cancels.values()) == [2] * len(held)  # tried again once: it then succeeded


@pytest.mark.slow
def test_stopped_jobs_that_train_on_after_sigterm_are_killed_and_never_run_beside_more_jobs(
    tmp_path: Path,
) -> None:
    # Several stops decided at once, of jobs that take SIGTERM slowly: the controller signals them
    # all and goes on; each is SIGKILLed after the grace period, and a stopped run keeps its slot
    # until its job is gone (docs/design.md, "Cancelling a job").
    stopper = {"type": "asha", "grace_period": 5, "reduction_factor": 3, "max_t": STEPS}
    local = {"type": "local", "grace_period": 1}
    spec_path = write_sweep(tmp_path, stopper, dispatcher=local, step_sleep=0.2)
    spec = yaml.safe_load(spec_path.read_text())
    spec["scheduler"] = {"type": "async_capped", "max_trials": 9}
    spec_path.write_text(yaml.safe_dump(spec))
    train = tmp_path / "train.py"
    train.write_text(STUBBORN_PREAMBLE + train.read_text())
    result = cli("run", str(spec_path), "--quiet", cwd=tmp_path, timeout=600)
    check_asha_sweep(tmp_path, "es", result)
    markers = tmp_path / "markers"
    stopped = [row["run_id"] for row in status_json(tmp_path, "es")["runs"] if row["status"] == "stopped"]
    for run_id in stopped:  # SIGTERM once, trained on, then killed: its steps end short of the last
        assert (markers / f"{run_id}.terms").read_text() == "term\n", run_id
    beside = {path.stem: int(path.read_text()) for path in markers.glob("*.beside")}
    assert len(beside) == 9 and max(beside.values()) <= spec["max_parallel"] - 1, beside


_DIVERGING_TRAIN = """
import math, os, sys, time
import sweepwise
lr = float(sys.argv[1].split("=", 1)[1])
run_id = os.environ["SWEEPWISE_RUN_ID"]
with open(os.path.join("markers", "train.txt"), "a") as f:
    f.write(run_id + "\\n")
for step in range(1, STEPS + 1):
    with open(os.path.join("markers", run_id + ".steps"), "a") as f:
        f.write(f"{step}\\n")
    sweepwise.report(step=step, loss=math.nan if lr > 10 else lr / step)  # lr 100 diverges at once
    time.sleep(0.1)
sweepwise.report_result(loss=lr / STEPS)
""".replace("STEPS", str(STEPS))


@pytest.mark.slow
def test_a_run_whose_loss_is_nan_is_stopped_at_the_grace_period_and_the_sweep_goes_on(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(_DIVERGING_TRAIN)
    (tmp_path / "markers").mkdir()
    spec = {
        "name": "nan",
        "metric": "loss",
        "goal": "minimize",
        "max_parallel": 3,
        "monitoring_interval": 0.2,
        "scheduler": {"type": "batched_synced", "max_trials": 3, "batch_size": 3},
        "optimizer": {"type": "grid"},
        "stopper": {"type": "asha", "grace_period": 3, "reduction_factor": 3},
        "train": {"cmd": ["python", "train.py"]},
        "parameters": {"lr": {"distribution": "categorical", "choices": [0.1, 1.0, 100.0]}},
    }
    (tmp_path / "sweep.yaml").write_text(json.dumps(spec))
    result = cli("run", "sweep.yaml", "--quiet", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    runs = {row["suggestion"]["lr"]: row for row in status_json(tmp_path, "nan")["runs"]}
    steps = {lr: job_steps(tmp_path, row["run_id"]) for lr, row in runs.items()}
    assert runs[100.0]["status"] == "stopped" and 3 <= max(steps[100.0]) < STEPS, steps[100.0]
    for lr in (0.1, 1.0):  # alone at their rungs with values, too few to judge: never stopped
        assert runs[lr]["status"] == "completed" and steps[lr] == list(range(1, STEPS + 1))
    started = Counter((tmp_path / "markers" / "train.txt").read_text().split())
    assert sorted(started.values()) == [1, 1, 1]
    best = cli("best", "nan", "--json", cwd=tmp_path)
    assert json.loads(best.stdout)["parameters"]["lr"] == 0.1, best.stdout


def test_status_counts_stopped_runs(tmp_path: Path) -> None:
    # A STOPPED run is a finished trial: `status --json` counts it under its own key.
    from sweepwise.stores.sql import SQLStore

    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    store.init_run("r1", group="es")
    store.update_run_summary(
        "r1", {keys.STOP: {"step": 3, "value": 0.2, "at": 1.0}, keys.OBSERVATION_SCORE: 0.2}
    )
    from sweepwise.core.models import EventKind, JobEvent, JobTypes

    store.apply_events([JobEvent("r1", JobTypes.LAUNCH_TRAINING, EventKind.STARTED, 1.0, "d")])
    store.apply_events(
        [JobEvent("r1", JobTypes.LAUNCH_TRAINING, EventKind.FINISHED, 4.0, "d", exit_code=-15)]
    )
    store.close()
    data = json.loads(cli("status", "es", "--json", cwd=tmp_path).stdout)
    assert data["counts"]["stopped"] == 1
    (row,) = data["runs"]
    assert (row["status"], row["score"], row["cost"], row["runtime"]) == ("stopped", 0.2, 3.0, 3.0)
    assert row["stopped_at"] == {"step": 3, "value": 0.2}  # where, and on what value
    table = cli("status", "es", cwd=tmp_path)  # piped: one line per run, whatever the width
    assert "STOPPED at step 3" in table.stdout, table.stdout


def test_a_stopped_runs_cost_is_the_cost_its_reports_give(tmp_path: Path) -> None:
    # Completed runs are costed in the unit their results' `cost` gives: a stopped run is costed
    # in the same unit when its reports carry one (docs/optimizers.md, "What a stopped run is").
    from sweepwise.core.models import EventKind, JobEvent, JobTypes
    from sweepwise.stores.sql import SQLStore

    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    for run_id, row in (
        ("r1", {"step": 2, "score": 0.1, "cost": 200.0}),
        ("r2", {"step": 2, "cost": "lots"}),
    ):
        store.init_run(run_id, group="es")
        store.update_run_summary(
            run_id, {keys.STOP: {"step": 2, "value": 0.1, "at": 1.0}, keys.OBSERVATION_SCORE: 0.1}
        )
        start = JobEvent(run_id, JobTypes.LAUNCH_TRAINING, EventKind.STARTED, 1.0, "d")
        report = JobEvent(run_id, JobTypes.LAUNCH_TRAINING, EventKind.METRICS, 2.0, "d", metrics=row)
        store.apply_events([start, report])
        store.apply_events(
            [JobEvent(run_id, JobTypes.LAUNCH_TRAINING, EventKind.FINISHED, 4.0, "d", exit_code=-15)]
        )
    store.close()
    costs = {
        row["run_id"]: row["cost"]
        for row in json.loads(cli("status", "es", "--json", cwd=tmp_path).stdout)["runs"]
    }
    assert costs == {"r1": 200.0, "r2": 3.0}  # a cost that is not a number: its runtime


def test_scores_at_rungs_written_after_a_runs_observation_was_read_reach_the_optimizer() -> None:
    # a training read after its end: its values at the rungs are committed after its score; the
    # sweep's observations then hold them, as a restarted controller would read them
    from sweepwise.core import keys
    from sweepwise.core.records import RunInfo
    from sweepwise.core.runs import RunList
    from sweepwise.schedulers.base import ObservationLog

    def completed(**more: object) -> RunInfo:
        summary = {keys.OBSERVATION_SUGGESTION: {"x": 1}, keys.OBSERVATION_SCORE: 0.5, keys.TRAIN_STEP: 9}
        return RunInfo(
            "a",
            summary={**summary, **more},
            has_started_training=True,
            has_completed_training=True,
            has_started_eval=True,
            has_been_evaluated=True,
        )

    runs, log = RunList(), ObservationLog()
    runs.upsert(completed())
    assert [o.rungs for o in log.collect(runs)] == [None]
    runs.upsert(completed(**{keys.OBSERVATION_RUNGS: {"1": 0.1, "3": 0.3}}))
    assert [o.rungs for o in log.collect(runs)] == [{1: 0.1, 3: 0.3}]
    assert [o.rungs for o in log.collect(runs)] == [{1: 0.1, 3: 0.3}]  # read once


def test_observations_say_how_far_a_run_trained_and_whether_it_was_stopped() -> None:
    from sweepwise.core import keys
    from sweepwise.core.lifecycle import observation_of
    from sweepwise.core.records import RunInfo

    base = {keys.OBSERVATION_SUGGESTION: {"x": 1}, keys.OBSERVATION_SCORE: 0.5, keys.OBSERVATION_COST: 2.0}
    completed = RunInfo(
        "a",
        summary={**base, keys.TRAIN_STEP: 27},
        has_started_training=True,
        has_completed_training=True,
        has_started_eval=True,
        has_been_evaluated=True,
    )
    stopped = RunInfo(
        "b",
        summary={**base, keys.TRAIN_STEP: 3, keys.STOP: {"step": 3, "value": 0.5, "at": 1.0}},
        has_started_training=True,
        is_stopped=True,
    )
    done, early = observation_of(completed), observation_of(stopped)
    assert done is not None and (done.step, done.stopped, done.rungs) == (27, False, None)
    assert early is not None and (early.step, early.stopped, early.score) == (3, True, 0.5)
    unscored = RunInfo(  # stopped by a stopper judging another metric, with no score in its report
        "d",
        summary={
            **{key: value for key, value in base.items() if key != keys.OBSERVATION_SCORE},
            keys.STOP: {"step": 4, "value": 2.5, "at": 1.0},
        },
        has_started_training=True,
        is_stopped=True,
    )
    lacking = observation_of(unscored)
    assert lacking is not None and lacking.is_failure and (lacking.step, lacking.stopped) == (4, True)
    diverged = RunInfo(
        "c",
        summary={**base, keys.OBSERVATION_SCORE: "NaN", keys.STOP: {"step": 2, "value": "NaN", "at": 1.0}},
        has_started_training=True,
        is_stopped=True,
    )
    failed = observation_of(diverged)  # the optimizer steers away from it, as from a failure
    assert failed is not None and failed.is_failure and failed.stopped and failed.step == 2
    passed = RunInfo(  # the scores at the rungs it passed, as the controller wrote them; odd ones dropped
        "e",
        summary={
            **base,
            keys.TRAIN_STEP: 27,
            keys.OBSERVATION_RUNGS: {
                **{"3": 0.1, "9": 0.3, "x": 0.2, "1": "NaN", "2": True, "4": "0.5"},
                **{"²": 0.4, "5": 10**400, "6": math.inf},
            },
        },
        has_started_training=True,
        has_completed_training=True,
        has_started_eval=True,
        has_been_evaluated=True,
    )
    learnt = observation_of(passed)
    assert learnt is not None and learnt.rungs == {3: 0.1, 9: 0.3}
