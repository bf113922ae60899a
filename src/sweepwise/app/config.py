"""Experiment specs: the YAML file a user writes, validated before anything is written.

Every error is a `ConfigError` naming the field and the fix in one line.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from sweepwise.core.container import CONFIG_ERROR
from sweepwise.core.errors import ConfigError
from sweepwise.core.lifecycle import RetryPolicy
from sweepwise.core.yaml_words import WordKeyLoader
from sweepwise.dispatchers.launch import split_command
from sweepwise.engine.stopping import StopperSpec
from sweepwise.recipes.values import parse_value
from sweepwise.schedulers import canonical_scheduler_name

DEFAULT_STORE = "sqlite:///sweepwise.db"
NAME_MAX = 100
"""The longest experiment name: it names a directory and must fit the store's 255-character column."""


class DispatcherSpec(BaseModel):
    """Which dispatcher runs the jobs (`type`, a registered name), with its options (the other keys)."""

    model_config = ConfigDict(extra="allow")

    type: str = "local"


class SchedulerSpec(BaseModel):
    """Which scheduler decides the jobs; every other key is a field of its typed config."""

    model_config = ConfigDict(extra="allow")

    type: str = "batched_synced"

    @field_validator("type")
    @classmethod
    def _canonical_type(cls, value: str) -> str:
        return canonical_scheduler_name(value)  # `BATCHED_SYNCED` is stored as `batched_synced`


_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# A pattern's rule in words, for its error (pydantic would print the regex).
_PATTERN_WORDS = {_NAME_PATTERN: "may hold only letters, digits, `_ . -`, starting with a letter or digit"}


