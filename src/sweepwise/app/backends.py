"""The dispatchers of an experiment, per stage, built through the dispatcher registry.

A spec names the dispatcher of training jobs (`dispatcher:`) and, optionally, another
one for eval jobs (`eval_dispatcher:`, by default the same). Both are built by
`sweepwise.dispatchers.dispatcher_factory(type)` as
`factory(runs_root, experiment, incarnation=..., **options)` (the `simulated`
dispatcher excepted: it runs in virtual time with its clock); two different ones are
combined in a `StagedDispatcher`. `sweepwise cancel` and `sweepwise logs` build the
dispatcher a run's job was started with from the experiment's record the same way.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import JobTypes
from sweepwise.dispatchers import dispatcher_factory

if TYPE_CHECKING:
    from sweepwise.app.config import ExperimentSpec
    from sweepwise.core.protocols import Clock, Dispatcher, LogReader

SIMULATED = "simulated"
STAGE_FIELDS = {JobTypes.LAUNCH_TRAINING: "dispatcher", JobTypes.LAUNCH_EVAL: "eval_dispatcher"}
"""The spec field that names each stage's dispatcher."""

_PASSED = ("runs_root", "experiment", "incarnation")  # what the builder passes itself: not options


def stage_specs(spec: ExperimentSpec) -> dict[JobTypes, dict[str, Any]]:
    """Each stage's dispatcher as `{type, **options}`; eval's defaults to training's."""
    train = spec.dispatcher.model_dump(mode="json")
    evaluate = spec.eval_dispatcher.model_dump(mode="json") if spec.eval_dispatcher is not None else train
    return {JobTypes.LAUNCH_TRAINING: train, JobTypes.LAUNCH_EVAL: evaluate}


def check_dispatchers(spec: ExperimentSpec) -> None:
    """Check at load time that each stage's dispatcher exists and takes the options given.

    Raises:
        ConfigError: an unknown dispatcher (listing the known ones), an option its
            factory does not take, a factory that does not follow the constructor
            contract, `simulated` for one stage only, or a `stale_after` shorter than two
            of a local dispatcher's heartbeats.
    """
    stages = stage_specs(spec)
    types = {stage["type"] for stage in stages.values()}
    if SIMULATED in types and stages[JobTypes.LAUNCH_TRAINING] != stages[JobTypes.LAUNCH_EVAL]:
        raise ConfigError(
            "eval_dispatcher",
            "the simulated dispatcher runs in virtual time, so both stages must use it alike; "
            "remove eval_dispatcher, or use another dispatcher for both",
        )
    given = [JobTypes.LAUNCH_TRAINING] + ([JobTypes.LAUNCH_EVAL] if spec.eval_dispatcher is not None else [])
    for job_type in given:
        field, stage = STAGE_FIELDS[job_type], stages[job_type]
        _check_stage(stage, field)
        _check_stale_after(spec.stale_after, stage, field)


def _check_stage(stage: Mapping[str, Any], field: str) -> None:
    name = str(stage["type"])
    options = sorted(key for key in stage if key != "type")
    if name == SIMULATED:
        accepted: set[str] | None = {"behaviour"}
    else:
        try:
            factory = dispatcher_factory(name)
        except ConfigError as exc:
            raise ConfigError(field, exc.message) from None
        accepted = _accepted_options(factory, name, field)
    unknown = [option for option in options if accepted is not None and option not in accepted]
    if unknown:
        listed = ", ".join(sorted(accepted or ())) or "none"
        raise ConfigError(
            f"{field}.{unknown[0]}",
            f"the {name} dispatcher takes no option {unknown[0]!r}; remove it (its options: {listed})",
        )


