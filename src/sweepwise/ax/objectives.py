"""What an `AxScheduler` trial runs: a Python function, a script, or a container.

A function receives the trial's parameters and returns `{metric: value}` or
`{metric: (mean, sem)}`. A script or a container finds the parameters in
`params.json` (its path also in `$JOB_PARAMS_FILE`) in its working directory and
writes `result.json` there, holding the same mapping (a pair as a two-item list).
A container sees that directory at `/job`, where the seed mounts its job files.
"""

from __future__ import annotations

import math
import numbers
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sweepwise.core.container import Mount
from sweepwise.core.errors import ConfigError
from sweepwise.dispatchers.container import CONTAINER_ENGINES, container_argv, find_container_engine

# Where a container sees the trial's directory (its working directory): the seed's mount point.
CONTAINER_WORKDIR = "/job"


@dataclass(frozen=True, slots=True)
class FunctionObjective:
    """A Python callable `params -> {metric: value | (mean, sem)}`."""

    fn: Callable[[dict[str, Any]], Mapping[str, Any]]

    def describe(self) -> str:
        """A one-line description for the store."""
        return f"{getattr(self.fn, '__module__', '?')}.{getattr(self.fn, '__qualname__', repr(self.fn))}"


@dataclass(frozen=True, slots=True)
class ScriptObjective:
    """A script, run without a shell (parameter values never reach one).

    `.py` runs with the current Python interpreter, `.sh` with `bash` (as the seed runs
    it, executable or not), anything else directly.

    Raises:
        ConfigError: the script does not exist, or is neither `.py`, `.sh` nor
            executable (field `script_path`).
    """

    script_path: str

    def __post_init__(self) -> None:
        path = self.script_path
        if not os.path.isfile(path):
            raise ConfigError("script_path", f"no such file {path!r}")
        if not path.endswith((".py", ".sh")) and not os.access(path, os.X_OK):
            raise ConfigError(
                "script_path",
                f"{path!r} is not executable; make it executable (chmod +x) "
                "or name it .sh (run with bash) or .py (run with this Python)",
            )

    def command(self) -> list[str]:
        """The argv that runs the script (absolute paths)."""
        path = os.path.abspath(self.script_path)
        if path.endswith(".py"):
            return [sys.executable, path]
        if path.endswith(".sh"):
            return ["bash", path]
        return [path]

    def describe(self) -> str:
        """A one-line description for the store."""
        return shlex.join(self.command())


@dataclass(frozen=True, slots=True)
class ContainerObjective:
    """A container image run with the trial's directory mounted at `/job`, its working directory.

    `$JOB_PARAMS_FILE` is `/job/params.json`; the container writes `/job/result.json`.

    Attributes:
        image: the image (`python:3.12-slim`, or an `.sif` file for apptainer).
        command: what to run in it (a shell-style string); None runs the image's default.
        engine: podman, docker, apptainer or singularity.
    """

    image: str
    command: str | None
    engine: str

    def argv(self, workdir: str) -> list[str]:
        """The full command line that runs one trial whose files are in `workdir`.

        Built by the one container command-line builder, `sweepwise.dispatchers.container`.
        """
        return container_argv(
            self.engine,
            self.image,
            shlex.split(self.command) if self.command else [],
            mounts=[Mount(os.path.abspath(workdir), CONTAINER_WORKDIR)],
            workdir=CONTAINER_WORKDIR,
            constants={"JOB_PARAMS_FILE": f"{CONTAINER_WORKDIR}/params.json"},
        )

    def describe(self) -> str:
        """A one-line description for the store."""
        return f"{self.engine} {self.image} {self.command or ''}".strip()


Objective = FunctionObjective | ScriptObjective | ContainerObjective


def _number(value: Any, metric: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"metric {metric!r} must be a finite number (got {value!r})")
    return float(value)


def parse_raw_data(result: Any, metrics: list[str] | None = None) -> dict[str, float | tuple[float, float]]:
    """Check an objective's result and turn it into Ax raw data.

    Args:
        result: `{metric: value}` or `{metric: (mean, sem)}` (a list pair is accepted too).
        metrics: metrics that must be present (the experiment's objectives), if known.

    Returns:
        `{metric: float | (mean, sem)}`.

    Raises:
        ValueError: the result is not such a mapping, a value is not finite, or a metric is missing.
    """
    if not isinstance(result, Mapping):
        raise ValueError(f"the result must be a JSON object {{metric: value}} (got {type(result).__name__})")
    out: dict[str, float | tuple[float, float]] = {}
    for metric, value in result.items():
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise ValueError(f"metric {metric!r} must be a value or a (mean, sem) pair (got {value!r})")
            out[str(metric)] = (_number(value[0], metric), _number(value[1], metric))
        else:
            out[str(metric)] = _number(value, metric)
    missing = [metric for metric in metrics or [] if metric not in out]
    if missing:
        raise ValueError(f"the result has no value for {', '.join(missing)} (got {sorted(out)})")
    return out


__all__ = [
    "CONTAINER_ENGINES",
    "CONTAINER_WORKDIR",
    "ContainerObjective",
    "FunctionObjective",
    "Objective",
    "ScriptObjective",
    "find_container_engine",
    "parse_raw_data",
]
