"""From a validated spec to a running controller: the wiring of store, dispatcher and scheduler."""

from __future__ import annotations

import inspect
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from sweepwise.app.backends import STAGE_FIELDS, build_dispatcher, check_dispatchers, recorded_stage
from sweepwise.app.config import (
    ExperimentSpec,
    apply_overrides,
    check_command,
    config_error,
    load_spec_data,
    refuse_bools,
    scheduler_type,
    word_value,
)
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import redact_env
from sweepwise.core.private import make_private_dirs, write_private_text
from sweepwise.optimizers import Goal, OptimizerSpec
from sweepwise.recipes.loading import ensure_on_path, import_module, module_function
from sweepwise.schedulers import scheduler_classes
from sweepwise.schedulers.base import JobSpec
from sweepwise.schedulers.search import check_resource_parameters, search_of
from sweepwise.stores.location import resolve_store_url
from sweepwise.stores.mirrors import check_mirror, mirrored

if TYPE_CHECKING:
    from sweepwise.core.models import Observation
    from sweepwise.core.protocols import Dispatcher, ExperimentStore
    from sweepwise.engine.controller import AdaptiveController, TickReport
    from sweepwise.optimizers.warm_start import Fitted
    from sweepwise.stores import ExperimentRecord
    from sweepwise.stores.sql import SQLStore


