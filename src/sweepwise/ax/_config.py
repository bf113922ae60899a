"""`AxScheduler`'s config: its keys, their defaults and checks, and the warning for unknown keys."""

from __future__ import annotations

import math
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from sweepwise.core.errors import ConfigError, SweepwiseWarning

DEFAULTS: dict[str, Any] = {
    "monitoring_interval": 10.0,
    "max_trial_monitoring_time": 86400.0,
    "job_output_dir": "~/ax_scheduler_output",
    "cleanup_after_completion": False,
    "synchronous": False,
    "max_concurrent_trials": None,
    "store": None,
    "experiment_name": None,
    "container_engine": None,
}

# Keys the seed's code reads that sweepwise does not implement: accepted, with a warning saying so.
SEED_ONLY = frozenset(
    {
        "early_stopping_threshold",
        "early_stopping_begin_at",
        "ref_point",
        "restart_from_checkpoint",
        "enable_checkpoint",
        "work_dir",
        "checkpoint_name",
        "enable_hv",
    }
)

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _positive(value: Any) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return None if ok else "must be a number of seconds > 0"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be True or False"


def _count_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return None
    return "must be an integer >= 1, or None for the runner's capacity"


def _text_or_none(value: Any) -> str | None:
    return None if value is None or (isinstance(value, str) and value) else "must be a non-empty string"


def _path(value: Any) -> str | None:
    return None if isinstance(value, str | os.PathLike) and str(value) else "must be a directory path"


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "monitoring_interval": _positive,
    "max_trial_monitoring_time": _positive,
    "job_output_dir": _path,
    "cleanup_after_completion": _flag,
    "synchronous": _flag,
    "max_concurrent_trials": _count_or_none,
    "store": _text_or_none,
    "experiment_name": _text_or_none,
    "container_engine": _text_or_none,
}


def read_config(config: Mapping[str, Any] | None, stacklevel: int = 3) -> dict[str, Any]:
    """The full config: `config` over the defaults, each known key checked.

    An unknown key is ignored with a `SweepwiseWarning`, once per key per process
    (a script that builds many schedulers says it once).

    Args:
        config: the user's config (None for the defaults).
        stacklevel: where the warning points (the caller of `AxScheduler(...)`).

    Raises:
        ConfigError: `config` is not a mapping, or a known key has a wrong value
            (the field is `config.<key>`).
    """
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ConfigError("config", f"must be a dict of options (got {type(config).__name__})")
    for key in config:
        if key not in DEFAULTS:
            _warn_unknown(str(key), stacklevel + 1)
    merged = {**DEFAULTS, **{k: v for k, v in config.items() if k in DEFAULTS}}
    for key, check in _CHECKS.items():
        problem = check(merged[key])
        if problem is not None:
            raise ConfigError(f"config.{key}", f"{problem} (got {merged[key]!r})")
    merged["monitoring_interval"] = float(merged["monitoring_interval"])
    merged["max_trial_monitoring_time"] = float(merged["max_trial_monitoring_time"])
    return merged


def _warn_unknown(key: str, stacklevel: int) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    valid = ", ".join(DEFAULTS)
    if key in SEED_ONLY:
        what = f"AxScheduler config key {key!r} is a seed 001 option sweepwise does not implement; ignored"
    else:
        what = f"unknown AxScheduler config key {key!r} ignored"
    warnings.warn(f"{what} (valid keys: {valid})", SweepwiseWarning, stacklevel=stacklevel)


__all__ = ["DEFAULTS", "SEED_ONLY", "read_config"]
