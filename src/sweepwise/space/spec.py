"""One parameter's spec: its distribution, range and centre, and its map to [-1, 1] and back.

A value is first moved into its distribution's natural space (linear, log10, log2 for
powers of two, logit, the index of a choice, or an ordinal value's rank or log10) and
then mapped linearly so that the range's ends sit at -1 and 1.
"""

from __future__ import annotations

import enum
import math
import numbers
import unicodedata
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias, TypeGuard

from pydantic import BaseModel, ConfigDict, model_validator

from sweepwise.core.errors import ConfigError
from sweepwise.space.aliases import ALIASES, resolve_aliases

Scalar: TypeAlias = str | int | float | bool | None
"""A JSON scalar: what a suggestion's values and a categorical's choices may be."""

AUTO_SCALE = 0.5
"""What `scale: auto` means: half-width of the search box, in normalised units."""

BOUND_LIMIT = 1e15
"""The largest |min| or |max|: every whole number up to it is exact in a float, and the
map to [-1, 1] stays finite."""


class Distribution(enum.StrEnum):
    """How a parameter's values are spread, and so how it is normalised."""

    UNIFORM = "uniform"
    INT_UNIFORM = "int_uniform"
    UNIFORM_POW2 = "uniform_pow2"
    LOG_NORMAL = "log_normal"
    LOGIT_NORMAL = "logit_normal"
    CATEGORICAL = "categorical"
    ORDINAL = "ordinal"


_DISTRIBUTIONS = ", ".join(d.value for d in Distribution)
_INTEGRAL = (Distribution.INT_UNIFORM, Distribution.UNIFORM_POW2)


def _is_number(value: object) -> TypeGuard[numbers.Real]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_float(value: object) -> float | None:
    """`value` as a finite float (numbers and numeric strings), else None."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    try:
        return float(value) if _is_number(value) and math.isfinite(value) else None
    except OverflowError:  # an int too large for a float
        return None


def _fmt(x: float) -> str:
    """A number for an error message: `10`, `0.0001`, never rounded to fewer digits."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _same_choice(a: object, b: object) -> bool:
    # 1 and True compare equal in Python but are different JSON values.
    return isinstance(a, bool) == isinstance(b, bool) and (a is None) == (b is None) and a == b


def _choice_key(choice: object) -> tuple[str, object]:
    """A key equal for two scalar choices exactly when `_same_choice` says they are the same."""
    return "bool" if isinstance(choice, bool) else "none" if choice is None else "value", choice


def _check_values(values: object) -> list[int | float]:
    """An ordinal's `values`: a list of finite numbers, strictly increasing."""
    if not isinstance(values, list | tuple) or not values:
        raise ConfigError(
            "values", f"must be a non-empty list of numbers (got {values!r}); write values: [1, 2, 4]"
        )
    out: list[int | float] = []
    for item in values:
        if _as_float(item) is None or isinstance(item, str):
            raise ConfigError("values", f"each value must be a finite number (got {item!r})")
        number = float(item)
        if abs(number) > BOUND_LIMIT:
            limit = f"±{BOUND_LIMIT:.0e}"
            raise ConfigError("values", f"each value must lie within {limit} (got {item!r}); rescale them")
        if out and number <= out[-1]:
            got = f"got {_fmt(number)} after {_fmt(float(out[-1]))}"
            raise ConfigError("values", f"must be strictly increasing ({got})")
        out.append(int(item) if isinstance(item, numbers.Integral) else number)
    return out