@dataclass
class Experiment:
    """A validated experiment: its spec, its scheduler config and where things live."""

    spec: ExperimentSpec
    base_dir: Path
    scheduler_config: BaseModel
    scheduler_cls: Callable[..., Any]

    @classmethod
    def from_file(cls, path: Path, words: list[str] | None = None) -> Experiment:
        """Load and validate a YAML spec plus `key=value` overrides; raise `ConfigError`."""
        data = load_spec_data(path)
        return cls.from_dict(data, base_dir=path.resolve().parent, words=words)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base_dir: Path, words: list[str] | None = None) -> Experiment:
        """Validate a spec mapping (see `from_file`).

        The modules listed under `imports:` are imported first (from the current
        directory or installed packages), so they can register custom schedulers,
        dispatchers and optimizers.
        """
        import_modules(word_value(words or [], ("imports",), data.get("imports")))  # an imports= word too
        config_cls, scheduler_cls = scheduler_classes(scheduler_type(data, words or []))
        data = apply_overrides(dict(data), words or [], [f for f in config_cls.model_fields if f != "type"])
        refuse_bools(ExperimentSpec, data)
        try:
            spec = ExperimentSpec.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc, fields=list(ExperimentSpec.model_fields), model=ExperimentSpec) from None
        check_dispatchers(spec)
        check_mirror(spec.mirror)
        jobs = {name: _job_spec(getattr(spec, name), name, base_dir) for name in ("train", "eval")}
        if jobs["train"] is None and "recipe_module" not in (spec.scheduler.model_extra or {}):
            raise ConfigError("train", "is required; add train: {cmd: [python, train.py]}")
        fields = config_cls.model_fields
        if spec.parameters and "parameters" not in fields:
            raise ConfigError(
                "parameters",
                f"the {spec.scheduler.type} scheduler searches nothing, so no run would get "
                "them; remove parameters (fixed arguments go in scheduler.train_overrides), or pick a "
                "scheduler that searches: batched_synced, async_capped or grid_search",
            )
        if spec.parameters and "parameters" in fields and "optimizer" in fields:
            _check_space_and_optimizer(spec.parameters, spec.optimizer, spec.goal)
        values: dict[str, Any] = {"experiment_id": spec.name, **jobs}
        optimizer = dict(spec.optimizer)
        if optimizer.get("seed") is None:  # drawn once and stored, so a resumed sweep continues identically
            optimizer["seed"] = secrets.randbelow(2**31)
        for key, value in (
            ("parameters", spec.parameters),
            ("optimizer", optimizer),
            ("goal", spec.goal),
        ):
            if key in fields:
                values[key] = value
        values.update(spec.scheduler.model_extra or {})
        if values.get("protein_config") is not None and "goal" not in data:
            values.pop("goal", None)  # the seed's way: the goal is protein_config's
        refuse_bools(config_cls, values, "scheduler.")
        try:
            config = config_cls.model_validate(values)
        except ValidationError as exc:
            raise config_error(exc, "scheduler", fields=_scheduler_keys(fields, values)) from None
        search = search_of(config)
        if search.metric is not None and "metric" not in data:
            spec = spec.model_copy(update={"metric": search.metric})
        if "goal" in fields:  # the goal in force, recorded with the experiment
            spec = spec.model_copy(update={"goal": search.goal})
            config = config.model_copy(update={"goal": search.goal})
        _check_stopper(spec)
        _check_entrypoints(config)
        _check_warm_start(spec, config, scheduler_cls)
        scheduler_cls(
            config
        )  # building it once checks the rest (a grid's axes, ...) before anything is written
        return cls(spec, base_dir, config, scheduler_cls)

    @classmethod
    def from_config(cls, spec: ExperimentSpec, config: BaseModel, *, base_dir: Path) -> Experiment:
        """An experiment from a spec and an already typed scheduler config (how recipes build one).

        The scheduler config is authoritative: `spec.scheduler.type` picks the scheduler
        class, and `config` must be an instance of its registered config class. The same
        load-time checks as `from_dict` run: dispatchers and `stale_after`, job commands
        (resolved against `base_dir`), entrypoint functions, search space and optimizer. An optimizer
        without a seed gets one drawn here, stored with the experiment.

        Args:
            spec: the experiment's settings (name, store, dispatcher, runs dir, ...).
            config: the scheduler's typed config.
            base_dir: the directory relative job paths are resolved against.

        Raises:
            ConfigError: a check fails; the field is named relative to the scheduler
                config (`scheduler.train.cmd`, `scheduler.recipe_module`, ...).
        """
        import_modules(spec.imports)
        config_cls, scheduler_cls = scheduler_classes(spec.scheduler.type)
        if not isinstance(config, config_cls):
            raise ConfigError(
                "scheduler",
                f"scheduler {spec.scheduler.type!r} takes a {config_cls.__name__}, "
                f"not a {type(config).__name__}",
            )
        check_dispatchers(spec)
        check_mirror(spec.mirror)
        updates: dict[str, Any] = {}
        for name in ("train", "eval"):
            job = getattr(config, name, None)
            if isinstance(job, JobSpec):
                updates[name] = _resolve_job(job, f"scheduler.{name}", base_dir)
        optimizer = getattr(config, "optimizer", None)
        if "parameters" in type(config).model_fields and optimizer is not None:
            search = search_of(config)  # `parameters`, or `protein_config`'s
            if search.parameters:
                settings = search.optimizer.model_dump()
                _check_space_and_optimizer(
                    search.parameters, settings, search.goal, prefix="scheduler.", field=search.field
                )
        if isinstance(optimizer, OptimizerSpec) and optimizer.seed is None:
            updates["optimizer"] = optimizer.model_copy(update={"seed": secrets.randbelow(2**31)})
        config = config.model_copy(update=updates) if updates else config
        _check_stopper(spec)
        _check_entrypoints(config)
        _check_warm_start(spec, config, scheduler_cls)
        scheduler_cls(
            config
        )  # building it once checks the rest (a grid's axes, ...) before anything is written
        return cls(spec, base_dir, config, scheduler_cls)

    def resume(self, stored: dict[str, Any]) -> Experiment:
        """This experiment continuing a stored one (keeps the stored optimizer seed if the spec has none)."""
        seed = stored.get("scheduler_config", {}).get("optimizer", {}).get("seed")
        if seed is None or self.spec.optimizer.get("seed") is not None:
            return self
        current = getattr(self.scheduler_config, "optimizer", None)
        if current is None:
            return self
        config = self.scheduler_config.model_copy(
            update={"optimizer": current.model_copy(update={"seed": seed})}
        )
        return Experiment(self.spec, self.base_dir, config, self.scheduler_cls)

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self.spec.name

    @property
    def runs_root(self) -> Path:
        """Where run directories go (relative to the current directory)."""
        return Path(self.spec.runs_dir).resolve()

    def store_url(self, cli_value: str | None = None) -> str:
        """The store this experiment uses."""
        return resolve_store_url(cli_value, self.spec.store)

    def record(self) -> dict[str, Any]:
        """The spec as stored with the experiment and written to `adaptive_config.json`.

        The `env` values of the train and eval jobs are recorded by name only, except
        those their `record_env` names (README, `train`).
        """
        spec = self.spec.model_dump(mode="json")
        if spec.get("eval_dispatcher") is None:
            spec.pop("eval_dispatcher", None)  # eval jobs run on `dispatcher`
        if not spec.get("warm_start"):
            spec.pop("warm_start", None)  # so records from before `warm_start` compare equal on resume
        config = json.loads(self.scheduler_config.model_dump_json())
        for section in (spec, config):
            for name in ("train", "eval"):
                _redact_job(section.get(name))
        return {
            "spec": spec,
            "scheduler_config": config,
            "runs_root": str(self.runs_root),
            "base_dir": str(self.base_dir),
        }

    def write_adaptive_config(self) -> Path:
        """Write `adaptive_config.json` to the experiment's run dir, for reproducibility."""
        target = self.runs_root / self.name / "adaptive_config.json"
        make_private_dirs(target.parent)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # two starts never share one
        write_private_text(tmp, json.dumps(self.record(), indent=2, sort_keys=True))
        tmp.replace(target)
        return target

    @property
    def marker_path(self) -> Path:
        """The file that ties the experiment's run directories to one incarnation in one store."""
        return self.runs_root / self.name / RUNS_MARKER

    def check_runs_dir(self, stored: ExperimentRecord | None) -> None:
        """Refuse a runs directory that holds runs of another experiment of the same name.

        Call before the store records the experiment: `stored` is its record, None when
        the store does not know it yet (docs/design.md, "Identity of a run directory").

        Raises:
            ConfigError: the directory's runs belong to another store's experiment (or to
                one deleted since), whose claims and results must not be taken as ours.
        """
        directory = self.runs_root / self.name
        marker = _read_marker(self.marker_path)
        theirs = marker.get("incarnation") if marker else None
        ours = stored.incarnation if stored is not None else None
        if stored is None:
            legacy = directory.is_dir() and any(child.is_dir() for child in directory.iterdir())
            if marker is None and not legacy:
                return
        elif theirs is None or ours is None or theirs == ours:
            return
        where = marker.get("store") if marker else None
        raise ConfigError(
            "runs_dir",
            f"{directory} holds the runs of another experiment named {self.name!r}"
            + (f" (recorded in {where})" if where else "")
            + "; set runs_dir to another directory, rename the experiment, or delete that directory",
        )

    def check_runs_dir_creatable(self) -> None:
        """Refuse a runs directory that cannot be created, before anything is written.

        The nearest existing ancestor of `<runs_dir>/<name>` must be a directory in which
        a directory can be made: one is made and removed again (permission bits do not
        tell for root, nor for a pseudo file system like /proc).

        Raises:
            ConfigError: the path cannot be resolved (a symlink loop) or created.
        """
        fix = "set runs_dir to a directory you can write"
        try:
            directory = self.runs_root / self.name
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
            raise ConfigError(
                "runs_dir", f"{self.spec.runs_dir!r} cannot be resolved ({exc}); {fix}"
            ) from None
        existing = directory
        while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError("runs_dir", f"cannot create {directory}: {existing} is not a directory; {fix}")
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".sweepwise-probe-", dir=existing))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(
                "runs_dir", f"cannot create {directory} ({reason} in {existing}); {fix}"
            ) from None

    def check_resume(self, stored: dict[str, Any]) -> str | None:
        """Compare this experiment with the record of the stored one it would resume.

        A change to what the runs mean (the search space, the scheduler type, the train or
        eval command, the goal, metric or optimizer) or to where their jobs run (the type
        of `dispatcher` or `eval_dispatcher`: the jobs it started are found, stopped and
        read through it) is refused; any other change (more `max_trials`, another
        `max_parallel`, a dispatcher option, ...) is allowed and described.

        Args:
            stored: the stored experiment's record (`ExperimentRecord.spec`, see `record`).

        Returns:
            A one-line note naming the allowed changes, or None when nothing changed.

        Raises:
            ConfigError: a change that matters; the message says how to start a new experiment.
        """
        new = self.record()
        stored = _redacted(stored)  # a record written before `record_env` may hold env values
        refusal = _changed_meaning(stored, new)
        if refusal is not None:
            field, what = refusal
            raise ConfigError(
                field,
                f"{what} since experiment {self.name!r} was started, so its runs no longer match the spec; "
                f"to start a new experiment set another name (e.g. name={self.name}-2) or use another "
                "store (--store URL), or undo the change to resume it",
            )
        old_leaves, new_leaves = dict(_leaves(stored)), dict(_leaves(new))
        changes: dict[str, str] = {}  # the field as shown -> its change
        for path in sorted(set(old_leaves) | set(new_leaves), key=lambda p: not p.startswith("spec.")):
            shown = path.removeprefix("spec.").replace("scheduler_config.", "scheduler.")
            before, after = old_leaves.get(path, _UNSET), new_leaves.get(path, _UNSET)
            if before != after and path not in _RESUME_IGNORED and shown not in changes:
                changes[shown] = f"{shown} ({_short(before)} -> {_short(after)})"
        if not changes:
            return None
        shown_changes = list(changes.values())
        listed = ", ".join(shown_changes[:4]) + (f" and {len(changes) - 4} more" if len(changes) > 4 else "")
        return f"note: resuming experiment {self.name!r} with changed {listed}"

    def mark_runs_dir(self, incarnation: str | None, store_url: str) -> None:
        """Record the experiment's incarnation in its runs directory (once; see `check_runs_dir`).

        Raises:
            ConfigError: another store marked the directory first (two sweeps started at once).
        """
        if incarnation is None:
            return
        path = self.marker_path
        make_private_dirs(path.parent)
        data = json.dumps({"experiment": self.name, "incarnation": incarnation, "store": store_url})
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            marker = _read_marker(path)
            if marker is not None and marker.get("incarnation") not in (None, incarnation):
                raise ConfigError(
                    "runs_dir",
                    f"{path.parent} holds the runs of another experiment named {self.name!r}; "
                    "set runs_dir to another directory, rename the experiment, or delete that directory",
                ) from None
            if marker is None or marker.get("incarnation") is None:  # unreadable or legacy: ours now
                _write_text_atomic(path, data)
            return
        with os.fdopen(fd, "w") as handle:
            handle.write(data)

    def make_dispatcher(self, incarnation: str | None = None) -> tuple[Dispatcher, Any]:
        """The dispatcher and the clock that goes with it, built through the dispatcher registry.

        Each stage's dispatcher (`dispatcher`, `eval_dispatcher`) is built as
        `factory(runs_root, experiment, incarnation=incarnation, **options)`; two
        different ones are combined in a `StagedDispatcher`. `simulated` gets a virtual clock.
        """
        return build_dispatcher(self.spec, self.runs_root, incarnation=incarnation)

    def load_warm_start(self, store: SQLStore) -> Fitted | None:
        """The observations the spec's `warm_start` names, read from `store`; None without `warm_start`.

        Reads only: call it before the experiment is recorded, so a bad name writes nothing.

        Raises:
            ConfigError: a named experiment is not in `store`, or its goal differs.
        """
        if not self.spec.warm_start:
            return None
        from sweepwise.app.transfer.warm import load_warm_start
        from sweepwise.space import SearchSpace

        search = search_of(self.scheduler_config)
        space = SearchSpace.from_dict(search.parameters, field=search.field)
        return load_warm_start(store, self.spec.warm_start, space, search.goal, experiment=self.name)

    def build_controller(
        self,
        store: ExperimentStore,
        *,
        on_tick: Callable[[AdaptiveController, TickReport], None] | None = None,
        incarnation: str | None = None,
        warm_start: Sequence[Observation] | None = None,
    ) -> AdaptiveController:
        """A controller wired to `store`, ready to `run()`.

        Args:
            store: the store of the experiment (wrapped in a `MirroredStore` when the
                spec names a `mirror` and it is not wrapped yet; the controller's
                `store.close()` then closes both).
            on_tick: called after every tick (a live display).
            incarnation: the experiment's incarnation id (see `check_runs_dir`).
            warm_start: observations the optimizer sees before the sweep's own
                (`load_warm_start`); the scheduler must take an `optimizer`.
        """
        from sweepwise.engine.controller import AdaptiveController, ControllerSettings

        dispatcher, clock = self.make_dispatcher(incarnation)
        settings = ControllerSettings(
            max_parallel=self.spec.max_parallel,
            monitoring_interval=self.spec.monitoring_interval,
            stale_after=self.spec.stale_after,
            retries=self.spec.retries,
        )
        if warm_start is None:
            scheduler = self.scheduler_cls(self.scheduler_config)
        else:
            from sweepwise.optimizers.warm_start import WarmStarted
            from sweepwise.schedulers.base import build_optimizer

            optimizer = WarmStarted(build_optimizer(self.scheduler_config), warm_start)
            scheduler = self.scheduler_cls(self.scheduler_config, optimizer=optimizer)
        from sweepwise.engine.stopping import Stopper

        return AdaptiveController(
            self.name,
            scheduler,
            dispatcher,
            mirrored(store, self.spec.mirror, self.name),  # docs/stores.md, "Mirrors"
            settings=settings,
            metric=self.spec.metric,
            clock=clock,
            on_tick=on_tick,
            stopper=Stopper(self.spec.stopper, self.spec.metric, self.spec.goal),
        )


