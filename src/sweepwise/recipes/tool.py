"""`AdaptiveTool`: what a recipe function returns — a typed scheduler config plus how to run it.

A recipe is a plain function (`examples.recipes.sweeps.batched_synced`) that builds a
typed scheduler config and returns an `AdaptiveTool`. `sweepwise run pkg.mod.func k=v`
classifies the words against the function, calls it, applies the remaining words as
overrides of the returned tool, and runs `tool.to_experiment()` exactly like a YAML
spec.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sweepwise.app.config import DispatcherSpec, ExperimentSpec, SchedulerSpec
from sweepwise.core.errors import ConfigError
from sweepwise.core.lifecycle import RetryPolicy
from sweepwise.dispatchers import DispatcherType
from sweepwise.recipes.classify import classify, require_arguments
from sweepwise.recipes.loading import load_function
from sweepwise.recipes.values import override_model, suggest, validation_config_error
from sweepwise.schedulers import SchedulerType, canonical_scheduler_name, scheduler_classes
from sweepwise.schedulers.search import search_of

if TYPE_CHECKING:
    from sweepwise.app.experiment import Experiment


class AdaptiveConfig(BaseModel):
    """Seed 002's controller settings, given as `AdaptiveTool(config=AdaptiveConfig(...))`.

    Its values become the tool's `max_parallel` and `monitoring_interval` (unless the
    tool sets those itself). `resume` and `experiment_tags` are accepted and have no
    effect: a sweep resumes whenever its experiment exists (docs/recipes.md).
    """

    model_config = ConfigDict(extra="forbid")

    max_parallel: int = Field(default=1, ge=1)
    monitoring_interval: float = Field(default=60.0, gt=0)
    resume: bool = False
    experiment_tags: list[str] = Field(default_factory=list)


class AdaptiveTool(BaseModel):
    """Seed 002's `AdaptiveTool`: a typed scheduler config and the settings to run it.

    `scheduler` is validated against the config class registered for
    `scheduler_type` (`register_scheduler`), so a dict becomes that class and an
    instance of another class is an error; it serialises with all of its own fields
    (`model_dump_json()` round-trips through `model_validate_json()`).

    Attributes:
        scheduler_type: the registered scheduler name (`train_and_eval`,
            `batched_synced`, or one registered with `register_scheduler`), a
            `SchedulerType` member, or a name differing only in case
            (`TRAIN_AND_EVAL`); the canonical name is stored.
        scheduler: the scheduler's typed config (e.g. `BatchedSyncedSchedulerConfig`);
            its `experiment_id` names the experiment. The seed's `scheduler_config=`
            spelling sets it too.
        dispatcher_type: the dispatcher that runs the jobs (`local`, `simulated`, ...;
            a `DispatcherType` member, matched case-insensitively).
        eval_dispatcher_type: the dispatcher that runs the eval jobs, when not
            `dispatcher_type` (`eval_dispatcher_type=local` on the command line); None:
            the same as `dispatcher_type`.
        max_parallel: training jobs running at once, at most.
        monitoring_interval: seconds between controller ticks (jobs' events wake it early).
        stale_after: seconds without a heartbeat before a job is lost (and retried).
        retries: which lost, failed or timed-out jobs run again, and how often.
        store: the store URL (`--store` and `$SWEEPWISE_STORE` win over it).
        runs_dir: the root of the run directories, relative to the current directory.
        metric: the result key holding the score; None: the config's
            `protein_config.metric`, else `score` (with the seed's fallback
            `evaluator/eval_arena/score` for a job that reports no `score`).
        goal: `maximize` or `minimize`; None keeps the scheduler config's own goal
            (`goal`, else `protein_config.goal`, else `maximize`). When set, it is also
            written into the config's `goal` and `protein_config.goal`.
        experiment_id: the seed's place for the experiment's name; when set, it is
            written into the scheduler config's `experiment_id`.
        stats_server_uri: when set, written into the scheduler config's
            `stats_server_uri` (passed to every job), as the seed does.

    The seed's `config=AdaptiveConfig(...)` is accepted too: see `AdaptiveConfig`.
    """

    model_config = ConfigDict(extra="forbid")

    scheduler_type: str
    scheduler: SerializeAsAny[BaseModel] = Field(
        validation_alias=AliasChoices("scheduler", "scheduler_config")  # the seed's spelling
    )
    dispatcher_type: str = "local"
    eval_dispatcher_type: str | None = None
    max_parallel: int = Field(default=4, ge=1)
    monitoring_interval: float = Field(default=5.0, gt=0)
    stale_after: float = Field(default=3600.0, gt=0)
    retries: RetryPolicy = Field(default_factory=RetryPolicy)
    store: str | None = None
    runs_dir: str = "runs"
    metric: str | None = None
    goal: Literal["maximize", "minimize"] | None = None
    experiment_id: str | None = None
    stats_server_uri: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_scheduler(cls, data: Any) -> Any:
        if isinstance(data, dict) and "scheduler" not in data and "scheduler_config" not in data:
            return {**data, "scheduler": {}}  # the registered config with its defaults
        return data

    @model_validator(mode="before")
    @classmethod
    def _seed_controller_config(cls, data: Any) -> Any:
        """Seed 002's `config=AdaptiveConfig(...)`: its settings, where the tool sets none."""
        if not isinstance(data, dict) or data.get("config") is None:
            return data
        data = dict(data)
        raw = data.pop("config")
        config = raw if isinstance(raw, AdaptiveConfig) else AdaptiveConfig.model_validate(raw)
        data.setdefault("max_parallel", config.max_parallel)
        data.setdefault("monitoring_interval", config.monitoring_interval)
        return data

    @model_validator(mode="after")
    def _seed_tool_fields(self) -> AdaptiveTool:
        """Write `experiment_id` and `stats_server_uri` into the scheduler config, as the seed does."""
        update: dict[str, Any] = {}
        fields = type(self.scheduler).model_fields
        if self.experiment_id is not None:
            if "experiment_id" not in fields:
                raise ValueError(f"{type(self.scheduler).__name__} has no experiment_id to set")
            update["experiment_id"] = self.experiment_id
        if self.stats_server_uri is not None:
            if "stats_server_uri" not in fields:
                raise ValueError(f"{type(self.scheduler).__name__} has no stats_server_uri to set")
            update["stats_server_uri"] = self.stats_server_uri
        if update:
            self.scheduler = self.scheduler.model_copy(update=update)
        return self

    @field_validator("scheduler_type", mode="before")
    @classmethod
    def _known_scheduler(cls, value: Any) -> Any:
        if not isinstance(value, str):  # a `SchedulerType` member is a str
            return value
        name = canonical_scheduler_name(value)
        try:
            scheduler_classes(name)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return name

    @field_validator("dispatcher_type", "eval_dispatcher_type", mode="before")
    @classmethod
    def _known_dispatcher(cls, value: Any) -> Any:
        if not isinstance(value, str):  # a `DispatcherType` member is a str
            return value
        from sweepwise.dispatchers import DISPATCHERS

        name = DISPATCHERS.canonical(value)
        if name not in DISPATCHERS:
            raise ValueError(f"unknown dispatcher {value!r}; choose one of: {', '.join(DISPATCHERS.names())}")
        return name

    @field_validator("scheduler", mode="before")
    @classmethod
    def _typed_scheduler(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.data.get("scheduler_type")
        if name is None:
            return value  # scheduler_type itself failed; that error is reported
        config_cls, _ = scheduler_classes(name)
        if isinstance(value, config_cls):
            return value
        if isinstance(value, BaseModel):
            raise ValueError(
                f"scheduler_type {name!r} takes a {config_cls.__name__}, not a {type(value).__name__}"
            )
        return config_cls.model_validate(value)

    def experiment_spec(self) -> ExperimentSpec:
        """The experiment spec this tool stands for (name = the config's `experiment_id`).

        Raises:
            ConfigError: the experiment id cannot name an experiment.
        """
        config = self.scheduler
        search = search_of(config)  # `parameters` / `goal` / `optimizer`, else `protein_config`'s
        data = {
            "name": getattr(config, "experiment_id", None) or self.scheduler_type,
            "store": self.store,
            "dispatcher": DispatcherSpec(type=self.dispatcher_type),
            "eval_dispatcher": (
                DispatcherSpec(type=self.eval_dispatcher_type) if self.eval_dispatcher_type else None
            ),
            "max_parallel": self.max_parallel,
            "monitoring_interval": self.monitoring_interval,
            "stale_after": self.stale_after,
            "retries": self.retries,
            "runs_dir": self.runs_dir,
            "metric": self.metric or search.metric or "score",
            "goal": self.goal or search.goal,
            "scheduler": SchedulerSpec(type=self.scheduler_type),
            "parameters": search.parameters,
        }
        if isinstance(getattr(config, "optimizer", None), BaseModel):
            data["optimizer"] = search.optimizer.model_dump(mode="json")
        try:
            return ExperimentSpec.model_validate(data)
        except ValidationError as exc:
            error = validation_config_error(exc)
            if error.field == "name":
                raise ConfigError("scheduler.experiment_id", error.message) from None
            raise error from None

    def to_experiment(self, base_dir: str | os.PathLike[str] | None = None) -> Experiment:
        """The validated experiment that `sweepwise run` runs for this tool.

        Args:
            base_dir: the directory that relative job paths (`train.cwd`, scripts) are
                resolved against; default: the current directory.

        Raises:
            ConfigError: a setting fails the same load-time checks as a YAML spec
                (commands, entrypoints, search space, optimizer).
        """
        from sweepwise.app.experiment import Experiment

        config = self.scheduler
        if "goal" in type(config).model_fields:  # the goal in force, recorded with the experiment
            update: dict[str, Any] = {"goal": self.goal or search_of(config).goal}
            protein = getattr(config, "protein_config", None)
            if self.goal is not None and isinstance(protein, BaseModel):
                update["protein_config"] = protein.model_copy(update={"goal": self.goal})
            config = config.model_copy(update=update)
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        return Experiment.from_config(self.experiment_spec(), config, base_dir=base.resolve())


def override_tool(
    tool: AdaptiveTool, overrides: Mapping[str, str], *, other_keys: Iterable[str] = ()
) -> AdaptiveTool:
    """Apply `{dot.path: raw}` overrides to a tool, validated.

    A first segment that is a tool field sets the tool (`max_parallel=2`,
    `scheduler.batch_size=8`); one that is a field of the scheduler config sets the
    config (`batch_size=8`, `train_overrides.trainer.lr=0.01` sets the key
    `trainer.lr` of `train_overrides`).

    Args:
        tool: the tool a recipe returned.
        overrides: raw override words by key.
        other_keys: keys valid elsewhere (the recipe's parameters), offered as
            suggestions for an unknown key.

    Raises:
        ConfigError: an unknown key (with the closest valid ones) or a bad value.
    """
    tool_fields = list(AdaptiveTool.model_fields)
    config_fields = list(type(tool.scheduler).model_fields)
    items: list[tuple[str, list[str], str]] = []
    for key, raw in overrides.items():
        path = key.split(".")
        if path[0] in tool_fields:
            items.append((key, path, raw))
        elif path[0] in config_fields:
            items.append((key, ["scheduler", *path], raw))
        else:
            choices = [*tool_fields, *config_fields, *(f"scheduler.{f}" for f in config_fields), *other_keys]
            raise ConfigError(key, f"unknown key; {suggest(key, choices)}")
    return override_model(tool, items) if items else tool


def call_recipe(fn: Callable[..., Any], words: Iterable[str], *, name: str | None = None) -> AdaptiveTool:
    """Classify `words` against a recipe function, call it, and override the tool it returns.

    Args:
        fn: the recipe function (returns an `AdaptiveTool`).
        words: `key=value` words: the function's parameters, then tool overrides.
        name: how errors name the recipe (default: the function's name).

    Raises:
        ConfigError: a bad word, a pydantic error raised while the recipe built its
            config, or a recipe that does not return an `AdaptiveTool`.
    """
    label = name or str(getattr(fn, "__qualname__", fn))
    words = list(words)
    classified = classify(fn, words)
    require_arguments(fn, classified.args)
    try:
        tool = fn(**classified.args)
    except ValidationError as exc:  # the recipe built a config from a bad value
        raise validation_config_error(exc) from None
    if not isinstance(tool, AdaptiveTool):
        raise ConfigError(
            label,
            f"returned {type(tool).__name__}, not an AdaptiveTool; "
            "return AdaptiveTool(scheduler_type=..., scheduler=<typed config>)",
        )
    return override_tool(tool, classified.overrides, other_keys=inspect.signature(fn).parameters)


def load_recipe(target: str) -> Callable[..., Any]:
    """Import a recipe function from `package.module.function`.

    Raises:
        ConfigError: naming `target` when the module does not import or has no such function.
    """
    return load_function(target)


__all__ = [
    "AdaptiveConfig",
    "AdaptiveTool",
    "DispatcherType",
    "SchedulerType",
    "call_recipe",
    "load_recipe",
    "override_tool",
]
