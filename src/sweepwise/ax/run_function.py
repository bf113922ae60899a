"""A function objective as a job: `python -m sweepwise.ax.run_function <trial dir>`.

`DispatcherRunner` cloudpickles the function and the trial's parameters into
`<trial dir>/function.pkl` (`write_function_job`); the job loads them, calls
`fn(params)` and writes what it returns as the job's result (`$SWEEPWISE_RESULT_FILE`
under sweepwise's supervisor, else `<trial dir>/result.json`). When the function
raises, the job prints the traceback (its last line names the exception) and exits 1.

`cloudpickle` must be importable where the job runs, and so must the module that
defines the function (a function of `__main__`, a lambda or a closure is sent by value).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

PAYLOAD = "function.pkl"
"""The file, in the trial's directory, that holds `{"fn": ..., "params": ...}`."""

MODULE = "sweepwise.ax.run_function"


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - a dependency of the ax extra
        raise ImportError(
            'function objectives on a dispatcher need cloudpickle: pip install "sweepwise[ax]"'
        ) from None
    return cloudpickle


def write_function_job(
    workdir: Path, fn: Callable[[dict[str, Any]], Any], params: Mapping[str, Any], python: str
) -> list[str]:
    """Pickle `fn` and `params` into `workdir`; return the argv of the job that runs them.

    Args:
        workdir: the trial's directory (it exists), on a filesystem the job can read.
        fn: the objective, called as `fn(params)`.
        params: the trial's parameters.
        python: the interpreter that runs the job.

    Raises:
        ValueError: `fn` or `params` cannot be pickled (the reason is given).
    """
    try:
        payload = _cloudpickle().dumps({"fn": fn, "params": dict(params)})
    except Exception as exc:
        raise ValueError(f"the objective function cannot be pickled for a job: {exc!r}") from exc
    path = workdir / PAYLOAD
    tmp = path.with_name(f".{PAYLOAD}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
    return [python, "-m", MODULE, str(workdir)]


def _write_result(workdir: Path, result: Mapping[str, Any]) -> None:
    if os.environ.get("SWEEPWISE_RESULT_FILE") or os.environ.get("SWEEPWISE_RUN_DIR"):
        from sweepwise.runtime.report import report_result

        report_result(**{str(name): value for name, value in result.items()})
        return
    path = workdir / "result.json"
    tmp = path.with_name(f".result.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(result), indent=1))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Run the function job of the trial directory `argv[0]`; the exit code (0 or 1)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m {MODULE} <trial dir>", file=sys.stderr)
        return 2
    workdir = Path(args[0])
    try:
        with open(workdir / PAYLOAD, "rb") as handle:
            job = _cloudpickle().load(handle)
        result = job["fn"](dict(job["params"]))
        if not isinstance(result, Mapping):
            kind = type(result).__name__
            raise TypeError(f"the objective returned {kind}, not a {{metric: value}} mapping")
        _write_result(workdir, result)
    except Exception:
        traceback.print_exc()  # its last line, the exception, is the trial's error
        sys.stderr.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["MODULE", "PAYLOAD", "main", "write_function_job"]