RUNS_MARKER = ".sweepwise-experiment.json"
"""In `<runs_dir>/<experiment>/`: the experiment and incarnation its run directories belong to."""


_UNSET = "<unset>"
_RESUME_IGNORED = frozenset({"spec.optimizer.seed", "scheduler_config.optimizer.seed"})  # see `resume`


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a nested mapping, as (dot path, value); lists are leaves."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    else:
        yield path, value


def _short(value: Any) -> str:
    text = json.dumps(value) if value is not _UNSET else value
    return text if len(text) <= 40 else text[:37] + "..."


def _flat_parameters(record: dict[str, Any]) -> dict[str, Any]:
    """The record's parameters by flat name (as the optimizer sees them), else as written."""
    from sweepwise.space import SearchSpace

    config = record.get("scheduler_config") or {}
    protein = config.get("protein_config")
    raw = config.get("parameters") or (protein.get("parameters") if isinstance(protein, dict) else None) or {}
    try:
        return SearchSpace.from_dict(raw).to_dict()
    except (ConfigError, TypeError, ValueError):
        return dict(raw) if isinstance(raw, dict) else {}


def _changed_meaning(stored: dict[str, Any], new: dict[str, Any]) -> tuple[str, str] | None:
    """The first change between two records that changes what the runs mean: (field, what)."""
    old_type = ((stored.get("spec") or {}).get("scheduler") or {}).get("type")
    new_type = new["spec"]["scheduler"]["type"]
    if old_type != new_type:
        return "scheduler.type", f"the scheduler changed from {old_type!r} to {new_type!r}"
    for job_type, field in STAGE_FIELDS.items():  # a run's jobs are found and stopped through their own
        was, now = recorded_stage(stored, job_type)["type"], recorded_stage(new, job_type)["type"]
        if was != now:
            return field, f"the {job_type.short} jobs' dispatcher changed from {was!r} to {now!r}"
    before, after = _flat_parameters(stored), _flat_parameters(new)
    if before != after:
        parts = [
            f"{verb} {', '.join(names)}"
            for verb, names in (
                ("added", sorted(set(after) - set(before))),
                ("removed", sorted(set(before) - set(after))),
                ("changed", sorted(n for n in set(before) & set(after) if before[n] != after[n])),
            )
            if names
        ]
        return "parameters", f"the search space changed ({'; '.join(parts)})"
    old_leaves, new_leaves = dict(_leaves(stored)), dict(_leaves(new))
    for path, field in _MEANINGFUL:
        if old_leaves.get(path, _UNSET) != new_leaves.get(path, _UNSET):
            was, now = _short(old_leaves.get(path, _UNSET)), _short(new_leaves.get(path, _UNSET))
            return field, f"{field} changed from {was} to {now}"
    judged, judging = _stopper_judges(stored), _stopper_judges(new)
    if judged is not None and judging is not None and judged != judging:
        field = "stopper.metric" if judged[0] != judging[0] else "stopper.goal"
        return field, (
            f"the stopper judged {judged[0]!r} ({judged[1]}) and would now judge {judging[0]!r} "
            f"({judging[1]}): the values its runs recorded at the rungs are of the other"
        )
    return None


