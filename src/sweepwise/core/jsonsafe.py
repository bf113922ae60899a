"""Strict JSON: values every JSON parser accepts, whatever a job reported.

Python's `json` writes `NaN` and `Infinity`, which strict parsers reject, and turns
an integer of any size into digits no float can hold. Before writing, `json_safe`
replaces a non-finite float by the string `"NaN"`, `"Infinity"` or `"-Infinity"`
and an integer too large for a float by its decimal string (docs/design.md,
"Results and strict JSON").
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

# Deeper than this, a value a job wrote is refused: no metrics or result needs it, and a value
# nested thousands deep makes `json.loads` (and every later reader of the store) overflow the stack.
MAX_DEPTH = 64

# The strings `json_safe` writes for non-finite floats, and the floats they stand for.
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# A run of 309 digits is the shortest text of an integer too large for a float (about 1.8e308).
_HUGE_DIGITS = re.compile(r"\d{309}")


def _number(value: float | int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    try:
        float(value)
    except OverflowError:
        try:
            return str(int(value))
        except ValueError:  # more digits than Python converts to text
            return "Infinity" if value > 0 else "-Infinity"
    return value


def json_safe(value: Any) -> Any:
    """`value` with its non-finite floats and too-large integers replaced by strings.

    Containers are copied (tuples and sets become lists); other values are kept as
    they are, for `json.dumps`'s `default` to encode.
    """
    if isinstance(value, float | int):
        return _number(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    return value


def dumps_strict(value: Any, *, default: Callable[[Any], Any] | None = None, **options: Any) -> str:
    """`json.dumps(value, ...)` as strict JSON (`allow_nan=False`), made safe with `json_safe` when needed.

    The common case, a value with nothing to replace, is encoded once; anything else
    is encoded again after `json_safe` (also what `default` returns).

    Raises:
        TypeError: `value` holds something `default` cannot encode.
    """

    try:
        text = json.dumps(value, default=default, allow_nan=False, **options)
    except ValueError:
        text = None
    if text is None or _HUGE_DIGITS.search(text):
        safe_default = None if default is None else lambda item: json_safe(default(item))
        text = json.dumps(json_safe(value), default=safe_default, allow_nan=False, **options)
    return text


def dumps_rows(value: dict[str, Any], rows_key: str, *, default: Callable[[Any], Any] | None = None) -> str:
    """`value` as strict JSON indented by 2, each item of the list `value[rows_key]` on one line.

    Indented JSON goes through the json module's pure-Python encoder; 10^4 rows encoded
    each on its own by the C encoder cost a fraction of that, and read as a table. The
    rows are checked once, all together, for what `dumps_strict` would make safe.
    """
    rows = value.get(rows_key)
    text: str | None = None
    if isinstance(rows, list) and rows:
        encode = json.JSONEncoder(default=default, allow_nan=False).encode
        try:
            text = ",\n    ".join(map(encode, rows))
        except ValueError:  # a NaN or an infinity
            text = None
        if text is None or _HUGE_DIGITS.search(text):
            text = ",\n    ".join(dumps_strict(row, default=default) for row in rows)
    last = len(value) - 1
    lines = ["{"]
    for index, (key, item) in enumerate(value.items()):
        comma = "," if index < last else ""
        name = json.dumps(key)
        if key == rows_key and text is not None:
            lines.append(f"  {name}: [\n    {text}\n  ]{comma}")
        else:
            item_text = dumps_strict(item, default=default, indent=2).replace("\n", "\n  ")
            lines.append(f"  {name}: {item_text}{comma}")
    lines.append("}")
    return "\n".join(lines)


class TooDeepError(ValueError):
    """A JSON value nested deeper than `MAX_DEPTH`; its message follows the file's name."""

    def __init__(self) -> None:
        super().__init__(f"is nested more than {MAX_DEPTH} levels deep")


class TooLongIntegerError(ValueError):
    """A JSON integer of more digits than Python converts (`sys.get_int_max_str_digits`)."""

    def __init__(self) -> None:
        super().__init__(f"holds an integer of more than {sys.get_int_max_str_digits()} digits")


def loads_bounded(text: str | bytes) -> Any:
    """`json.loads(text)` of text a job wrote, refusing a value nested more than `MAX_DEPTH` deep.

    Raises:
        ValueError: `text` is not JSON (`json.JSONDecodeError`), is nested too deep
            (`TooDeepError`) or holds too long an integer (`TooLongIntegerError`).
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeepError() from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # the only other: int("9" * 5000) refused by Python's digit limit
        raise TooLongIntegerError() from None
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_DEPTH:
                    raise TooDeepError()
                pending.append((child, depth + 1))
    return value


def finite_number(value: object) -> float | None:
    """`value` as a float when it is a finite int or float (not a bool, not an int beyond a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def rung_scores(recorded: object) -> dict[int, float]:
    """The {step: value} pairs of a stored rungs map whose step is ASCII digits (not "²") and
    whose value is a finite number; the rest of a tampered map is ignored."""
    if not isinstance(recorded, Mapping):
        return {}
    out = {}
    for rung, value in recorded.items():
        number = finite_number(value)
        if number is not None and str(rung).isascii() and str(rung).isdigit():
            out[int(rung)] = number
    return out


__all__ = [
    "MAX_DEPTH",
    "TooDeepError",
    "TooLongIntegerError",
    "dumps_rows",
    "dumps_strict",
    "finite_number",
    "json_safe",
    "loads_bounded",
    "rung_scores",
]
