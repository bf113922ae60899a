"""`sweepwise export`: an experiment's runs as one table, written as CSV, JSON or Parquet.

The runs are read through the same reader `sweepwise status` uses (`sweepwise.app.views`),
so an export sees exactly what `status --json` shows. A file given with `--out` is
written to a temporary file beside it and renamed, so it is never left half-written.
"""

from __future__ import annotations

import csv
import enum
import importlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepwise.app.transfer.cells import PARAM_PREFIX, RESULT_PREFIX, RUN_COLUMNS, encode_cell
from sweepwise.app.views import RunReader, experiment_record
from sweepwise.core import keys
from sweepwise.core.errors import ConfigError, MissingExtraError
from sweepwise.core.jsonsafe import dumps_strict
from sweepwise.core.models import RunInfo


class ExportFormat(enum.StrEnum):
    """What `sweepwise export --format` writes."""

    CSV = "csv"
    JSON = "json"
    PARQUET = "parquet"

    @classmethod
    def parse(cls, text: str) -> ExportFormat:
        """The format named `text`.

        Raises:
            ConfigError: an unknown format; the message lists the known ones.
        """
        try:
            return cls(text.lower())
        except ValueError:
            known = ", ".join(member.value for member in cls)
            raise ConfigError("--format", f"unknown format {text!r}; use one of {known}") from None


@dataclass(frozen=True)
class ExportTable:
    """An experiment's runs as rows of named columns.

    Attributes:
        experiment: the experiment's name.
        metric: the metric its score is (`metric` of its spec).
        goal: `maximize` or `minimize`.
        columns: every column, the fixed ones (`RUN_COLUMNS`) first, then `param.*`, then `result.*`.
        rows: one dict per run, by column (a value the run lacks is None).
    """

    experiment: str
    metric: str
    goal: str
    columns: list[str]
    rows: list[dict[str, Any]]


def _result(run: RunInfo) -> dict[str, Any]:
    """What the run's jobs reported: its eval's result, else its training's (a spec with no eval job)."""
    for key in (keys.EVAL_RESULT, keys.TRAIN_RESULT):
        value = run.summary.get(key)
        if isinstance(value, dict) and value:
            return value
    return {}


def _row(run: RunInfo) -> dict[str, Any]:
    summary = run.summary
    row: dict[str, Any] = {
        "run_id": run.run_id,
        "status": run.status.key,
        "score": summary.get(keys.OBSERVATION_SCORE),
        "cost": summary.get(keys.OBSERVATION_COST),
        "runtime": run.runtime,
        "train_attempt": run.train_attempt,
        "eval_attempt": run.eval_attempt,
        "error": run.error,
        "created_at": run.created_at.isoformat() if run.created_at else None,
    }
    row.update({f"{PARAM_PREFIX}{name}": value for name, value in run.suggestion.items()})
    row.update({f"{RESULT_PREFIX}{name}": value for name, value in _result(run).items()})
    return row


def export_table(reader: RunReader, experiment: str) -> ExportTable:
    """Every run of `experiment`, in trial order, as an `ExportTable`.

    Raises:
        SweepwiseError: there is no such experiment (the message lists those there are).
    """
    record = experiment_record(reader, experiment)
    spec = record.spec.get("spec", {})
    rows = [_row(run) for run in reader.fetch_runs({"group": experiment})]
    seen = dict.fromkeys(name for row in rows for name in row if name not in RUN_COLUMNS)
    params = sorted(name for name in seen if name.startswith(PARAM_PREFIX))
    results = sorted(name for name in seen if name.startswith(RESULT_PREFIX))
    columns = [*RUN_COLUMNS, *params, *results]
    return ExportTable(
        experiment,
        str(spec.get("metric", "score")),
        str(spec.get("goal", "maximize")),
        columns,
        [{name: row.get(name) for name in columns} for row in rows],
    )