def _stopper_judges(record: dict[str, Any]) -> tuple[Any, Any] | None:
    """The (metric, goal) an active stopper in a record judges by; None without one."""
    spec = record.get("spec") or {}
    stopper = spec.get("stopper")
    if not isinstance(stopper, dict) or stopper.get("type", "none") == "none":
        return None
    return stopper.get("metric") or spec.get("metric"), stopper.get("goal") or spec.get("goal")


_MEANINGFUL = (  # (record path, field as the user writes it)
    ("scheduler_config.train.cmd", "train.cmd"),
    ("scheduler_config.eval.cmd", "eval.cmd"),
    ("scheduler_config.train.container.image", "train.container.image"),
    ("scheduler_config.eval.container.image", "eval.container.image"),
    ("scheduler_config.recipe_module", "scheduler.recipe_module"),
    ("scheduler_config.train_entrypoint", "scheduler.train_entrypoint"),
    ("scheduler_config.eval_entrypoint", "scheduler.eval_entrypoint"),
    ("spec.goal", "goal"),
    ("spec.metric", "metric"),
    ("scheduler_config.optimizer.type", "optimizer.type"),
)


def _redact_job(job: Any) -> None:
    """Replace, in place, the env values of a recorded job spec that its `record_env` does not name."""
    if not isinstance(job, dict) or not isinstance(job.get("env"), dict):
        return
    allowed = job.get("record_env")
    names = [str(name) for name in allowed] if isinstance(allowed, list) else []
    job["env"] = redact_env({str(k): str(v) for k, v in job["env"].items()}, names)


