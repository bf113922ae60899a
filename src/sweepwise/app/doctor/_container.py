"""A container runtime's checks: its binary, and for docker the daemon it talks to."""

from __future__ import annotations

import os
import shutil

from sweepwise.app.doctor._probe import run
from sweepwise.core.container import ContainerRuntime
from sweepwise.core.models import Check

_INSTALL = {
    ContainerRuntime.DOCKER: "install Docker Engine (docs.docker.com/engine/install)",
    ContainerRuntime.PODMAN: "install Podman (podman.io/docs/installation)",
    ContainerRuntime.APPTAINER: "install Apptainer (apptainer.org/docs/admin/main/installation.html)",
    ContainerRuntime.SINGULARITY: "install SingularityCE, or Apptainer with its singularity link",
}
# What answers without running a container: the daemon (docker), the engine's setup (podman).
_ANSWERS = {
    ContainerRuntime.DOCKER: ("daemon answers", ["version", "--format", "{{.Server.Version}}"]),
    ContainerRuntime.PODMAN: ("podman info answers", ["info", "--format", "{{.Version.Version}}"]),
    ContainerRuntime.APPTAINER: ("apptainer answers", ["--version"]),
    ContainerRuntime.SINGULARITY: ("singularity answers", ["--version"]),
}


def check_container(runtime: ContainerRuntime, image: str | None = None) -> list[Check]:
    """Whether jobs can run in `runtime`'s containers here (for apptainer: whether a local image exists)."""
    path = shutil.which(runtime.value)
    if path is None:
        others = ", ".join(r.value for r in ContainerRuntime if r is not runtime and shutil.which(r.value))
        fix = _INSTALL[runtime] + (f", or set container.runtime to {others}" if others else "")
        return [Check(f"{runtime.value} on PATH", False, "not found", fix)]
    checks = [Check(f"{runtime.value} on PATH", True, path)]
    name, args = _ANSWERS[runtime]
    code, text = run([path, *args], timeout=20)
    if code == 0:
        checks.append(Check(name, True, text.strip() or "yes"))
    elif runtime is ContainerRuntime.DOCKER:
        fix = (
            "start the Docker daemon (sudo systemctl start docker) or set DOCKER_HOST to one that runs; "
            "where no daemon can run, use runtime: podman or apptainer"
        )
        checks.append(Check(name, False, text or f"exit code {code}", fix))
    else:
        checks.append(
            Check(name, False, text or f"exit code {code}", f"repair the {runtime.value} setup it names")
        )
    if image and not runtime.is_oci and "://" not in image:  # a local image file (.sif)
        exists = os.path.isfile(image)
        fix = f"build or pull it ({runtime.value} pull {image} docker://IMAGE), or fix container.image"
        checks.append(
            Check("image file", exists, image if exists else f"no such file {image}", "" if exists else fix)
        )
    return checks


__all__ = ["check_container"]