class ExperimentSpec(BaseModel):
    """An experiment, as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=_NAME_PATTERN)
    imports: list[str] = Field(
        default_factory=list,
        description="modules imported before the scheduler is looked up, e.g. ones that "
        "register a custom scheduler with @register_scheduler",
    )
    store: str | None = None
    mirror: str | dict[str, Any] | None = Field(
        default=None, description="mlflow or wandb, or {type: ..., option: ...}: runs copied there too"
    )
    dispatcher: DispatcherSpec = Field(default_factory=DispatcherSpec)
    eval_dispatcher: DispatcherSpec | None = Field(
        default=None, description="the dispatcher of eval jobs, when not `dispatcher`"
    )
    max_parallel: StrictInt = Field(default=4, ge=1)
    monitoring_interval: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    stale_after: float = Field(default=3600.0, gt=0, allow_inf_nan=False)
    retries: RetryPolicy = Field(default_factory=RetryPolicy)
    stopper: StopperSpec = Field(
        default_factory=StopperSpec,
        description="none, asha or median, or {type: ...}: runs stopped early by what they report",
    )
    runs_dir: str = "runs"
    metric: str = "score"
    goal: Literal["maximize", "minimize"] = "maximize"
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    optimizer: dict[str, Any] = Field(default_factory=lambda: {"type": "protein"})
    warm_start: list[str] = Field(
        default_factory=list,
        description="experiments in the same store whose completed runs the optimizer learns from "
        'before its first suggestion (docs/stores.md, "Export and import")',
    )
    train: dict[str, Any] | None = None
    eval: dict[str, Any] | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("warm_start", mode="before")
    @classmethod
    def _one_name_or_many(cls, value: Any) -> Any:
        names = [value] if isinstance(value, str) else value
        if isinstance(names, list):
            for name in names:
                if isinstance(name, str) and not re.fullmatch(_NAME_PATTERN, name):
                    raise PydanticCustomError(
                        CONFIG_ERROR,
                        f"{name!r} is not an experiment name: a name {_PATTERN_WORDS[_NAME_PATTERN]}",
                    )
        return names

    @field_validator("dispatcher", "eval_dispatcher", "scheduler", "stopper", mode="before")
    @classmethod
    def _type_shorthand(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:  # a bare `stopper:` stops nothing, as leaving it out does
            return {"type": "none"} if info.field_name == "stopper" else None
        if isinstance(value, str):
            return {"type": value}
        if not isinstance(value, dict | BaseModel):
            raise PydanticCustomError(
                CONFIG_ERROR,
                f"must be a name or a mapping such as {{type: <name>, ...}} (got {_shown(value)})",
            )
        return value


def _closest(word: str, choices: list[str]) -> str:
    unique = sorted(set(choices))  # a scheduler's field may also be a spec field (`eval`)
    # 0.75: a typo or a plural (`trian`, `goals`, `cpus`), not any word sharing a few letters
    near = difflib.get_close_matches(word, unique, n=3, cutoff=0.75)
    return f"did you mean {' or '.join(near)}?" if near else f"valid keys: {', '.join(unique)}"


def _nested_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The fields of the model that holds the last item of `loc` (a path from `model`), or None."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        inner = [t for t in (field.annotation, *get_args(field.annotation)) if isinstance(t, type)]
        found = next((t for t in inner if issubclass(t, BaseModel)), None)
        if found is None:
            return None
        model = found
    return list(model.model_fields)


def _shown(value: Any) -> str:
    """A value as an error quotes it: its repr, cut short (a word may be thousands of characters)."""
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python writes
        return "an integer too long to show"
    return text if len(text) <= 80 else text[:77] + "..."


def config_error(
    exc: ValidationError,
    prefix: str = "",
    fields: list[str] | None = None,
    model: type[BaseModel] | None = None,
) -> ConfigError:
    """Turn pydantic's first error into a one-line `ConfigError` with the field's path.

    An unknown key is matched against `fields` (the keys where it was written), or, within a
    nested model of `model`, against that model's fields.
    """
    err = exc.errors()[0]
    if model is not None and len(err["loc"]) > 1:
        fields = _nested_fields(model, tuple(err["loc"]))
    path = prefix
    for part in err["loc"]:  # a list item as `mounts[0]`
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    kind = err["type"]
    if kind == CONFIG_ERROR:  # our own validators' messages, as written
        return ConfigError(path, err["msg"])
    if kind == "extra_forbidden":
        last = str(err["loc"][-1]) if err["loc"] else ""
        return ConfigError(path, f"unknown field; {_closest(last, fields) if fields else 'remove it'}")
    if kind == "missing":
        return ConfigError(path, "is required; add it to the spec")
    got = err.get("input")
    if kind == "string_too_long" and isinstance(got, str):
        limit = (err.get("ctx") or {}).get("max_length")
        return ConfigError(path, f"is {len(got)} characters long; shorten it to at most {limit}")
    if kind == "finite_number":
        return ConfigError(path, f"must be a finite number (got {got!r}); give a number such as 5")
    got_text = f" (got {_shown(got)})" if not isinstance(got, dict | list) else ""
    if kind == "string_pattern_mismatch":
        pattern = str((err.get("ctx") or {}).get("pattern", ""))
        return ConfigError(path, f"{_PATTERN_WORDS.get(pattern, f'must match {pattern}')}{got_text}")
    return ConfigError(path, f"{err['msg'].lower()}{got_text}")


_TYPED = ("scheduler", "dispatcher", "eval_dispatcher", "stopper")  # a name or {type: name, ...}


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
        value = parse_value(raw)
        if len(path) == 1 and path[0] in _TYPED and isinstance(data.get(path[0]), dict):
            path = [path[0], "type"]  # `scheduler=async_capped` switches the type, keeping the fields
        for part in path[:-1]:
            node = target.get(part)
            if isinstance(node, str) and part in _TYPED:
                node = {"type": node}
            if node is None:
                node = {}
            if not isinstance(node, dict):
                raise ConfigError(key, f"{part} is not a mapping, so {key} cannot be set")
            target[part] = node
            target = node
        target[path[-1]] = value
    return data


def word_value(words: list[str], keys: tuple[str, ...], default: Any) -> Any:
    """What the last `key=value` word naming one of `keys` gives (read as YAML), else `default`.

    For the settings needed before the overrides are applied: the scheduler, the imports.
    """
    for word in words:
        key, _, raw = word.partition("=")
        if key in keys:
            default = parse_value(raw)
    return default


def scheduler_type(data: dict[str, Any], words: list[str]) -> str:
    """The scheduler type the spec names, after the `scheduler=X` / `scheduler.type=X` words.

    Raises:
        ConfigError: `scheduler` is neither a name nor a mapping.
    """
    scheduler = data.get("scheduler")
    if scheduler is None:
        scheduler = {}
    if not isinstance(scheduler, str | dict):
        raise ConfigError(
            "scheduler",
            f"expected a scheduler name or a mapping like {{type: batched_synced}}, got {scheduler!r}",
        )
    chosen = scheduler if isinstance(scheduler, str) else scheduler.get("type", "batched_synced")
    chosen = word_value(words, ("scheduler", "scheduler.type"), chosen)
    if not isinstance(chosen, str):
        raise ConfigError("scheduler.type", f"expected a scheduler name, got {chosen!r}")
    return chosen


class _UniqueKeyLoader(WordKeyLoader):
    """The spec's YAML loader (`WordKeyLoader`), refusing a mapping that repeats a key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: PyYAML refuses it below, with its own message
            if key in seen:
                problem = f"duplicate key {key!r} (first at line {seen[key]})"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_spec_data(path: Path) -> dict[str, Any]:
    """Read a spec file as a mapping, with one-line errors for unreadable or malformed YAML.

    The file must be UTF-8 and no mapping may repeat a key.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "no such spec file; check the path") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read it ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), f"is not UTF-8 text (byte {exc.start}); save the spec as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(str(path), f"malformed YAML{where}: {problem}; fix the file's syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "the spec must be a YAML mapping (name:, train:, parameters:, ...)")
    return data


def check_command(cmd: str | list[str], cwd: Path, field: str, *, in_container: bool = False) -> None:
    """Fail at load time when a job's program, or its Python script, cannot be run.

    A program given as a path must be an executable file; `python script.py`'s script
    must be a readable file. A string command is split like a shell would (`shlex`).
    The command of a job that runs in a container (`in_container`) is only split: its
    program and files are in the image.
    """
    argv = split_command(cmd, field)
    if not argv:
        raise ConfigError(field, "is empty; give the command to run, e.g. [python, train.py]")
    program = argv[0]
    if "\x00" in "".join(argv):
        raise ConfigError(field, "contains a NUL byte; remove it")
    if in_container:
        return
    if "/" in program:
        path = cwd / program
        if not path.exists():
            raise ConfigError(field, f"command {program!r} not found (relative to {cwd}); fix the path")
        if not path.is_file() or not os.access(path, os.X_OK):
            raise ConfigError(
                field, f"command {program!r} is not an executable file; chmod +x it or fix the path"
            )
    elif shutil.which(program) is None:
        raise ConfigError(field, f"command {program!r} not found on PATH; install it or fix the name")
    if Path(program).name.startswith("python") and len(argv) > 1 and argv[1].endswith(".py"):
        script = cwd / argv[1]
        if not script.exists():
            raise ConfigError(field, f"script {argv[1]!r} not found in {cwd}; fix the path")
        if not script.is_file() or not os.access(script, os.R_OK):
            raise ConfigError(field, f"script {argv[1]!r} is not a readable file; fix the path")


def refuse_bools(model: type[BaseModel], data: Any, prefix: str = "") -> None:
    """A YAML `true` is not a whole number: refuse it for `model`'s int fields.

    Pydantic accepts a bool for an int (`max_trials: true` would be 1).

    Raises:
        ConfigError: an int field of `model` holds a bool.
    """
    if not isinstance(data, dict):
        return
    for name, info in model.model_fields.items():
        value = data.get(name)
        if isinstance(value, bool) and info.annotation in (int, int | None):
            raise ConfigError(f"{prefix}{name}", f"expected a whole number, got {str(value).lower()}")


__all__ = [
    "DEFAULT_STORE",
    "DispatcherSpec",
    "ExperimentSpec",
    "SchedulerSpec",
    "apply_overrides",
    "check_command",
    "config_error",
    "load_spec_data",
    "refuse_bools",
    "scheduler_type",
]
