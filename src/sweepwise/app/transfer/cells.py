"""The columns of an exported experiment, and how a value becomes a CSV cell and back.

One row per run; a parameter's column is `param.<name>`, a reported result value's
`result.<key>` (docs/stores.md, "Export and import"). A cell holds the value's JSON text
(a float as `repr` writes it, so it reads back bit for bit), except a printable string that JSON
would not read, which is written bare so that `relu` stays `relu`; an empty cell is no value.
"""

from __future__ import annotations

import json
from typing import Any

from sweepwise.core.jsonsafe import dumps_strict, loads_bounded

PARAM_PREFIX = "param."
RESULT_PREFIX = "result."
RUN_COLUMNS = (
    "run_id",
    "status",
    "score",
    "cost",
    "runtime",
    "train_attempt",
    "eval_attempt",
    "error",
    "created_at",
)
"""The fixed columns, before the `param.` and `result.` ones."""


def encode_cell(value: Any) -> str:
    """`value` as the text of one CSV cell (`decode_cell` reads it back equal)."""
    if value is None:
        return ""
    if isinstance(value, str):
        if value and value.isprintable() and not _reads_as_json(value):
            return value
        # JSON's escapes: a lone surrogate cannot be written as UTF-8, a control character
        # would reach the terminal of whoever reads the file
        return json.dumps(value)
    return dumps_strict(value, separators=(",", ":"))


def decode_cell(text: str) -> Any:
    """The value of a CSV cell written by `encode_cell` (None for an empty cell)."""
    if text == "":
        return None
    try:
        return loads_bounded(text)
    except ValueError:
        return text


def _reads_as_json(text: str) -> bool:
    try:
        loads_bounded(text)
    except ValueError:
        return False
    return True


__all__ = ["PARAM_PREFIX", "RESULT_PREFIX", "RUN_COLUMNS", "decode_cell", "encode_cell"]
