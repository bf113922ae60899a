"""The SkyPilot dispatcher's options (the spec's `dispatcher:` mapping) and the `sky.Task` of a job.

A job's task runs one fixed command, `python -m sweepwise.runtime.remote`; the job
itself travels in the task's envs (`SWEEPWISE_JOB`, its definition with env values
recorded by name only) and its env values in the task's secrets, which SkyPilot
redacts from what it shows. No hyperparameter value passes through a shell.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import JobDefinition
from sweepwise.runtime.remote import DEFAULT_RUNS_ROOT, JOB_ENV, PROTOCOL_ENV, RUNS_ROOT_ENV

REMOTE_RUNNER = "sweepwise.runtime.remote"

_PROTOCOL_ENV = PROTOCOL_ENV


@dataclass(frozen=True, slots=True)
class SkyOptions:
    """The dispatcher's options, checked (see `SkyPilotDispatcher` for each one's meaning)."""

    infra: str | None = None
    accelerator: str | None = None
    cpus: str | None = None
    memory: str | None = None
    use_spot: bool | None = None
    image_id: str | None = None
    workdir: str | None = None
    setup: str | None = None
    envs: dict[str, str] = field(default_factory=dict)
    file_mounts: dict[str, str] = field(default_factory=dict)
    storage_mounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    remote_runs_dir: str = DEFAULT_RUNS_ROOT
    python: str = "python"


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"dispatcher.{name}", f"expected a non-empty string, got {value!r}")
    return value.strip()


def _amount(name: str, value: Any) -> str | None:
    """`cpus` / `memory`: a number, or a string like `8` or `8+` (at least 8)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"dispatcher.{name}", f"expected a number or a string like '8+', got {value!r}")
    text = str(value).strip()
    try:
        ok = float(text.removesuffix("+")) > 0
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            f"dispatcher.{name}", f"expected a positive number or a string like '8+', got {value!r}"
        )
    return text


