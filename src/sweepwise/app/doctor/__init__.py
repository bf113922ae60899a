"""`sweepwise doctor`: check a backend, and say how to fix each problem found.

A dispatcher checks its own backend when its class is `Diagnosable` (a `diagnose`
classmethod or staticmethod, called without building it). The checks of the local,
SLURM and Ray backends are kept here, by dispatcher name, until their classes take them;
a container runtime named by a spec's `train.container` / `eval.container` (or
`--container`) is checked too. Nothing that runs a sweep's job is built; the SLURM check
submits one test job of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sweepwise.core.container import ContainerRuntime, ContainerSpec
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import Check

BackendChecks = Callable[[Path, Mapping[str, Any]], list[Check]]


def _local(runs_root: Path, options: Mapping[str, Any]) -> list[Check]:
    from sweepwise.app.doctor._local import check_local

    return check_local(runs_root, options)


def _slurm(runs_root: Path, options: Mapping[str, Any]) -> list[Check]:
    from sweepwise.app.doctor._slurm import check_slurm

    return check_slurm(runs_root, options)


def _ray(runs_root: Path, options: Mapping[str, Any]) -> list[Check]:
    from sweepwise.app.doctor._ray import check_ray

    return check_ray(runs_root, options)


CHECKS: dict[str, BackendChecks] = {"local": _local, "slurm": _slurm, "ray": _ray}
"""The checks of built-in dispatchers whose classes are not `Diagnosable` (yet), by name."""


@dataclass(frozen=True, slots=True)
class Target:
    """One thing to check: a dispatcher with its options, or a container runtime (with an image)."""

    label: str
    dispatcher: str | None = None
    options: Mapping[str, Any] | None = None
    runtime: ContainerRuntime | None = None
    image: str | None = None


def targets(
    spec_path: Path | None, *, dispatcher: str | None = None, container: str | None = None
) -> tuple[Path, list[Target]]:
    """What `sweepwise doctor` checks, and the runs dir it checks for.

    Args:
        spec_path: a spec: its stages' dispatchers (with their options) and its jobs' containers.
        dispatcher: check this dispatcher only (with the spec's options when the spec names it).
        container: check this container runtime as well.

    Returns:
        (runs_root, targets); with neither a spec nor a name, every registered dispatcher.

    Raises:
        ConfigError: the spec does not load, or a name is unknown (no checks and not registered).
    """
    from sweepwise.dispatchers import available_dispatchers

    runs_root = Path("runs").resolve()
    stages: list[dict[str, Any]] = []
    found: list[Target] = []
    if spec_path is not None:
        runs_root, stages, found = _from_spec(spec_path)
    if dispatcher is not None:
        options = next((stage for stage in stages if stage["type"] == dispatcher), {"type": dispatcher})
        stages, found = [options], []
    elif spec_path is None and container is None:
        stages = [{"type": name} for name in available_dispatchers()]
    known = set(available_dispatchers()) | set(CHECKS)
    result: list[Target] = []
    for stage in stages:
        name = str(stage["type"])
        if name not in known:
            listed = ", ".join(sorted(known))
            raise ConfigError("dispatcher", f"unknown dispatcher {name!r}; choose one of: {listed}")
        options = {key: value for key, value in stage.items() if key != "type"}
        target = Target(name, dispatcher=name, options=options)
        if target not in result:
            result.append(target)
    if container is not None:
        try:
            found = [*found, _container_target(ContainerRuntime(container), None)]
        except ValueError:
            choices = ", ".join(runtime.value for runtime in ContainerRuntime)
            raise ConfigError(
                "--container", f"unknown runtime {container!r}; use one of: {choices}"
            ) from None
    return runs_root, [*result, *(target for target in dict.fromkeys(found))]


def _container_target(runtime: ContainerRuntime, image: str | None) -> Target:
    return Target(f"container {runtime.value}", runtime=runtime, image=image)


def _from_spec(path: Path) -> tuple[Path, list[dict[str, Any]], list[Target]]:
    """The spec's runs dir, stages and containers; the rest of the spec is not checked here (`run` does)."""
    from sweepwise.app.backends import stage_specs
    from sweepwise.app.config import ExperimentSpec, config_error, load_spec_data
    from sweepwise.app.experiment import import_modules

    data = load_spec_data(path)
    import_modules(data.get("imports"))  # a plug-in dispatcher registers itself
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, fields=list(ExperimentSpec.model_fields)) from None
    containers: list[Target] = []
    for name in ("train", "eval"):
        job = data.get(name)
        raw = job.get("container") if isinstance(job, dict) else None
        if raw is None:
            continue
        try:
            container = ContainerSpec.model_validate(raw)
        except ValidationError as exc:
            raise config_error(exc, f"{name}.container") from None
        containers.append(_container_target(container.runtime, container.image))
    stages = list(stage_specs(spec).values())
    return Path(spec.runs_dir).resolve(), stages, containers


def diagnose(target: Target, runs_root: Path) -> list[Check]:
    """The checks of one target: its class's `diagnose`, else the checks kept here by its name."""
    if target.runtime is not None:
        from sweepwise.app.doctor._container import check_container

        return check_container(target.runtime, target.image)
    from sweepwise.core.protocols import Diagnosable
    from sweepwise.dispatchers import DISPATCHERS

    name, options = str(target.dispatcher), dict(target.options or {})
    factory = DISPATCHERS.find(name)
    if isinstance(factory, Diagnosable):
        return factory.diagnose(runs_root, options)
    checks = CHECKS.get(name)
    if checks is not None:
        return checks(runs_root, options)
    return [Check("checks", True, f"the {name} dispatcher has none (it is not Diagnosable)")]


def run_doctor(targets_: list[Target], runs_root: Path) -> Iterator[tuple[str, Check]]:
    """Each target's checks, as (label, check), as soon as each target is checked."""
    for target in targets_:
        try:
            checks = diagnose(target, runs_root)
        except ConfigError as exc:  # an option the backend refuses
            checks = [Check("options", False, str(exc), "fix the option it names")]
        for check in checks:
            yield target.label, check


def render(label: str, check: Check) -> str:
    """One line: `ok    label: name: detail`, or `FAIL  label: name: detail [fix: ...]`."""
    text = " ".join(f"{label}: {check.name}: {check.detail}".split())
    if check.ok:
        return f"ok    {text}"
    return f"FAIL  {text}" + (f" [fix: {' '.join(check.fix.split())}]" if check.fix else "")


def as_json(label: str, check: Check) -> dict[str, Any]:
    """A check as `--json` prints it."""
    return {"backend": label, "name": check.name, "ok": check.ok, "detail": check.detail, "fix": check.fix}


__all__ = ["CHECKS", "BackendChecks", "Target", "as_json", "diagnose", "render", "run_doctor", "targets"]
