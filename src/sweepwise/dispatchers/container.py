"""The one builder of container engine command lines: a job's, and the Ax facade's trials'.

`build_launch` wraps a job whose definition has a `container` (`wrap_job`), so every
dispatcher (local, SkyPilot's node runner, and any other that starts `LaunchPlan`s) runs
it the same way. What the command line holds, per engine (docs/backends.md, "Containers"):

    docker|podman run --rm --init --sig-proxy=true --name sweepwise-<experiment>-<run>-<job>
        -v <run dir>:<run dir> [-v host:container[:ro] ...] -w <workdir or run dir>
        -e NAME ... [--gpus all | --device nvidia.com/gpu=all] [options ...] IMAGE CMD ...
    apptainer|singularity exec --bind <run dir>:<run dir> [--bind ...] --pwd <workdir or run dir>
        [--nv] [options ...] IMAGE CMD ...

Values never appear on the command line (it is written to the job's claim file and shown
by `ps`): docker and podman take each variable by name (`-e NAME`) from the engine CLI's
own environment, which is the job's; apptainer passes the environment itself, and the
job's `env` is also given as `APPTAINERENV_NAME` so it wins over the image's.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence

from sweepwise.core.container import ContainerRuntime, ContainerSpec, Mount
from sweepwise.core.errors import ConfigError

CONTAINER_ENGINES = ("podman", "docker", "apptainer", "singularity")
"""Every engine, in the order `find_container_engine` prefers them."""

GPU_VARIABLE = "CUDA_VISIBLE_DEVICES"
_NAME_INVALID = re.compile(r"[^A-Za-z0-9_.-]")
_NAME_MAX = 255


def container_name(experiment: str, run_id: str, job_name: str) -> str:
    """`sweepwise-<experiment>-<run id>-<job>` with any character docker refuses made `-`.

    `job_name` is the job's file stem (`train`, `eval`, `train.2`), so each attempt has
    its own name, and a second start of the same attempt is refused by the engine.
    """
    return _NAME_INVALID.sub("-", f"sweepwise-{experiment}-{run_id}-{job_name}")[:_NAME_MAX]


def container_argv(
    engine: str,
    image: str,
    command: Sequence[str],
    *,
    mounts: Sequence[Mount],
    workdir: str,
    env_names: Sequence[str] = (),
    constants: Mapping[str, str] | None = None,
    name: str | None = None,
    gpus: int = 0,
    supervised: bool = False,
    options: Sequence[str] = (),
) -> list[str]:
    """The command line that runs `command` in `image` under `engine`.

    Args:
        engine: docker, podman, apptainer or singularity (or a path to one of them).
        image: the image.
        command: the argv to run inside; empty runs the image's own (apptainer `run`).
        mounts: host paths to mount, in order.
        workdir: the working directory inside the container.
        env_names: variables docker / podman take by name from the engine CLI's
            environment (`-e NAME`); apptainer passes its environment whole.
        constants: `NAME=value` pairs written on the command line: constants only
            (the Ax facade's `JOB_PARAMS_FILE`), never a secret.
        name: the container's name (docker / podman).
        gpus: > 0 exposes the machine's NVIDIA GPUs; which ones the job uses is the
            dispatcher's `CUDA_VISIBLE_DEVICES`, passed in by name.
        supervised: docker / podman: `--init --sig-proxy=true`, so the SIGTERM the
            job's supervisor sends the engine CLI reaches the job inside.
        options: more engine arguments, before the image.
    """
    runtime = ContainerRuntime(os.path.basename(engine))
    pairs = [f"{key}={value}" for key, value in (constants or {}).items()]
    if not runtime.is_oci:
        argv = [engine, "exec" if command else "run"]
        for mount in mounts:
            argv += ["--bind", str(mount)]
        argv += ["--pwd", workdir]
        for pair in pairs:
            argv += ["--env", pair]
        if gpus > 0:
            argv.append("--nv")
        return [*argv, *options, image, *command]
    argv = [engine, "run", "--rm"]
    if supervised:
        argv += ["--init", "--sig-proxy=true"]
    if name is not None:
        argv += ["--name", name]
    for mount in mounts:
        argv += ["-v", str(mount)]
    argv += ["-w", workdir]
    for variable in [*env_names, *pairs]:
        argv += ["-e", variable]
    if gpus > 0:
        # CDI, as NVIDIA's container toolkit documents it for podman.
        argv += (
            ["--gpus", "all"] if runtime is ContainerRuntime.DOCKER else ["--device", "nvidia.com/gpu=all"]
        )
    return [*argv, *options, image, *command]


def wrap_job(
    spec: ContainerSpec,
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    job_env: Sequence[str],
    run_dir: str,
    name: str,
    gpus: int,
    base_dir: str,
) -> tuple[list[str], dict[str, str]]:
    """A job's command wrapped in its container, and the environment to launch it with.

    Args:
        spec: the job's container.
        command: the job's argv inside the container.
        env: the variables the launcher adds for the job (its `env` and `SWEEPWISE_*`).
        job_env: the names among them that the job's own `env` gives.
        run_dir: the job's run directory, mounted at the same path.
        name: the container's name (`container_name`).
        gpus: the job's GPUs.
        base_dir: what a relative host path of `spec.mounts` is relative to.

    Returns:
        (argv, env): `env` plus, for apptainer / singularity, `<ENGINE>ENV_<NAME>` copies
        of the job's own variables.
    """
    spec = spec.resolved(base_dir)
    runtime = spec.runtime
    names = list(dict.fromkeys([*env, *spec.pass_env, *([GPU_VARIABLE] if gpus > 0 else [])]))
    argv = container_argv(
        runtime.value,
        spec.image,
        command,
        mounts=[Mount(run_dir, run_dir), *spec.parsed_mounts()],
        workdir=spec.workdir or run_dir,
        env_names=names,
        name=name,
        gpus=gpus,
        supervised=True,
        options=spec.options,
    )
    launch_env = dict(env)
    if not runtime.is_oci:
        prefix = f"{runtime.value.upper()}ENV_"
        launch_env.update({prefix + key: env[key] for key in job_env if key in env})
    return argv, launch_env


def find_container_engine(preferred: str | None = None) -> str:
    """The container engine to use: `preferred`, else the first of podman, docker, apptainer found.

    Raises:
        ConfigError: `preferred` is not a known engine, or none is installed (field `container_engine`).
    """
    if preferred is not None:
        if preferred not in CONTAINER_ENGINES:
            choices = ", ".join(CONTAINER_ENGINES)
            raise ConfigError("container_engine", f"unknown engine {preferred!r}; use one of: {choices}")
        return preferred
    for engine in CONTAINER_ENGINES:
        if shutil.which(engine):
            return engine
    raise ConfigError("container_engine", "no podman, docker or apptainer on PATH; install one or set it")


__all__ = [
    "CONTAINER_ENGINES",
    "GPU_VARIABLE",
    "container_argv",
    "container_name",
    "find_container_engine",
    "wrap_job",
]
