"""Early stopping: after each report of a running training job, decide whether it goes on.

The spec's `stopper` (docs/optimizers.md, "Early stopping") is one of

- `none` (the default): every run trains to its end;
- `asha`: asynchronous successive halving. Rungs sit at `grace_period * reduction_factor**k`
  steps (up to `max_t`). The first report at or past a rung (carrying the judged metric)
  records the run's value there, whichever read of the job's reports brought it;
  a run whose value is not in the best `1 / reduction_factor` of the values recorded at
  that rung so far is stopped. A run is never stopped before `grace_period` steps;
  one whose value is NaN (or a loss of +inf: diverged) is stopped at the first rung it
  reaches, before any other run has reported;
- `median`: at the same rungs, a run whose value is
  worse than the median of the values recorded there is stopped, once `min_samples` runs
  have been recorded at that rung.

A stopper keeps no state of its own: the values at each rung live in each run's summary
(`adaptive/rungs`), written with the decision, so a restarted controller rebuilds the
same table from the store.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sweepwise.core import keys
from sweepwise.core.container import CONFIG_ERROR
from sweepwise.core.jsonsafe import NON_FINITE, finite_number, rung_scores
from sweepwise.core.records import RunInfo

_QUICK_RUNS = 3
"""Runs whose training had ended before their reports were read, while none was judged, for a warning."""


class StopperSpec(BaseModel):
    """The spec's `stopper`: `none`, `asha` or `median`, with its settings."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["none", "asha", "median"] = "none"
    grace_period: Annotated[StrictInt, Field(ge=1, description="steps every run gets before any stop")] = 1
    reduction_factor: Annotated[
        StrictInt, Field(ge=2, description="rungs are this many times apart; asha keeps 1/this at each")
    ] = 3
    max_t: Annotated[StrictInt | None, Field(ge=1, description="the last rung's step (none: no limit)")] = (
        None
    )
    min_samples: Annotated[StrictInt, Field(ge=1, description="median: values needed at a rung")] = 3
    metric: str | None = Field(default=None, description="the reported metric judged (default: the spec's)")
    goal: Literal["maximize", "minimize"] | None = Field(
        default=None, description="which way `metric` is better (default: the spec's goal)"
    )

    @field_validator("metric")
    @classmethod
    def _a_metric(cls, metric: str | None) -> str | None:
        if metric in ("step", "time"):
            raise PydanticCustomError(
                CONFIG_ERROR,
                f"is {metric!r}, which every report carries as its own {metric}, not a metric; name a "
                "metric the training job reports with sweepwise.report(step=..., <metric>=...)",
            )
        if metric is not None and not metric.strip():
            raise PydanticCustomError(CONFIG_ERROR, "is empty; name a reported metric, or leave it out")
        return metric

    @field_validator("max_t")
    @classmethod
    def _a_rung_before_the_end(cls, max_t: int | None, info: ValidationInfo) -> int | None:
        grace, kind = info.data.get("grace_period"), info.data.get("type")
        if max_t is not None and isinstance(grace, int) and max_t <= grace and kind != "none":
            raise PydanticCustomError(
                CONFIG_ERROR,
                f"is {max_t}; it must be greater than grace_period ({grace}): no run is stopped before "
                "grace_period nor at max_t, so this stopper would stop nothing; raise max_t or lower "
                "grace_period",
            )
        return max_t

    @model_validator(mode="after")
    def _settings_of_its_type(self) -> StopperSpec:
        if "min_samples" in self.model_fields_set and self.type != "median":
            raise PydanticCustomError(
                CONFIG_ERROR,
                f"min_samples: only the median stopper takes it (this one is {self.type!r}); remove it",
            )
        return self


@dataclass(frozen=True, slots=True)
class Decision:
    """What the stopper decided for one report: the rungs to record, and whether to stop.

    `value` is the judged metric's; `score` is what a stopped run is scored with, in the
    experiment's metric (None when the report did not carry it; NaN when the run diverged).
    """

    rungs: dict[str, float]
    stop: bool
    step: int
    value: float
    score: float | None = None


