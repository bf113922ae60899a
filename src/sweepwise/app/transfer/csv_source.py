"""Runs to import from a CSV file in the export's own format (`sweepwise.app.transfer.cells`).

Required: a `score` column and at least one `param.<name>` column. Optional: `cost`,
`runtime`, `status` (rows whose status is not `completed` are skipped and counted) and
`result.<key>` columns; any other column is ignored. A cell holds JSON or bare text
(`decode_cell`), so a file this package exported reads back to the very same values.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepwise.app.transfer.cells import PARAM_PREFIX, RESULT_PREFIX, decode_cell
from sweepwise.app.transfer.imported import ImportedRun
from sweepwise.core.errors import ConfigError


@dataclass(frozen=True)
class CsvRuns:
    """What a CSV file holds: the runs to import, and how many rows were left out (not completed)."""

    runs: list[ImportedRun]
    skipped: int


def _number(value: Any, column: str, line: int, *, at_least: float | None = None) -> float:
    """`value` as a finite float, else a `ConfigError` naming the line and column."""
    where = f"line {line}, column {column}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError("--csv", f"{where}: {value!r} is not a number; give a finite number")
    number = float(value)
    if not math.isfinite(number) or (at_least is not None and number < at_least):
        bound = f" >= {at_least:g}" if at_least is not None else ""
        raise ConfigError("--csv", f"{where}: {value!r} is not a finite number{bound}; fix the cell")
    return number


def read_csv_runs(path: Path) -> CsvRuns:
    """The runs of a CSV file (see the module's docstring for its columns).

    Raises:
        ConfigError: the file cannot be read, a required column is missing, or a cell of
            `score`, `cost` or `runtime` is not a finite number (one line naming the line
            and column).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM, as spreadsheets write
    except FileNotFoundError:
        raise ConfigError("--csv", f"no such file {path}; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--csv", f"cannot read {path} ({exc}); give a UTF-8 CSV file") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        return _runs(reader, path)
    except csv.Error as exc:  # an unclosed quote, a cell over the csv module's size limit
        raise ConfigError("--csv", f"line {reader.line_num + 1}: {exc}; fix the file") from None


def _runs(reader: csv.DictReader[str], path: Path) -> CsvRuns:
    columns = list(reader.fieldnames or [])
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if repeated:
        raise ConfigError("--csv", f"column {repeated[0]!r} appears more than once in the header; keep one")
    params = [name for name in columns if name.startswith(PARAM_PREFIX) and len(name) > len(PARAM_PREFIX)]
    if "score" not in columns:
        raise ConfigError("--csv", f"{path} has no score column; add one (columns: {', '.join(columns)})")
    if not params:
        raise ConfigError("--csv", f"{path} has no param.<name> column; name each parameter's column so")
    results = [name for name in columns if name.startswith(RESULT_PREFIX)]
    runs: list[ImportedRun] = []
    skipped = 0
    for line, row in enumerate(reader, start=2):
        if None in row:
            raise ConfigError("--csv", f"line {line} has more cells than the header has columns; fix it")
        if None in row.values():  # a cell missing from a short row (a cell read is a string)
            raise ConfigError("--csv", f"line {line} has fewer cells than the header has columns; fix it")
        status = row.get("status")
        if status not in (None, "", "completed"):
            skipped += 1
            continue
        cells = {name: decode_cell(row.get(name) or "") for name in columns}
        score = _number(cells["score"], "score", line)
        cost = cells.get("cost")
        runtime = cells.get("runtime")
        run_params = {name[len(PARAM_PREFIX) :]: cells[name] for name in params if cells[name] is not None}
        runs.append(
            ImportedRun(
                params=run_params,
                score=score,
                cost=None if cost is None else _number(cost, "cost", line, at_least=0.0),
                runtime=0.0 if runtime is None else _number(runtime, "runtime", line, at_least=0.0),
                result={
                    name[len(RESULT_PREFIX) :]: cells[name] for name in results if cells[name] is not None
                },
            )
        )
    return CsvRuns(runs, skipped)


__all__ = ["CsvRuns", "read_csv_runs"]
