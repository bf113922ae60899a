"""The spellings users bring from Optuna, Ray Tune and W&B, mapped onto sweepwise's distributions.

- `log_uniform`, `loguniform`, `log_uniform_values`, or `uniform` with `log: true`: a float
  range searched on a log scale, i.e. `log_normal` with the same `min` and `max`.
- `int_log_uniform`, `lograndint`, or `int_uniform` with `log: true`: every whole number of
  the range, spaced by its log, i.e. an `ordinal` with `log: true`.
- `q` or `step` on `uniform`/`int_uniform` (also `q_uniform`, `quniform`, `qrandint`):
  `min`, `min + q`, ... up to `max`, i.e. an `ordinal` of those values.

The spec is rewritten before it is checked, so every error names the field the user wrote
(docs/optimizers.md, "Parameter specs").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sweepwise.core.errors import ConfigError

MAX_GRID = 4096
"""The most values a quantised or integer log range may hold (each becomes an ordinal value)."""

_NO_STEP = "a log range takes no step (as in Optuna); list the values as an ordinal"
_WANDB = "; W&B's log_uniform takes exponents: write log_uniform_values"
_LOG_FLOAT = {"log_uniform", "loguniform", "log_uniform_values"}
_LOG_INT = {"int_log_uniform", "lograndint"}
_QUANTISED = {"q_uniform": "uniform", "quniform": "uniform", "qrandint": "int_uniform"}
ALIASES = sorted(_LOG_FLOAT | _LOG_INT | set(_QUANTISED))
"""Every distribution name accepted besides sweepwise's own."""


def _number(data: Mapping[str, Any], field: str) -> float:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        hint = "lowest" if field == "min" else "highest"
        raise ConfigError(field, f"required, a finite number (got {value!r}); add {field}: <{hint} value>")
    return float(value)


def _step(data: dict[str, Any]) -> float | None:
    if "q" in data and "step" in data:
        raise ConfigError("step", "give q or step, not both (they mean the same)")
    field = "q" if "q" in data else "step"
    value = data.pop(field, None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(field, f"must be a number above 0 (got {value!r}); e.g. {field}: 0.05")
    return float(value)


def _swapped(lo: float, hi: float) -> ConfigError:
    return ConfigError("min", f"must be below max (got min={lo:g}, max={hi:g}); swap them or fix the range")


def _grid(lo: float, hi: float, step: float, field: str, whole: bool) -> list[int | float]:
    span = (hi - lo) / step
    if not math.isfinite(span) or span + 1 > MAX_GRID:
        fix = "use a larger q or no q" if field == "q" else f"use a smaller {field} or a larger min"
        many = f"{math.floor(span + 1e-9) + 1} values" if math.isfinite(span) else "countless values"
        raise ConfigError(field, f"gives {many}, more than {MAX_GRID}; {fix}")
    count = math.floor(span + 1e-9) + 1
    if whole:
        return [int(lo) + k * int(step) for k in range(count)]
    return [float(f"{lo + k * step:.12g}") for k in range(count)]


def _whole(value: float, field: str, dist: str) -> int:
    if not value.is_integer():
        raise ConfigError(field, f"must be a whole number for {dist} (got {value!r}); round it")
    return int(value)


def resolve_aliases(data: dict[str, Any]) -> dict[str, Any]:
    """`data` (a raw parameter spec) with any alias rewritten to a sweepwise distribution."""
    dist = data.get("distribution")
    if not isinstance(dist, str):
        return data
    log = data.get("log") is True
    if dist in _LOG_FLOAT or (dist == "uniform" and log):
        data.pop("log", None)
        if _step(data) is not None:
            raise ConfigError("step", _NO_STEP)
        if _number(data, "min") <= 0:
            hint = _WANDB if dist == "log_uniform" else ""
            raise ConfigError("min", f"must be above 0 for a log range (got {data['min']!r}){hint}")
        data["distribution"] = "log_normal"
        return data
    if dist in _LOG_INT or (dist == "int_uniform" and log):
        if _step(data) is not None:
            raise ConfigError("step", _NO_STEP)
        first = _whole(_number(data, "min"), "min", dist)
        last = _whole(_number(data, "max"), "max", dist)
        if first < 1:
            raise ConfigError("min", f"must be at least 1 for an integer log range (got {first})")
        if last <= first:
            raise _swapped(first, last)
        data["values"] = _grid(first, last, 1, "max", whole=True)
        del data["min"], data["max"]
        data["distribution"], data["log"] = "ordinal", True
        return data
    base = _QUANTISED.get(dist, dist)
    if base not in ("uniform", "int_uniform") or not ({"q", "step"} & data.keys() or dist in _QUANTISED):
        return data
    step = _step(data)
    if step is None:
        raise ConfigError("q", f"required for {dist}; e.g. q: 0.1")
    lo, hi = _number(data, "min"), _number(data, "max")
    if hi <= lo:
        raise _swapped(lo, hi)
    whole = base == "int_uniform"
    if whole:
        lo, hi = float(_whole(lo, "min", dist)), float(_whole(hi, "max", dist))
        step = float(_whole(step, "q", dist))
    data["values"] = _grid(lo, hi, step, "q", whole)
    del data["min"], data["max"]
    data["distribution"] = "ordinal"
    return data


def from_optuna(distribution: Any) -> dict[str, Any]:
    """The parameter spec, in the spellings above, of an Optuna distribution.

    Reads `FloatDistribution`, `IntDistribution` and `CategoricalDistribution` by their
    attributes (Optuna itself is not imported).

    Raises:
        ConfigError: any other kind of distribution (field `distribution`).
    """
    kind = type(distribution).__name__
    if kind == "CategoricalDistribution":
        return {"choices": list(distribution.choices)}
    if kind not in ("FloatDistribution", "IntDistribution"):
        raise ConfigError("distribution", f"Optuna's {kind} has no sweepwise counterpart")
    whole = kind == "IntDistribution"
    spec: dict[str, Any] = {"min": distribution.low, "max": distribution.high}
    if distribution.log:
        spec["distribution"] = "int_log_uniform" if whole else "log_uniform"
    else:
        spec["distribution"] = "int_uniform" if whole else "uniform"
        step = distribution.step
        if step is not None and not (whole and step == 1):
            spec["step"] = step
    return spec


__all__ = ["ALIASES", "MAX_GRID", "from_optuna", "resolve_aliases"]