class Stopper:
    """Decides, report by report, which running trainings to stop.

    Args:
        spec: the spec's `stopper`.
        metric: the experiment's metric (judged unless the stopper names another).
        goal: the experiment's goal, `maximize` or `minimize` (unless the stopper has its own).
    """

    def __init__(self, spec: StopperSpec, metric: str, goal: str) -> None:
        self.spec = spec
        self.metric = spec.metric or metric
        self.score_metric = metric
        self.maximize = (spec.goal or goal) != "minimize"
        self._recorded: dict[int, dict[str, float]] = defaultdict(dict)  # rung -> run id -> value
        self._warned = False
        self._too_quick = 0  # runs whose reports were first read after their training, none judged yet
        self._judged_running = False  # a report of a running training was judged (or learnt at a restart)

    @property
    def active(self) -> bool:
        """False for `none`: no run is ever stopped."""
        return self.spec.type != "none"

    def rungs(self) -> Iterable[int]:
        """The rungs' steps, smallest first."""
        factor = self.spec.reduction_factor
        rung = self.spec.grace_period
        while self.spec.max_t is None or rung <= self.spec.max_t:
            yield rung
            if rung > 10**12:
                return
            rung *= factor

    def learn(self, runs: Iterable[RunInfo]) -> None:
        """Take the values at rungs that `runs` recorded (a restarted controller's start)."""
        for run in runs:
            self._remember(run.run_id, run.summary.get(keys.RUNGS))
        self._judged_running = self._judged_running or bool(self._recorded)

    def decide(
        self, run: RunInfo, rows: Sequence[Mapping[str, Any]] | None = None, *, finished: bool = False
    ) -> Decision | None:
        """The decision after the new reports of `run`'s training; None when it has nothing to judge.

        Args:
            run: the run, its newest report in its summary.
            rows: its reports since the last decision, oldest first, the newest last (default:
                the newest alone). Each is judged in turn: a rung's value is the first report
                at or past it, whichever read brought it.
            finished: its training has ended (before its reports were read): its values at the
                rungs are recorded, for the runs judged after it, and it is never stopped.
        """
        if not self.active or keys.STOP in run.summary:
            return None
        newest = run.summary.get(keys.TRAIN_METRICS)
        if not isinstance(newest, Mapping):
            return None
        if not rows or rows[-1] != newest:  # rows of an event the run did not take
            rows = [newest]
        done = run.summary.get(keys.RUNGS)
        done = dict(done) if isinstance(done, Mapping) else {}
        decision = None
        for row in rows:
            step, reported = _whole(row.get("step")), row.get(self.metric)
            value = finite_number(reported)
            diverged = value is None and _diverged(reported, self.maximize)
            if step is None or (value is None and not diverged):
                continue
            reached = [str(rung) for rung in self.rungs() if rung <= step and str(rung) not in done]
            if not reached:
                continue
            at_end = self.spec.max_t is not None and step >= self.spec.max_t  # trained as long as any run
            if value is None:  # diverged: worse than any value, so stopped at its rung whoever else reported
                if at_end or finished:
                    continue
                judged = NON_FINITE.get(reported, math.nan) if isinstance(reported, str) else reported
                shown = judged if isinstance(judged, float) else math.nan  # NaN or the wrong infinity
                return Decision(done, True, step, shown, math.nan)
            new = dict.fromkeys(reached, value)
            self._remember(run.run_id, new)
            self._judged_running = self._judged_running or not finished
            done.update(new)
            stop = not (at_end or finished) and any(
                self._below_cut(int(rung), run.run_id, value) for rung in new
            )
            score = value if self.metric == self.score_metric else finite_number(row.get(self.score_metric))
            decision = Decision(dict(done), stop, step, value, score)
            if stop:
                break
        return decision

    def never_judged(self, run: RunInfo) -> str | None:
        """A warning that `run` trained past the grace period while the stopper has judged no
        report of any run (it may be set up wrong); at most once, else None."""
        if self._warned or not self.active or self._judged_running:
            return None
        if keys.RUNGS in run.summary or keys.STOP in run.summary:
            return None
        row = run.summary.get(keys.TRAIN_METRICS)
        if not isinstance(row, Mapping):
            return None
        given = row.get("step")
        reached = finite_number(given)
        if reached is not None and reached < self.spec.grace_period:
            return None
        metric = self.metric
        if given is None:
            why = "its reports give no step"
            fix = "say how far it trained: sweepwise.report(step=<the epoch or step>, ...)"
        elif _whole(given) is None:
            why = f"its reports give the step as {_shown(given)}, not a whole number"
            fix = "count steps in whole numbers: sweepwise.report(step=<an int>, ...)"
        elif finite_number(row.get(metric)) is not None:
            self._too_quick += 1  # one such run is chance; several before any judgement are not
            if self._too_quick < _QUICK_RUNS:
                return None
            why = "its training had ended when the controller first read its reports, as had the ones before"
            fix = "a training shorter than monitoring_interval cannot be stopped: lower monitoring_interval"
        elif metric in row:
            why = f"its reports give {metric!r} as {_shown(row[metric])}, not a number"
            fix = f"report it as a number: sweepwise.report(step=..., {metric}=<a float>)"
        else:
            others = ", ".join(sorted(str(key) for key in row if key != "step")) or "only the step"
            why = f"its reports carry {others} but not {metric!r}, the metric it judges"
            fix = (
                f"report it from the training job with sweepwise.report(step=..., {metric}=...), "
                "or name one they carry with stopper.metric (and stopper.goal)"
            )
        self._warned = True
        how_far = f"trained to step {_shown(given)}" if given is not None else "trained"
        return f"run {run.run_id} {how_far} without a report the stopper could judge: {why}; {fix}"

    def _remember(self, run_id: str, rungs: Any) -> None:
        for rung, number in rung_scores(rungs).items():
            self._recorded[rung][run_id] = number

    def _below_cut(self, rung: int, run_id: str, value: float) -> bool:
        values = sorted(self._recorded[rung].values(), reverse=self.maximize)  # best first
        if self.spec.type == "asha":
            keep = max(1, len(values) // self.spec.reduction_factor)
            if len(values) < self.spec.reduction_factor:
                return False  # too few to judge: ASHA promotes the first ones
            cut = values[keep - 1]
        else:
            if len(values) < self.spec.min_samples:
                return False
            cut = _median(values)
        return value < cut if self.maximize else value > cut


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _diverged(value: Any, maximize: bool) -> bool:
    """NaN, or the infinity on the wrong side of the goal (a loss of +inf when minimising).

    Strings too: `report` writes a non-finite number as `"NaN"`, `"Infinity"` or `"-Infinity"`.
    """
    if isinstance(value, str):
        value = NON_FINITE.get(value)
    if isinstance(value, bool) or not isinstance(value, float):
        return False
    return math.isnan(value) or value == (-math.inf if maximize else math.inf)


def _shown(value: Any) -> str:
    """A reported value as a warning quotes it: its repr, cut short (a job may report anything)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _whole(step: Any) -> int | None:
    """A report's step as an int: a whole number, or a float with no fraction (5.0); else None."""
    if isinstance(step, bool) or not isinstance(step, int | float):
        return None
    if isinstance(step, float) and not (math.isfinite(step) and step.is_integer()):
        return None
    return int(step)


__all__ = ["Decision", "Stopper", "StopperSpec"]
