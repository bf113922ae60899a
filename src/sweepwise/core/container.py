"""A job's container, as a spec's `train.container` / `eval.container` gives it.

The job's command runs inside `image` under a container engine (`runtime`). The spec is
validated when it is loaded (each error names its field, `train.container.mounts[0]`), and
is stored with the job's definition, so a restarted controller starts the same container.
The engine's command line is built in one place, `sweepwise.dispatchers.container`.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

CONFIG_ERROR = "sweepwise"
"""The pydantic error type whose message `config_error` shows as written (paths keep their case)."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ContainerRuntime(enum.StrEnum):
    """The container engines a job can run under."""

    DOCKER = "docker"
    PODMAN = "podman"
    APPTAINER = "apptainer"
    SINGULARITY = "singularity"

    @property
    def has_daemon(self) -> bool:
        """True for docker, whose CLI asks a daemon to run the container."""
        return self is ContainerRuntime.DOCKER

    @property
    def is_oci(self) -> bool:
        """True for docker and podman (`run --rm -v ... -e NAME`); False for apptainer / singularity."""
        return self in (ContainerRuntime.DOCKER, ContainerRuntime.PODMAN)


@dataclass(frozen=True, slots=True)
class Mount:
    """A host path seen inside the container: `host:container[:ro]`."""

    host: str
    container: str
    read_only: bool = False

    def __str__(self) -> str:
        return f"{self.host}:{self.container}" + (":ro" if self.read_only else "")


def parse_mount(text: str) -> Mount:
    """`host:container`, `host:container:ro` or `host:container:rw` as a `Mount`.

    Raises:
        ValueError: the text is not of that form, or the container path is relative;
            the message says what to write instead.
    """
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ValueError(f"expected host:container or host:container:ro (got {text!r}), e.g. ./data:/data:ro")
    host, inside = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise ValueError(f"unknown mount mode {mode!r} in {text!r}; use ro or rw")
    if not inside.startswith("/"):
        raise ValueError(
            f"the container path {inside!r} is relative; give an absolute path such as /{inside}"
        )
    if "," in text:
        raise ValueError(
            f"{text!r} holds a comma, which apptainer reads as a list separator; rename the path"
        )
    return Mount(host, inside, mode == "ro")


def _checked_mount(text: str) -> str:
    try:
        parse_mount(text)
    except ValueError as exc:
        raise PydanticCustomError(CONFIG_ERROR, str(exc)) from None
    return text


def _checked_env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise PydanticCustomError(
            CONFIG_ERROR, f"{name!r} is not an environment variable name; use letters, digits and _"
        )
    return name


class ContainerSpec(BaseModel):
    """The container a job's command runs in.

    The job's run directory is mounted at the same path inside, and is the command's
    working directory unless `workdir` says otherwise, so the `SWEEPWISE_*` paths in its
    environment hold inside too (README, "How a job sees the world").

    Attributes:
        image: the image (`python:3.12-slim`, `ghcr.io/org/train:1.4`; a `.sif` file or
            `docker://...` URI for apptainer).
        runtime: the engine: docker, podman, apptainer or singularity.
        mounts: more host paths to mount, each `host:container[:ro|rw]`; a relative host
            path is relative to the job's `cwd` (the spec's directory by default).
        workdir: the working directory inside the container (absolute); default the run dir.
        options: more arguments for the engine's `run` / `exec`, placed before the image
            (`[--shm-size, 8g]`, `[--user, "1000:1000"]`).
        pass_env: names of variables of the launching environment to pass into the
            container besides the job's `env` and sweepwise's own (docker and podman
            pass only the names they are given; apptainer passes the whole environment).
    """

    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1)
    runtime: ContainerRuntime = ContainerRuntime.DOCKER
    mounts: list[Annotated[str, AfterValidator(_checked_mount)]] = Field(default_factory=list)
    workdir: str | None = None
    options: list[str] = Field(default_factory=list)
    pass_env: list[Annotated[str, AfterValidator(_checked_env_name)]] = Field(default_factory=list)

    @field_validator("image")
    @classmethod
    def _image_is_not_an_option(cls, image: str) -> str:
        if image.startswith("-") or image != image.strip():
            raise PydanticCustomError(CONFIG_ERROR, f"{image!r} is not an image name; e.g. python:3.12-slim")
        return image

    @field_validator("workdir")
    @classmethod
    def _workdir_is_absolute(cls, workdir: str | None) -> str | None:
        if workdir is not None and not workdir.startswith("/"):
            raise PydanticCustomError(
                CONFIG_ERROR, f"{workdir!r} is relative; give an absolute path inside the container"
            )
        return workdir

    def parsed_mounts(self) -> list[Mount]:
        """`mounts` as `Mount`s (they were checked when the spec was loaded)."""
        return [parse_mount(text) for text in self.mounts]

    def resolved(self, base_dir: str | os.PathLike[str]) -> ContainerSpec:
        """This spec with every relative host path of `mounts` made absolute against `base_dir`."""
        mounts = [
            str(Mount(os.path.abspath(os.path.join(base_dir, m.host)), m.container, m.read_only))
            for m in self.parsed_mounts()
        ]
        return self if mounts == self.mounts else self.model_copy(update={"mounts": mounts})


__all__ = ["CONFIG_ERROR", "ContainerRuntime", "ContainerSpec", "Mount", "parse_mount"]