def _redacted(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of an experiment record with its jobs' env values redacted as `Experiment.record` does."""
    copy: dict[str, Any] = json.loads(json.dumps(record))
    for section in (copy.get("spec"), copy.get("scheduler_config")):
        if isinstance(section, dict):
            for name in ("train", "eval"):
                _redact_job(section.get(name))
    return copy


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _job_spec(raw: dict[str, Any] | None, field: str, base_dir: Path) -> JobSpec | None:
    if raw is None:
        return None
    if isinstance(raw, str | list):
        raw = {"cmd": raw}
    refuse_bools(JobSpec, raw, f"{field}.")
    try:
        job = JobSpec.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, field, fields=list(JobSpec.model_fields)) from None
    return _resolve_job(job, field, base_dir)


def _resolve_job(job: JobSpec, field: str, base_dir: Path) -> JobSpec:
    """The job with its cwd (and its container's host mount paths) made absolute, once its command is known.

    The command of a job with a container is only split: its program is in the image.
    """
    cwd = (base_dir / job.cwd).resolve() if job.cwd else base_dir
    check_command(job.cmd, cwd, f"{field}.cmd", in_container=job.container is not None)
    container = job.container.resolved(cwd) if job.container is not None else None
    return job.model_copy(update={"cwd": str(cwd), "container": container})


