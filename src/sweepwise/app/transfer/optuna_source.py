"""Runs to import from an Optuna study, read with Optuna's own API from its storage URL.

Only COMPLETE trials are taken: a trial's `params` become the run's parameters, its
`value` the score, its duration (seconds) the cost and runtime, and its user attributes
the run's result. The study's direction is the experiment's goal.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any

from sweepwise.app.transfer.imported import ImportedRun
from sweepwise.core.errors import ConfigError, MissingExtraError


@dataclass(frozen=True)
class Study:
    """What an Optuna study holds for sweepwise.

    Attributes:
        runs: its COMPLETE trials, in trial order.
        goal: `maximize` or `minimize`, from the study's direction.
        metric: the study's metric name, or None when it names none.
        skipped: trials left out (not COMPLETE, or without a finite value).
    """

    runs: list[ImportedRun]
    goal: str
    metric: str | None
    skipped: int


def _optuna() -> Any:
    try:
        return importlib.import_module("optuna")
    except ImportError:
        raise MissingExtraError("optuna", "optuna") from None


def _load(optuna: Any, storage: str, study: str) -> Any:
    from sweepwise.stores.sqlite_reader import sqlite_path

    path = sqlite_path(storage)
    if path is not None and not path.is_file():  # Optuna would create an empty database there
        raise ConfigError("--optuna-storage", f"no such file {path}; give the URL of an Optuna storage")
    try:
        names = [summary.study_name for summary in optuna.get_all_study_summaries(storage=storage)]
    except Exception as exc:  # Optuna raises whatever its storage's driver raises
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            "--optuna-storage", f"cannot read an Optuna storage at {storage} ({reason}); check the URL"
        ) from None
    if study not in names:
        listed = ", ".join(names) or "none"
        raise ConfigError("--study", f"no study {study!r} in {storage} (studies: {listed}); fix the name")
    return optuna.load_study(study_name=study, storage=storage)


def read_study(storage: str, study: str) -> Study:
    """The COMPLETE trials of Optuna study `study` at `storage` (an Optuna storage URL).

    Raises:
        ConfigError: the storage cannot be read, has no such study, or the study has
            several objectives (sweepwise ranks runs by one score).
        MissingExtraError: Optuna is not installed.
    """
    optuna = _optuna()
    loaded = _load(optuna, storage, study)
    directions = list(loaded.directions)
    if len(directions) != 1:
        raise ConfigError(
            "--study",
            f"study {study!r} has {len(directions)} objectives; sweepwise imports single-objective studies",
        )
    goal = "maximize" if directions[0] == optuna.study.StudyDirection.MAXIMIZE else "minimize"
    complete = optuna.trial.TrialState.COMPLETE
    runs: list[ImportedRun] = []
    skipped = 0
    for trial in loaded.get_trials(deepcopy=False):
        value = trial.value if trial.state == complete else None
        if value is None or not math.isfinite(float(value)):
            skipped += 1
            continue
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        runs.append(
            ImportedRun(
                params=dict(trial.params),
                score=float(value),
                cost=duration,
                runtime=duration or 0.0,
                result=dict(trial.user_attrs),
            )
        )
    names = getattr(loaded, "metric_names", None)
    return Study(runs, goal, names[0] if names else None, skipped)


__all__ = ["Study", "read_study"]