def _check_when(when: object) -> dict[str, Scalar]:
    """A condition: `{parent: value, ...}`, every parent a name and every value a scalar."""
    if not isinstance(when, Mapping) or not when:
        example = "e.g. when: {kernel: poly}"
        raise ConfigError("when", f"must be a mapping of parameter names to values (got {when!r}); {example}")
    for parent, value in when.items():
        if not isinstance(parent, str) or not parent:
            raise ConfigError("when", f"{parent!r} is not a parameter name")
        if not (value is None or isinstance(value, str | bool) or _as_float(value) is not None):
            raise ConfigError(f"when.{parent}", f"must be one value of '{parent}' (got {value!r})")
    return dict(when)


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class ParameterSpec(BaseModel):
    """One parameter: how it is drawn, its range and its search centre.

    After validation `mean` always holds a valid value of the parameter (the default
    centre when none was given; snapped to an int / power of two where needed; the
    first choice for a categorical).

    Attributes:
        distribution: how values are spread (see `Distribution`).
        min: lowest value (numeric distributions only).
        max: highest value (numeric distributions only).
        mean: the search centre.
        scale: half-width of the search box in normalised units, or "auto" (0.5).
        choices: the values of a categorical parameter.
        values: the values of an ordinal parameter, strictly increasing.
        log: an ordinal's values are spaced on a log scale (else by rank).
        when: the parameter exists only when every named categorical or ordinal parent
            has the given value (checked against the other parameters by `SearchSpace`).
    """

    model_config = ConfigDict(extra="forbid")

    distribution: Distribution
    min: float | None = None
    max: float | None = None
    mean: Scalar = None
    scale: float | Literal["auto"] = "auto"
    choices: list[Scalar] | None = None
    values: list[int | float] | None = None
    log: bool = False
    when: dict[str, Scalar] | None = None

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        # Checks run here so that errors name the field, not a pydantic union member.
        if not isinstance(data, Mapping):
            return data
        data = resolve_aliases(dict(data))
        dist = data.get("distribution")
        if dist is None and "choices" not in data:
            raise ConfigError("distribution", f"required; set one of: {_DISTRIBUTIONS}")
        if dist is None:
            data["distribution"] = Distribution.CATEGORICAL.value
        elif not isinstance(dist, str) or dist not in {d.value for d in Distribution}:
            raise ConfigError(
                "distribution",
                f"unknown distribution {dist!r}; use one of: {_DISTRIBUTIONS} (or {', '.join(ALIASES)})",
            )
        for bound in ("min", "max"):
            if isinstance(data.get(bound), bool):
                raise ConfigError(bound, f"must be a number (got {data[bound]!r})")
        scale = data.get("scale", "auto")
        if not (isinstance(scale, str) and scale == "auto"):
            number = _as_float(scale)
            if number is None or number <= 0:
                raise ConfigError("scale", f"must be a number above 0 or 'auto' (got {scale!r}); auto = 0.5")
            data["scale"] = number
        mean = data.get("mean")
        if mean is not None and not isinstance(mean, str | numbers.Real):
            raise ConfigError("mean", f"must be a single value (got {mean!r})")
        choices = data.get("choices")
        if choices is not None:
            if not isinstance(choices, list | tuple):
                raise ConfigError("choices", f"must be a list (got {choices!r}); write choices: [a, b]")
            for item in choices:
                if not (item is None or isinstance(item, str | bool) or _as_float(item) is not None):
                    raise ConfigError("choices", f"each choice must be a finite JSON scalar (got {item!r})")
                if isinstance(item, str) and any(unicodedata.category(c) == "Cc" for c in item):
                    raise ConfigError(
                        "choices", f"{item!r} holds a control character (a NUL, tab, newline...); remove it"
                    )
            data["choices"] = list(choices)
        if data.get("values") is not None:
            data["values"] = _check_values(data["values"])
        if "log" in data and not isinstance(data["log"], bool):
            raise ConfigError("log", f"must be true or false (got {data['log']!r})")
        if data.get("when") is not None:
            data["when"] = _check_when(data["when"])
        return data

    @model_validator(mode="after")
    def _check(self) -> ParameterSpec:
        if self.log and self.distribution is not Distribution.ORDINAL:
            raise ConfigError(
                "log",
                "only ordinal, uniform and int_uniform parameters take log; use log_normal for a log range",
            )
        if self.values is not None and self.distribution is not Distribution.ORDINAL:
            raise ConfigError("values", "only ordinal parameters take values; write distribution: ordinal")
        if self.distribution is Distribution.CATEGORICAL:
            self._check_categorical()
        elif self.distribution is Distribution.ORDINAL:
            self._check_ordinal()
        else:
            self._check_numeric()
        return self

    def _check_ordinal(self) -> None:
        for field in ("min", "max", "choices"):
            if getattr(self, field) is not None:
                raise ConfigError(field, f"ordinal parameters take values, not {field}; remove it")
        if not self.values:
            raise ConfigError("values", "required for distribution 'ordinal'; write values: [1, 2, 4]")
        if self.log and self.values[0] <= 0:
            first = _fmt(float(self.values[0]))
            raise ConfigError("values", f"must all be above 0 with log: true (got {first})")
        if self.mean is None:
            self.mean = self.from_unit(0.0)
            return
        mean = _as_float(self.mean)
        if mean is None or isinstance(self.mean, str) or self._rank_of(mean) is None:
            raise ConfigError("mean", f"must be one of the values {self.values!r} (got {self.mean!r})")
        self.mean = self.values[self._rank_of(mean) or 0]

    def _check_categorical(self) -> None:
        for bound in ("min", "max"):
            if getattr(self, bound) is not None:
                raise ConfigError(bound, f"categorical parameters take no {bound}; remove it")
        if not self.choices:
            raise ConfigError("choices", "must list at least one value; write choices: [a, b]")
        seen: set[tuple[str, object]] = set()  # choices are scalars (checked before): hashable
        for choice in self.choices:
            key = _choice_key(choice)
            if key in seen:
                raise ConfigError("choices", f"duplicate value {choice!r}; list each choice once")
            seen.add(key)
        if self.mean is None:
            self.mean = self.choices[0]
        else:
            index = self._index_of(self.mean)
            if index is None:
                raise ConfigError("mean", f"must be one of the choices {self.choices!r} (got {self.mean!r})")
            self.mean = self.choices[index]

    def _check_numeric(self) -> None:
        dist = self.distribution.value
        if self.choices is not None:
            raise ConfigError("choices", f"only categorical parameters take choices; remove them from {dist}")
        for bound, hint in (("min", "lowest"), ("max", "highest")):
            value = getattr(self, bound)
            if value is None:
                raise ConfigError(bound, f"required for distribution '{dist}'; add {bound}: <{hint} value>")
            if not math.isfinite(value):
                raise ConfigError(bound, f"must be a finite number (got {value!r})")
            if abs(value) > BOUND_LIMIT:
                raise ConfigError(
                    bound, f"must lie within ±{BOUND_LIMIT:.0e} (got {value!r}); rescale the parameter"
                )
        lo, hi = self._lo, self._hi
        got = f"(got min={_fmt(lo)}, max={_fmt(hi)})"
        if lo >= hi:
            raise ConfigError("min", f"must be below max {got}; swap them or fix the range")
        if self.distribution not in _INTEGRAL and float(f"{lo:.12g}") == float(f"{hi:.12g}"):
            close = "they agree to 12 significant digits, as far as suggestions go"
            raise ConfigError("max", f"is too close to min to search {got}: {close}; widen the range")
        if self.distribution is Distribution.LOG_NORMAL and lo <= 0:
            raise ConfigError("min", f"must be above 0 for log_normal {got}; use a positive lower bound")
        if self.distribution is Distribution.LOGIT_NORMAL:
            if lo <= 0:
                raise ConfigError("min", f"must be above 0 for logit_normal {got}; use 0 < min < max < 1")
            if hi >= 1:
                raise ConfigError("max", f"must be below 1 for logit_normal {got}; use 0 < min < max < 1")
        if self.distribution is Distribution.INT_UNIFORM:
            for bound, value in (("min", lo), ("max", hi)):
                if not value.is_integer():
                    raise ConfigError(bound, f"must be a whole number for int_uniform {got}; round it")
        if self.distribution is Distribution.UNIFORM_POW2:
            if lo < 1:
                raise ConfigError("min", f"must be at least 1 for uniform_pow2 {got}; use min >= 1")
            for bound, value in (("min", lo), ("max", hi)):
                if not math.log2(value).is_integer():
                    raise ConfigError(
                        bound, f"must be a power of two for uniform_pow2 {got}; e.g. 1, 2, 4, 8"
                    )
        a, b = self._natural_bounds()
        if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(b - a) and b > a):
            raise ConfigError(
                "max", f"the range is too narrow or too wide to search {got}; widen or narrow it"
            )
        self._resolve_mean(lo, hi)

    def _resolve_mean(self, lo: float, hi: float) -> None:
        if self.mean is None:
            self.mean = self.from_unit(0.0)
            return
        mean = _as_float(self.mean)
        if mean is None:
            raise ConfigError("mean", f"must be a number (got {self.mean!r})")
        if not lo <= mean <= hi:
            bounds = f"[{_fmt(lo)}, {_fmt(hi)}]"
            raise ConfigError("mean", f"must lie within {bounds} (got {_fmt(mean)}); move it or remove it")
        self.mean = self.from_unit(self.to_unit(mean)) if self.distribution in _INTEGRAL else mean

    # --- derived properties -------------------------------------------------------------

    @property
    def resolved_scale(self) -> float:
        """`scale` as a number (`auto` is `AUTO_SCALE`)."""
        return AUTO_SCALE if self.scale == "auto" else float(self.scale)

    @property
    def levels(self) -> int | None:
        """How many distinct values the parameter has, or None when continuous."""
        if self.distribution is Distribution.ORDINAL:
            return len(self.values or [])
        if self.distribution not in (*_INTEGRAL, Distribution.CATEGORICAL):
            return None
        a, b = self._natural_bounds()
        return int(b - a) + 1

    def discrete_values(self) -> list[Scalar] | None:
        """Every value of a discrete parameter in order, or None when continuous."""
        if self.distribution is Distribution.CATEGORICAL:
            return list(self.choices or [])
        if self.distribution is Distribution.ORDINAL:
            return list(self.values or [])
        if self.distribution is Distribution.INT_UNIFORM:
            return list(range(int(self._lo), int(self._hi) + 1))
        if self.distribution is Distribution.UNIFORM_POW2:
            e_lo, e_hi = self._exponents()
            return [2**e for e in range(e_lo, e_hi + 1)]
        return None

    @property
    def evenly_spaced(self) -> bool:
        """A discrete parameter's values sit evenly in [-1, 1] (all but a `log: true` ordinal)."""
        return not (self.distribution is Distribution.ORDINAL and self.log)

    def unit_levels(self) -> list[float] | None:
        """Where each value of a discrete parameter sits in [-1, 1], in order; None when continuous."""
        n = self.levels
        if n is None:
            return None
        if n == 1:
            return [0.0]
        if self.evenly_spaced:
            return [-1.0 + 2.0 * k / (n - 1) for k in range(n)]
        return [self.to_unit(v) for v in self.values or []]

    def value_weights(self) -> list[float] | None:
        """A discrete parameter's chance of each value under a uniform draw; None: all equal.

        Only a `log: true` ordinal has unequal chances: each value gets the width of its cell
        on the log scale (half-way to each neighbour, and as far again past the ends), so a
        geometric list keeps equal chances and every whole number of an `int_log_uniform`
        range gets its log-uniform share (docs/optimizers.md, "Parameter specs").
        """
        if self.distribution is not Distribution.ORDINAL or not self.log or len(self.values or []) < 2:
            return None
        logs = [math.log10(v) for v in self.values or []]
        edges = [1.5 * logs[0] - 0.5 * logs[1]]
        edges += [(a + b) / 2.0 for a, b in zip(logs, logs[1:], strict=False)]
        edges.append(1.5 * logs[-1] - 0.5 * logs[-2])
        widths = [b - a for a, b in zip(edges, edges[1:], strict=False)]
        total = sum(widths)
        weights = [w / total for w in widths]
        if max(weights) - min(weights) < 1e-9 * max(weights):
            return None
        return weights

    def level_index(self, u: float) -> int:
        """The index of the discrete value nearest to the point `u` of [-1, 1] (ties go up)."""
        n = self.levels or 1
        if n == 1:
            return 0
        if self.evenly_spaced:
            return min(max(_round_half_up((min(max(u, -1.0), 1.0) + 1.0) / 2.0 * (n - 1)), 0), n - 1)
        levels = self.unit_levels() or [0.0]
        return sum(1 for a, b in zip(levels, levels[1:], strict=False) if u >= (a + b) / 2.0)

    def same_value(self, a: object, b: object) -> bool:
        """`a` and `b` are the same value of this parameter (1 is 1.0 for an ordinal; never True)."""
        if self.distribution is Distribution.CATEGORICAL:
            return _same_choice(a, b)
        return _is_number(a) and _is_number(b) and float(a) == float(b)

    def _rank_of(self, value: float) -> int | None:
        for i, v in enumerate(self.values or []):
            if float(v) == value:
                return i
        return None

    def _exponents(self) -> tuple[int, int]:
        """Lowest and highest exponent e with min <= 2**e <= max."""
        lo, hi = float(self.min or 1.0), float(self.max or 1.0)
        e_lo = math.ceil(math.log2(lo))
        e_lo += 1 if 2.0**e_lo < lo else 0
        e_hi = math.floor(math.log2(hi))
        e_hi -= 1 if 2.0**e_hi > hi else 0
        return e_lo, e_hi

    @property
    def _lo(self) -> float:
        return float(self.min) if self.min is not None else 0.0

    @property
    def _hi(self) -> float:
        return float(self.max) if self.max is not None else 0.0

    def _natural_bounds(self) -> tuple[float, float]:
        """The range's ends in the distribution's natural space."""
        match self.distribution:
            case Distribution.LOG_NORMAL:
                return math.log10(self._lo), math.log10(self._hi)
            case Distribution.LOGIT_NORMAL:
                return _logit(self._lo), _logit(self._hi)
            case Distribution.UNIFORM_POW2:
                e_lo, e_hi = self._exponents()
                return float(e_lo), float(e_hi)
            case Distribution.CATEGORICAL:
                return 0.0, float(len(self.choices or []) - 1)
            case Distribution.ORDINAL:
                values = self.values or [1.0]
                if self.log:
                    return math.log10(values[0]), math.log10(values[-1])
                return 0.0, float(len(values) - 1)
            case _:
                return self._lo, self._hi

    # --- normalisation ------------------------------------------------------------------

    def _index_of(self, value: object) -> int | None:
        for i, choice in enumerate(self.choices or []):
            if _same_choice(choice, value):
                return i
        return None

    def check_value(self, value: object) -> None:
        """Raise ValueError (with a one-line reason) unless `value` is valid for this parameter."""
        if self.distribution is Distribution.CATEGORICAL:
            if self._index_of(value) is None:
                raise ValueError(f"{value!r} is not one of the choices {self.choices!r}")
            return
        if not _is_number(value):
            raise ValueError(f"must be a number (got {value!r})")
        number = float(value)
        if self.distribution is Distribution.ORDINAL:
            if self._rank_of(number) is None:
                raise ValueError(f"{_fmt(number)} is not one of the values {self.values!r}")
            return
        if not self._lo <= number <= self._hi:
            raise ValueError(f"must lie within [{_fmt(self._lo)}, {_fmt(self._hi)}] (got {_fmt(number)})")
        if self.distribution in _INTEGRAL and not number.is_integer():
            raise ValueError(f"must be a whole number (got {_fmt(number)})")
        if self.distribution is Distribution.UNIFORM_POW2 and not math.log2(number).is_integer():
            raise ValueError(f"must be a power of two (got {_fmt(number)})")

    def to_unit(self, value: object) -> float:
        """Map a value to [-1, 1]; numbers outside the range are clipped to it first.

        Raises:
            ValueError: `value` is not a number (numeric) or not a choice (categorical).
        """
        if self.distribution is Distribution.CATEGORICAL:
            index = self._index_of(value)
            if index is None:
                raise ValueError(f"{value!r} is not one of the choices {self.choices!r}")
            natural = float(index)
        else:
            if not _is_number(value):
                raise ValueError(f"must be a number (got {value!r})")
            number = min(max(float(value), self._lo), self._hi)
            if self.distribution is Distribution.ORDINAL:
                number = self._ordinal_natural(float(value))
            match self.distribution:
                case Distribution.LOG_NORMAL:
                    natural = math.log10(number)
                case Distribution.LOGIT_NORMAL:
                    natural = _logit(number)
                case Distribution.UNIFORM_POW2:
                    natural = math.log2(number)
                case Distribution.ORDINAL:
                    natural = number
                case _:
                    natural = number
        a, b = self._natural_bounds()
        if b <= a:
            return 0.0
        return min(max(2.0 * (natural - a) / (b - a) - 1.0, -1.0), 1.0)

    def _ordinal_natural(self, value: float) -> float:
        """An ordinal value's natural coordinate: its log10, or its rank (interpolated between
        values, clipped to the ends, for a number that is not one of them)."""
        values = [float(v) for v in self.values or []]
        value = min(max(value, values[0]), values[-1])
        if self.log:
            return math.log10(value)
        for i in range(len(values) - 1):
            if value <= values[i + 1]:
                return i + (value - values[i]) / (values[i + 1] - values[i])
        return float(len(values) - 1)

    def from_unit(self, u: float) -> Scalar:
        """Map a point of [-1, 1] (clipped first) back to a valid value."""
        u = min(max(float(u), -1.0), 1.0)
        if self.distribution is Distribution.ORDINAL:
            return (self.values or [0])[self.level_index(u)]
        a, b = self._natural_bounds()
        natural = a + (u + 1.0) / 2.0 * (b - a)
        match self.distribution:
            case Distribution.CATEGORICAL:
                choices = self.choices or []
                return choices[min(max(_round_half_up(natural), 0), len(choices) - 1)]
            case Distribution.UNIFORM_POW2:
                return int(2 ** min(max(_round_half_up(natural), int(a)), int(b)))
            case Distribution.INT_UNIFORM:
                return min(max(_round_half_up(natural), int(a)), int(b))
            case Distribution.LOG_NORMAL:
                value = 10.0**natural
            case Distribution.LOGIT_NORMAL:
                value = _sigmoid(natural)
            case _:
                value = natural
        if abs(u) == 1.0:  # the box's faces are the range's ends exactly, without rounding error
            value = self._lo if u < 0 else self._hi
        value = float(f"{value:.12g}")  # 0.3, not 0.29999999999999993, after a log round trip
        return float(min(max(value, self._lo), self._hi))

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain mapping that `SearchSpace.from_dict` reads back."""
        out: dict[str, Any] = {"distribution": self.distribution.value}
        if self.distribution is Distribution.CATEGORICAL:
            out["choices"] = list(self.choices or [])
        elif self.distribution is Distribution.ORDINAL:
            out["values"] = list(self.values or [])
            if self.log:
                out["log"] = True
        else:
            as_int = self.distribution in _INTEGRAL
            for key in ("min", "max"):
                value = float(getattr(self, key))
                out[key] = int(value) if as_int and value.is_integer() else value
        out["mean"] = self.mean
        out["scale"] = self.scale
        if self.when is not None:
            out["when"] = dict(self.when)
        return out


__all__ = ["AUTO_SCALE", "Distribution", "ParameterSpec", "Scalar"]