def _check_entrypoints(config: BaseModel) -> None:
    """Entrypoint jobs: `recipe_module` imports and has the train / eval functions.

    A job without a command runs `recipe_module.<train|eval>_entrypoint` in the
    controller's current directory, so that directory goes first on `sys.path`
    here, as it does in the job.
    """
    if "recipe_module" not in type(config).model_fields:
        return
    module_name = getattr(config, "recipe_module", None)
    module = None
    for job_field, entry_field in (("train", "train_entrypoint"), ("eval", "eval_entrypoint")):
        if getattr(config, job_field, None) is not None:
            continue
        if not module_name:
            if job_field == "train":
                raise ConfigError(
                    "scheduler.recipe_module",
                    "is required when there is no train command; set it to the module holding "
                    "the train / evaluate functions, or give scheduler.train: {cmd: [python, train.py]}",
                )
            continue
        if module is None:
            ensure_on_path()
            module = import_module(module_name, field="scheduler.recipe_module")
        module_function(module, str(getattr(config, entry_field)), field=f"scheduler.{entry_field}")


def _check_stopper(spec: ExperimentSpec) -> None:
    """A stopper judging another metric than the experiment's must say which way it is better."""
    stopper = spec.stopper
    own_metric = stopper.metric in (None, spec.metric)
    if stopper.type != "none" and not own_metric and stopper.goal is None:
        raise ConfigError(
            "stopper.goal",
            f"is required when stopper.metric ({stopper.metric!r}) is not the experiment's metric "
            f"({spec.metric!r}): add goal: minimize or goal: maximize to the stopper",
        )
    if own_metric and stopper.goal not in (None, spec.goal):
        raise ConfigError(
            "stopper.goal",
            f"is {stopper.goal} but the experiment's goal for the same metric ({spec.metric!r}) is "
            f"{spec.goal}: the stopper would stop the best runs; leave stopper.goal out",
        )