def _str_map(name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise ConfigError(f"dispatcher.{name}", f"expected a mapping of names to strings, got {value!r}")
    return dict(value)


def _infra(cloud: Any, region: Any, zone: Any, infra: Any) -> str | None:
    """SkyPilot's `infra` (`cloud/region/zone`, `*` for any cloud) from the spec's options."""
    where = (_text("cloud", cloud), _text("region", region), _text("zone", zone))
    given = _text("infra", infra)
    if given is not None and any(where):
        raise ConfigError("dispatcher.infra", "give infra or cloud/region/zone, not both")
    cloud_name, region_name, zone_name = where
    if region_name is None:
        if zone_name is not None:
            raise ConfigError("dispatcher.zone", "a zone needs its region; set dispatcher.region too")
        return given if given is not None else cloud_name
    return "/".join([cloud_name or "*", region_name, *([zone_name] if zone_name else [])])


def parse_options(
    *,
    cloud: Any = None,
    region: Any = None,
    zone: Any = None,
    infra: Any = None,
    accelerator: Any = None,
    cpus: Any = None,
    memory: Any = None,
    use_spot: Any = None,
    image_id: Any = None,
    workdir: Any = None,
    setup: Any = None,
    envs: Any = None,
    file_mounts: Any = None,
    remote_runs_dir: Any = None,
    python: Any = None,
) -> SkyOptions:
    """Check the spec's options and gather them.

    Raises:
        ConfigError: an option of the wrong type or value, naming it and the fix.
    """
    kind = _text("accelerator", accelerator)
    if kind is not None and ":" in kind:
        raise ConfigError(
            "dispatcher.accelerator",
            f"{kind!r}: give the type only (e.g. 'A100'); the count is each job's gpus",
        )
    if use_spot is not None and not isinstance(use_spot, bool):
        raise ConfigError("dispatcher.use_spot", f"expected true or false, got {use_spot!r}")
    if workdir is not None:
        workdir = os.path.abspath(os.path.expanduser(_text("workdir", workdir) or ""))
        if not os.path.isdir(workdir):
            raise ConfigError(
                "dispatcher.workdir", f"directory {workdir!r} does not exist; create it or fix workdir"
            )
    if isinstance(setup, list) and all(isinstance(line, str) for line in setup):
        setup = "\n".join(setup)
    elif setup is not None and not isinstance(setup, str):
        raise ConfigError(
            "dispatcher.setup", f"expected shell lines (a string or a list of strings), got {setup!r}"
        )
    env = _str_map("envs", envs)
    if protocol := sorted(_PROTOCOL_ENV & set(env)):
        raise ConfigError("dispatcher.envs", f"{protocol[0]} is sweepwise's own; remove it")
    copies: dict[str, str] = {}
    mounts: dict[str, dict[str, Any]] = {}
    if file_mounts is not None and not isinstance(file_mounts, Mapping):
        raise ConfigError(
            "dispatcher.file_mounts", f"expected a mapping of remote paths, got {file_mounts!r}"
        )
    for path, source in (file_mounts or {}).items():
        if isinstance(path, str) and isinstance(source, str):
            copies[path] = source
        elif isinstance(path, str) and isinstance(source, Mapping):
            mounts[path] = dict(source)
        else:
            raise ConfigError(
                f"dispatcher.file_mounts.{path}",
                f"expected a local path, a bucket URI or a storage mapping (name, mode), not {source!r}",
            )
    return SkyOptions(
        infra=_infra(cloud, region, zone, infra),
        accelerator=kind,
        cpus=_amount("cpus", cpus),
        memory=_amount("memory", memory),
        use_spot=use_spot,
        image_id=_text("image_id", image_id),
        workdir=workdir,
        setup=setup,
        envs=env,
        file_mounts=copies,
        storage_mounts=mounts,
        remote_runs_dir=_text("remote_runs_dir", remote_runs_dir) or DEFAULT_RUNS_ROOT,
        python=_text("python", python) or "python",
    )


def build_resources(sky: ModuleType, options: SkyOptions, gpus: int) -> Any:
    """The `sky.Resources` of a job with `gpus` GPUs (of `options.accelerator`'s type).

    Raises:
        ConfigError: the job asks for GPUs and no accelerator type is set, or SkyPilot
            refuses a resource option.
    """
    if gpus > 0 and options.accelerator is None:
        raise ConfigError(
            "dispatcher.accelerator",
            f"jobs ask for {gpus} GPUs but no GPU type is set; set dispatcher.accelerator, e.g. A100",
        )
    try:
        return sky.Resources(
            infra=options.infra,
            accelerators={options.accelerator: gpus} if gpus > 0 and options.accelerator else None,
            cpus=options.cpus,
            memory=options.memory,
            use_spot=options.use_spot,
            image_id=options.image_id,
        )
    except ValueError as exc:
        text = str(exc).strip().splitlines()
        raise ConfigError(
            "dispatcher", f"SkyPilot refuses these resources: {text[0] if text else exc}"
        ) from None


def build_storage(sky: ModuleType, options: SkyOptions) -> dict[str, Any]:
    """The `sky.Storage` of each storage mapping in `file_mounts`, by its path on the nodes.

    Raises:
        ConfigError: SkyPilot refuses a mapping.
    """
    storage: dict[str, Any] = {}
    for path, spec in options.storage_mounts.items():
        try:
            storage[path] = sky.Storage.from_yaml_config(dict(spec))
        except ValueError as exc:
            text = str(exc).strip().splitlines()
            raise ConfigError(f"dispatcher.file_mounts.{path}", text[0] if text else repr(spec)) from None
    return storage


def build_task(
    sky: ModuleType, job: JobDefinition, *, name: str, experiment: str, options: SkyOptions
) -> Any:
    """The `sky.Task` that runs `job` as the managed job `name`.

    Raises:
        ConfigError: the name is not one SkyPilot accepts, or a resource option is refused.
    """
    envs = {
        **options.envs,
        JOB_ENV: job.recorded().model_dump_json(),
        RUNS_ROOT_ENV: options.remote_runs_dir,
        "SWEEPWISE_EXPERIMENT": experiment,
        "SWEEPWISE_RUN_ID": job.run_id,
        "SWEEPWISE_JOB_TYPE": job.type.short,
        "SWEEPWISE_ATTEMPT": str(job.attempt),
    }
    secrets = {key: value for key, value in job.env.items() if key not in _PROTOCOL_ENV}
    envs = {key: value for key, value in envs.items() if key not in secrets}
    storage = {
        path: sky.Storage.from_yaml_config(dict(spec)) for path, spec in options.storage_mounts.items()
    }
    task = sky.Task(
        name,
        setup=options.setup,
        run=f"{shlex.quote(options.python)} -m {REMOTE_RUNNER}",
        envs=envs,
        secrets=secrets,
        workdir=options.workdir,
        num_nodes=job.nodes,
        file_mounts=dict(options.file_mounts) or None,
        storage_mounts=storage or None,
        resources=build_resources(sky, options, job.gpus),
    )
    try:
        task.validate_name()
    except ValueError:
        raise ConfigError(
            "experiment",
            f"SkyPilot refuses the job name {name!r} (<experiment>.<run id>.<job>): use letters, "
            "digits and single '.', '-' or '_' between them",
        ) from None
    return task


__all__ = ["REMOTE_RUNNER", "SkyOptions", "build_resources", "build_storage", "build_task", "parse_options"]