def to_csv(table: ExportTable) -> str:
    """The table as CSV text: a header, then one line per run (cells as `encode_cell` writes them)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([encode_cell(row[name]) for name in table.columns])
    return buffer.getvalue()


def to_json(table: ExportTable) -> str:
    """The table as a JSON document: the experiment, its metric and goal, and its runs as objects."""
    document = {
        "experiment": table.experiment,
        "metric": table.metric,
        "goal": table.goal,
        "columns": table.columns,
        "runs": table.rows,
    }
    return dumps_strict(document, indent=2) + "\n"


def load_pyarrow() -> Any:
    """pyarrow and its parquet module, imported now (they load slowly and are optional).

    Raises:
        MissingExtraError: pyarrow is not installed; the message names the extra.
    """
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise MissingExtraError("pyarrow", "parquet") from None


def _arrow_column(pa: Any, values: list[Any]) -> Any:
    """One column as an Arrow array of one type; a column mixing types holds each cell's text."""
    present = [value for value in values if value is not None]
    kinds = {bool if isinstance(v, bool) else int if isinstance(v, int) else type(v) for v in present}
    if not kinds:
        return pa.array(values, type=pa.string())
    if kinds <= {bool}:
        return pa.array(values, type=pa.bool_())
    if kinds <= {int} and all(-(2**63) <= v < 2**63 for v in present):
        return pa.array(values, type=pa.int64())
    if kinds <= {int, float}:
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    if kinds <= {str}:
        return pa.array(values, type=pa.string())
    return pa.array([None if v is None else encode_cell(v) for v in values], type=pa.string())


def write_parquet(table: ExportTable, path: Path) -> None:
    """The table as a Parquet file at `path`, with the experiment, metric and goal in its metadata.

    Raises:
        MissingExtraError: pyarrow is not installed.
    """
    pa, pq = load_pyarrow()
    arrays = [_arrow_column(pa, [row[name] for row in table.rows]) for name in table.columns]
    metadata = {"sweepwise.experiment": table.experiment, "sweepwise.metric": table.metric}
    metadata["sweepwise.goal"] = table.goal
    arrow = pa.Table.from_arrays(arrays, names=table.columns).replace_schema_metadata(metadata)
    pq.write_table(arrow, str(path))


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(temporary path)` beside `path`, then rename it to `path` (removed if `write` fails)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_export(fmt: ExportFormat, out: Path | None) -> None:
    """Refuse, before anything is read, an export that cannot be written.

    Raises:
        ConfigError: Parquet without `out`, or `out`'s directory does not exist.
        MissingExtraError: Parquet without pyarrow installed.
    """
    if fmt is ExportFormat.PARQUET:
        if out is None:
            raise ConfigError(
                "--out", "Parquet is a binary format; give a file to write, e.g. --out runs.parquet"
            )
        load_pyarrow()
    if out is not None and not out.absolute().parent.is_dir():
        raise ConfigError("--out", f"directory {out.absolute().parent} does not exist; create it first")
    if out is not None and out.is_dir():
        raise ConfigError(
            "--out", f"{out} is a directory; give a file to write, e.g. {out / 'runs'}.{fmt.value}"
        )


def write_export(table: ExportTable, fmt: ExportFormat, out: Path | None) -> str | None:
    """Write `table` in `fmt` to `out` (checked with `check_export`); with no `out`, return the text.

    Raises:
        MissingExtraError: Parquet without pyarrow installed.
    """
    if out is None:
        return to_json(table) if fmt is ExportFormat.JSON else to_csv(table)
    if fmt is ExportFormat.PARQUET:
        write_atomically(out, lambda tmp: write_parquet(table, tmp))
    else:
        text = to_csv(table) if fmt is ExportFormat.CSV else to_json(table)
        # a column named by a result key with a lone surrogate cannot be UTF-8: escaped
        write_atomically(out, lambda tmp: tmp.write_text(text, encoding="utf-8", errors="backslashreplace"))
    return None


__all__ = [
    "ExportFormat",
    "ExportTable",
    "check_export",
    "export_table",
    "load_pyarrow",
    "to_csv",
    "to_json",
    "write_atomically",
    "write_export",
    "write_parquet",
]