def _accepted_options(factory: Callable[..., Any], name: str, field: str) -> set[str] | None:
    """The option names `factory` takes besides what the builder passes; None: any (`**options`).

    Raises:
        ConfigError: the factory cannot be called as the constructor contract says.
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read (a builtin): trust it
        return None
    try:
        signature.bind(Path("runs"), "experiment", incarnation=None)
    except TypeError as exc:
        raise ConfigError(
            field,
            f"the {name} dispatcher cannot be built as factory(runs_root, experiment, *, incarnation=None, "
            f"**options) ({exc}); fix its constructor (docs/backends.md, 'Plug-in door')",
        ) from None
    parameters = signature.parameters.values()
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in keyword} - set(_PASSED)


def _check_stale_after(stale_after: float, stage: Mapping[str, Any], field: str) -> None:
    """A healthy job must be able to miss a heartbeat before it is marked STALE.

    Dispatchers whose supervisors send heartbeats take a `heartbeat_interval` (local,
    slurm); `stale_after` must be at least twice that interval (by default the
    dispatcher's own).
    """
    if stage["type"] == SIMULATED:
        return
    try:
        signature = inspect.signature(dispatcher_factory(str(stage["type"])))
    except (ConfigError, TypeError, ValueError):
        return  # reported by `_check_stage`
    parameter = signature.parameters.get("heartbeat_interval")
    if parameter is None:
        return
    default = parameter.default
    interval = stage.get("heartbeat_interval", default)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(
            f"{field}.heartbeat_interval", f"expected a number of seconds > 0, got {interval!r}"
        )
    if stale_after < 2 * interval:
        raise ConfigError(
            "stale_after",
            f"{stale_after:g} s is below twice the dispatcher's heartbeat interval "
            f"({interval:g} s), so healthy jobs would be marked STALE; set stale_after >= {2 * interval:g}",
        )


def build_stage(
    stage: Mapping[str, Any], runs_root: Path, experiment: str, *, incarnation: str | None = None
) -> Dispatcher:
    """The dispatcher `{type, **options}` names, built by its registered factory.

    Raises:
        ConfigError: the type is unknown, or an option is invalid.
    """
    options = {key: value for key, value in stage.items() if key != "type"}
    factory = dispatcher_factory(str(stage["type"]))
    dispatcher: Dispatcher = factory(Path(runs_root), experiment, incarnation=incarnation, **options)
    return dispatcher


def build_dispatcher(
    spec: ExperimentSpec, runs_root: Path, *, incarnation: str | None = None
) -> tuple[Dispatcher, Clock]:
    """The experiment's dispatcher (a `StagedDispatcher` when the stages differ) and its clock."""
    from sweepwise.core.clock import RealClock

    stages = stage_specs(spec)
    train = stages[JobTypes.LAUNCH_TRAINING]
    if train["type"] == SIMULATED:
        return _simulated(train)
    dispatcher = build_stage(train, runs_root, spec.name, incarnation=incarnation)
    if stages[JobTypes.LAUNCH_EVAL] == train:
        return dispatcher, RealClock()
    from sweepwise.dispatchers.staged import StagedDispatcher

    evaluate = build_stage(stages[JobTypes.LAUNCH_EVAL], runs_root, spec.name, incarnation=incarnation)
    return StagedDispatcher(dispatcher, evaluate), RealClock()


def _simulated(stage: Mapping[str, Any]) -> tuple[Dispatcher, Clock]:
    from sweepwise.core.clock import VirtualClock
    from sweepwise.dispatchers.simulated import SimulatedDispatcher

    clock = VirtualClock()
    behaviour = stage.get("behaviour")
    fn = _import_object(str(behaviour), "dispatcher.behaviour") if behaviour else None
    return SimulatedDispatcher(clock, fn), clock


def _import_object(path: str, field: str) -> Any:
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(field, f"cannot import {path!r}; give module.function") from None


# -- the dispatchers of a stored experiment (`sweepwise cancel`, `sweepwise logs`) -------------


def recorded_stage(record: Mapping[str, Any], job_type: JobTypes) -> dict[str, Any]:
    """The dispatcher `{type, **options}` a stored experiment's jobs of `job_type` run on.

    Args:
        record: the experiment's record (`ExperimentRecord.spec`: `Experiment.record()`).
        job_type: the stage.
    """
    spec = record.get("spec") or {}
    stage = spec.get("eval_dispatcher") if job_type is JobTypes.LAUNCH_EVAL else None
    stage = stage or spec.get("dispatcher") or {"type": "local"}
    return {"type": stage} if isinstance(stage, str) else dict(stage)


def recorded_dispatcher(
    record: Mapping[str, Any], experiment: str, job_type: JobTypes, *, incarnation: str | None = None
) -> Dispatcher | None:
    """The dispatcher a stored experiment's jobs of `job_type` were started with, built anew.

    The spec's `imports:` are imported first (from the current directory), as `run` does.

    Returns:
        The dispatcher, or None when there is none to ask: `simulated` (its jobs live in
        its controller's memory) or a name no registered dispatcher has (e.g. the Ax
        facade's `ax:<runner>`, whose runner owns its jobs).

    Raises:
        ConfigError: an `imports:` module fails to import, or the options are refused.
    """
    stage, factory = _recorded_factory(record, job_type)
    if factory is None:
        return None
    return _build_recorded(record, stage, experiment, incarnation)


def _recorded_factory(
    record: Mapping[str, Any], job_type: JobTypes
) -> tuple[dict[str, Any], Callable[..., Any] | None]:
    """The stage's `{type, **options}` and its factory (None: simulated, or no such dispatcher)."""
    stage = recorded_stage(record, job_type)
    if stage["type"] == SIMULATED:
        return stage, None
    imports = (record.get("spec") or {}).get("imports")
    if imports:
        from sweepwise.app.experiment import import_modules

        import_modules(imports)
    from sweepwise.dispatchers import DISPATCHERS

    return stage, DISPATCHERS.find(str(stage["type"]))


def _build_recorded(
    record: Mapping[str, Any], stage: Mapping[str, Any], experiment: str, incarnation: str | None
) -> Dispatcher:
    runs_root = Path(str(record.get("runs_root", "runs")))
    return build_stage(stage, runs_root, experiment, incarnation=incarnation)


def recorded_log_reader(
    record: Mapping[str, Any], experiment: str, job_type: JobTypes, *, incarnation: str | None = None
) -> LogReader | None:
    """The recorded dispatcher of `job_type` if it reads logs itself (`LogReader`), else None.

    A dispatcher class without `read_log` is not built at all (the local one: its logs
    are files in the run directory).
    """
    from sweepwise.core.protocols import LogReader

    stage, factory = _recorded_factory(record, job_type)
    if factory is None or (isinstance(factory, type) and not hasattr(factory, "read_log")):
        return None
    dispatcher = _build_recorded(record, stage, experiment, incarnation)
    return dispatcher if isinstance(dispatcher, LogReader) else None


__all__ = [
    "SIMULATED",
    "STAGE_FIELDS",
    "build_dispatcher",
    "build_stage",
    "check_dispatchers",
    "recorded_dispatcher",
    "recorded_log_reader",
    "recorded_stage",
    "stage_specs",
]
