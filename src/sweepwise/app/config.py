"""Experiment specs: the YAML file a user writes, validated before anything is written.

Every error is a `ConfigError` naming the field and the fix in one line.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sweepwise.core.errors import ConfigError
from sweepwise.core.lifecycle import RetryPolicy
from sweepwise.recipes.values import parse_value

DEFAULT_STORE = "sqlite:///sweepwise.db"


class DispatcherSpec(BaseModel):
    """Which dispatcher runs the jobs, with its options."""

    model_config = ConfigDict(extra="allow")

    type: str = "local"


class SchedulerSpec(BaseModel):
    """Which scheduler decides the jobs; every other key is a field of its typed config."""

    model_config = ConfigDict(extra="allow")

    type: str = "batched_synced"


_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# A pattern's rule in words, for its error (pydantic would print the regex).
_PATTERN_WORDS = {_NAME_PATTERN: "may hold only letters, digits, `_ . -`, starting with a letter or digit"}


class ExperimentSpec(BaseModel):
    """An experiment, as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=_NAME_PATTERN)
    imports: list[str] = Field(
        default_factory=list,
        description="modules imported before the scheduler is looked up, e.g. ones that "
        "register a custom scheduler with @register_scheduler",
    )
    store: str | None = None
    dispatcher: DispatcherSpec = Field(default_factory=DispatcherSpec)
    max_parallel: int = Field(default=4, ge=1)
    monitoring_interval: float = Field(default=5.0, gt=0)
    stale_after: float = Field(default=3600.0, gt=0)
    retries: RetryPolicy = Field(default_factory=RetryPolicy)
    runs_dir: str = "runs"
    metric: str = "score"
    goal: Literal["maximize", "minimize"] = "maximize"
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    optimizer: dict[str, Any] = Field(default_factory=lambda: {"type": "protein"})
    train: dict[str, Any] | None = None
    eval: dict[str, Any] | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("dispatcher", "scheduler", mode="before")
    @classmethod
    def _type_shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


def _closest(word: str, choices: list[str]) -> str:
    unique = sorted(set(choices))  # a scheduler's field may also be a spec field (`eval`)
    # 0.75: a typo or a plural (`trian`, `goals`, `cpus`), not any word sharing a few letters
    near = difflib.get_close_matches(word, unique, n=3, cutoff=0.75)
    return f"did you mean {' or '.join(near)}?" if near else f"valid keys: {', '.join(unique)}"


def config_error(exc: ValidationError, prefix: str = "", fields: list[str] | None = None) -> ConfigError:
    """Turn pydantic's first error into a one-line `ConfigError` with the field's path."""
    err = exc.errors()[0]
    path = ".".join(str(part) for part in (*([prefix] if prefix else []), *err["loc"]))
    kind = err["type"]
    if kind == "extra_forbidden":
        last = str(err["loc"][-1]) if err["loc"] else ""
        return ConfigError(path, f"unknown field; {_closest(last, fields or [])}")
    if kind == "missing":
        return ConfigError(path, "is required; add it to the spec")
    got = err.get("input")
    got_text = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    if kind == "string_pattern_mismatch":
        pattern = str((err.get("ctx") or {}).get("pattern", ""))
        return ConfigError(path, f"{_PATTERN_WORDS.get(pattern, f'must match {pattern}')}{got_text}")
    return ConfigError(path, f"{err['msg'].lower()}{got_text}")


def apply_overrides(data: dict[str, Any], words: list[str], scheduler_fields: list[str]) -> dict[str, Any]:
    """Apply `key=value` words as dot-path overrides of the spec.

    A first key that is not a spec field but is a field of the scheduler's config
    (`max_trials=20`) goes to `scheduler`.
    """
    top_fields = list(ExperimentSpec.model_fields)
    for word in words:
        key, sep, raw = word.partition("=")
        if not sep or not key:
            raise ConfigError(word, "expected key=value (e.g. max_trials=20)")
        path = key.split(".")
        if path[0] not in top_fields:
            if path[0] in scheduler_fields:
                path = ["scheduler", *path]
            else:
                raise ConfigError(key, f"unknown key; {_closest(path[0], top_fields + scheduler_fields)}")
        target: dict[str, Any] = data
        for part in path[:-1]:
            node = target.get(part)
            if isinstance(node, str) and part in ("scheduler", "dispatcher"):
                node = {"type": node}
            if node is None:
                node = {}
            if not isinstance(node, dict):
                raise ConfigError(key, f"{part} is not a mapping, so {key} cannot be set")
            target[part] = node
            target = node
        target[path[-1]] = parse_value(raw)
    return data


def load_spec_data(path: Path) -> dict[str, Any]:
    """Read a spec file as a mapping, with one-line errors for unreadable or malformed YAML."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(str(path), "no such spec file; check the path") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read it ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(str(path), f"malformed YAML{where}: {problem}; fix the file's syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "the spec must be a YAML mapping (name:, train:, parameters:, ...)")
    return data


def check_command(cmd: str | list[str], cwd: Path, field: str) -> None:
    """Fail at load time when a job's program, or its Python script, does not exist."""
    import shlex

    argv = shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]
    if not argv:
        raise ConfigError(field, "is empty; give the command to run, e.g. [python, train.py]")
    program = argv[0]
    if "/" in program:
        if not (cwd / program).exists():
            raise ConfigError(field, f"command {program!r} not found (relative to {cwd}); fix the path")
    elif shutil.which(program) is None:
        raise ConfigError(field, f"command {program!r} not found on PATH; install it or fix the name")
    if Path(program).name.startswith("python") and len(argv) > 1 and argv[1].endswith(".py"):
        if not (cwd / argv[1]).exists():
            raise ConfigError(field, f"script {argv[1]!r} not found in {cwd}; fix the path")


__all__ = [
    "DEFAULT_STORE",
    "DispatcherSpec",
    "ExperimentSpec",
    "SchedulerSpec",
    "apply_overrides",
    "check_command",
    "config_error",
    "load_spec_data",
]