def _check_warm_start(spec: ExperimentSpec, config: BaseModel, scheduler_cls: Callable[..., Any]) -> None:
    """`warm_start` needs a search and a scheduler that takes the optimizer to warm-start.

    Raises:
        ConfigError: the spec names `warm_start` without either.
    """
    if not spec.warm_start:
        return
    if "optimizer" not in inspect.signature(scheduler_cls).parameters:
        raise ConfigError(
            "warm_start",
            f"scheduler {spec.scheduler.type!r} has no optimizer to warm-start; "
            "use scheduler batched_synced or async_capped, or remove warm_start",
        )
    if not search_of(config).parameters:
        raise ConfigError("warm_start", "there is no search space to warm-start; add parameters")


def import_modules(names: Any) -> None:
    """Import the spec's `imports:` (e.g. modules that register custom schedulers).

    Like recipe functions and entrypoint jobs, they are imported from the current
    directory (put first on `sys.path`) or from installed packages / `PYTHONPATH`.

    Raises:
        ConfigError: `imports` is not a list of module names, or one fails to import.
    """
    if not names:
        return
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError("imports", f"expected a list of module names, got {names!r}")
    ensure_on_path()
    for index, name in enumerate(names):
        import_module(name, field=f"imports[{index}]")


def _check_space_and_optimizer(
    parameters: dict[str, Any],
    optimizer: dict[str, Any],
    goal: str,
    *,
    prefix: str = "",
    field: str = "parameters",
) -> None:
    """Build the search space and the optimizer once, so every bad setting fails at load time."""
    from sweepwise.optimizers import make_optimizer
    from sweepwise.space import SearchSpace

    space = SearchSpace.from_dict(parameters, field=f"{prefix}{field}")
    check_resource_parameters(space, f"{prefix}{field}")
    try:
        opt = OptimizerSpec.model_validate(optimizer)
    except ValidationError as exc:
        raise config_error(exc, f"{prefix}optimizer") from None
    make_optimizer(opt, space, goal=Goal(goal))


_FILLED_BY_SPEC = ("experiment_id", "train", "eval", "parameters", "optimizer", "goal")
_RECIPE_KEYS = ("recipe_module", "train_entrypoint", "eval_entrypoint")


def _scheduler_keys(fields: Any, values: dict[str, Any]) -> list[str]:
    """The keys a user may write under `scheduler:` for an error's list: the scheduler's own
    settings, without what the spec fills from elsewhere (`name`, `train`, `parameters`, ...),
    and without a recipe's entrypoints when the jobs are commands."""
    recipe = values.get("recipe_module") is not None or values.get("train") is None
    return ["type"] + [
        name for name in fields if name not in _FILLED_BY_SPEC and (recipe or name not in _RECIPE_KEYS)
    ]


__all__ = ["Experiment", "import_modules", "resolve_store_url"]
