"""`sweepwise doctor`, through the real command, against this machine as it is.

Here SLURM runs (single node), no Ray cluster is started, the docker CLI has no daemon,
and SkyPilot has no cloud credentials: each check reports that state, with its fix.
"""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, cli
from sweepwise.core.protocols import Diagnosable
from sweepwise.dispatchers.simulated import SimulatedDispatcher
from sweepwise.dispatchers.skypilot import SkyPilotDispatcher
from test_docs_recipes import BLOCK, _commands

pytestmark = pytest.mark.slow  # real SLURM jobs: in the full suite, not in -m "not slow"


def _spec(directory: Path, **fields: Any) -> str:
    spec = {"name": "doc", "train": {"cmd": ["python", "train.py"]}, **fields}
    (directory / "sweep.yaml").write_text(yaml.safe_dump(spec))
    return "sweep.yaml"


def _lines(stdout: str, prefix: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(prefix)]


def test_local_checks_pass(tmp_path: Path) -> None:
    result = cli("doctor", "--dispatcher", "local", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(": ")[1] for line in result.stdout.splitlines()] == [
        "POSIX system",
        "/proc",
        "pidfd",
        "runs dir writable",
    ]
    assert all(line.startswith("ok    local: ") for line in result.stdout.splitlines())
    assert not (tmp_path / "runs").exists()  # the probe leaves nothing behind


def test_a_runs_dir_that_cannot_be_made_fails_with_its_fix(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = cli("doctor", _spec(tmp_path, runs_dir="file/runs"), cwd=tmp_path)
    assert result.returncode == 1
    (line,) = _lines(result.stdout, "FAIL")
    assert line == (
        f"FAIL  local: runs dir writable: {tmp_path}/file is not a directory "
        f"[fix: make {tmp_path}/file writable for this user, or set runs_dir to a directory you can write]"
    )
    assert result.stderr == "1 of 4 checks failed\n"


@pytest.mark.slow
def test_slurm_checks_pass_including_a_job_writing_in_the_runs_dir(slurm: None, tmp_path: Path) -> None:
    result = cli("doctor", "--dispatcher", "slurm", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "sbatch, squeue, scancel, sinfo on PATH",
        "sinfo answers",
        "partition up",
        "runs dir writable",
        "runs dir writable from a job",
    ]
    assert lines[-1].startswith("ok    slurm: runs dir writable from a job: test job ")
    assert lines[-1].endswith(f" wrote in {tmp_path}")
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # its probe directory is gone


def test_a_partition_that_is_not_there_fails_before_any_job_is_submitted(slurm: None, tmp_path: Path) -> None:
    spec = _spec(tmp_path, dispatcher={"type": "slurm", "partition": "nosuch"})
    result = cli("doctor", spec, cwd=tmp_path)
    assert result.returncode == 1
    (line,) = _lines(result.stdout, "FAIL")
    assert line.startswith("FAIL  slurm: partition up: no partition nosuch (there are: ")
    assert (
        "[fix: scontrol update PartitionName=nosuch State=UP, or set dispatcher.partition to one of: " in line
    )
    assert "writable from a job" not in result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


def test_an_unreachable_ray_address_fails_with_its_fix(tmp_path: Path) -> None:
    port = _free_port()
    result = cli(
        "doctor", _spec(tmp_path, dispatcher={"type": "ray", "address": f"127.0.0.1:{port}"}), cwd=tmp_path
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok    ray: import ray: Ray ")
    assert lines[1:] == [
        f"FAIL  ray: cluster reachable: nothing answers at 127.0.0.1:{port} (Connection refused) "
        "[fix: start the cluster (ray start --head on 127.0.0.1) or set dispatcher.address to a running "
        "cluster's (ray status on its head prints it)]"
    ]


def test_docker_without_its_daemon_fails_with_its_fix(tmp_path: Path) -> None:
    container = {"image": "python:3.12-slim", "runtime": "docker"}
    result = cli(
        "doctor", _spec(tmp_path, train={"cmd": "python train.py", "container": container}), cwd=tmp_path
    )
    assert result.returncode == 1
    lines = _lines(result.stdout, "ok    container") + _lines(result.stdout, "FAIL  container")
    assert lines[0].startswith("ok    container docker: docker on PATH: /")
    assert lines[1] == (
        "FAIL  container docker: daemon answers: Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running? [fix: start the Docker daemon "
        "(sudo systemctl start docker) or set DOCKER_HOST to one that runs; where no daemon can run, "
        "use runtime: podman or apptainer]"
    )
    assert len(lines) == 2


def test_a_runtime_that_is_not_installed_says_how_to_install_it(tmp_path: Path) -> None:
    result = cli("doctor", "--container", "podman", "--json", cwd=tmp_path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report == {
        "ok": False,
        "checks": [
            {
                "backend": "container podman",
                "name": "podman on PATH",
                "ok": False,
                "detail": "not found",
                "fix": "install Podman (podman.io/docs/installation), or set container.runtime to docker",
            }
        ],
    }


@pytest.mark.slow
def test_every_registered_dispatcher_is_checked_and_skypilot_has_no_cloud(tmp_path: Path) -> None:
    result = cli("doctor", cwd=tmp_path)
    assert result.returncode == 1
    backends = {line.split()[1].rstrip(":") for line in result.stdout.splitlines()}
    assert {"local", "simulated", "skypilot"} <= backends
    assert "ok    skypilot: import sky: SkyPilot 0.14.1" in result.stdout
    (line,) = _lines(result.stdout, "FAIL  skypilot")
    assert line.startswith("FAIL  skypilot: enabled clouds: none is enabled (sky check) [fix: give SkyPilot")


PLUGIN = textwrap.dedent(
    """
    from sweepwise.core.models import Check
    from sweepwise.dispatchers import register_dispatcher
    from sweepwise.dispatchers.local import LocalDispatcher


    @register_dispatcher("minded")
    class MindedDispatcher(LocalDispatcher):
        @staticmethod
        def diagnose(runs_root, options):
            return [
                Check("reached", True, f"runs in {runs_root.name}"),
                Check("token", "token" in options, "no token given", "set dispatcher.token"),
            ]
    """
)


def test_a_diagnosable_plug_in_is_asked_for_its_checks(tmp_path: Path) -> None:
    (tmp_path / "minded.py").write_text(PLUGIN)
    spec = _spec(tmp_path, imports=["minded"], dispatcher="minded", runs_dir="where")
    result = cli("doctor", spec, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "ok    minded: reached: runs in where",
        "FAIL  minded: token: no token given [fix: set dispatcher.token]",
    ]
    assert isinstance(SkyPilotDispatcher, Diagnosable) and isinstance(SimulatedDispatcher, Diagnosable)


def test_an_unknown_dispatcher_or_a_bad_spec_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("doctor", "--dispatcher", "k8s", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: dispatcher: unknown dispatcher 'k8s'; choose one of: local, ")
    spec = _spec(tmp_path, train={"cmd": "x", "container": {"image": "i", "mounts": ["a:b"]}})
    result = cli("doctor", spec, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "error: train.container.mounts[0]: the container path 'b' is relative; "
        "give an absolute path such as /b\n"
    )


def test_the_documented_plug_in_example_runs(tmp_path: Path) -> None:
    text = (REPO / "docs" / "backends.md").read_text()
    section = text[text.index("\n## sweepwise doctor\n") :]
    blocks = [(m["file"], m["lang"], m["body"]) for m in BLOCK.finditer(section)]
    assert [lang for _, lang, _ in blocks] == ["text", "python", "yaml", "console"]
    for file, _, body in blocks[1:3]:
        assert file is not None
        (tmp_path / file).write_text(body)
    for argv, expected in _commands(blocks[3][2]):
        result = cli(*argv[1:], cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines() == expected
