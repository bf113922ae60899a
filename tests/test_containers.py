"""Containers: `train.container` / `eval.container`, wrapped around a job's command by the launcher.

No container engine runs on this machine (a docker CLI without a daemon), so the command
line built for each runtime is asserted exactly; the whole path (spec -> stored job ->
launch -> supervisor -> result) runs for real with the local dispatcher and a fake `docker`
(a script first on PATH, standing in for the engine only: it records its argv and runs the
command it was given with the variables it was told to pass).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import EVAL, REPO, TRAIN, cli, status_json
from sweepwise.app.experiment import Experiment
from sweepwise.core.container import ContainerSpec
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import JobDefinition, JobTypes
from sweepwise.dispatchers.container import container_name
from sweepwise.dispatchers.launch import LaunchPlan, build_launch
from sweepwise.schedulers.base import create_training_job
from sweepwise.stores.sql import SQLStore
from test_docs_recipes import BLOCK

SECRET = "s3cret-value"


def _plan(tmp_path: Path, container: dict[str, Any], **fields: Any) -> LaunchPlan:
    fields.setdefault("cmd", ["python", "train.py"])
    job = JobDefinition(
        run_id="exp_trial_0001",
        overrides={"lr": 0.1},
        env={"API_KEY": SECRET},
        cwd=str(tmp_path),
        container=ContainerSpec.model_validate(container),
        **fields,
    )
    return build_launch(job, experiment="exp", runs_root=tmp_path / "runs")


# The exact command lines: no engine runs here, so what each runtime is given is what is tested.


def test_docker_command_line(tmp_path: Path) -> None:
    container = {
        "image": "ghcr.io/org/train:1.4",
        "mounts": ["data:/data:ro", "/scratch:/scratch"],
        "options": ["--shm-size", "8g"],
        "pass_env": ["WANDB_API_KEY"],
    }
    plan = _plan(tmp_path, container, gpus=1)
    run_dir = str(tmp_path / "runs" / "exp" / "exp_trial_0001")
    env_names = [
        "API_KEY",
        "SWEEPWISE_PARAMS",
        "SWEEPWISE_RUN_ID",
        "SWEEPWISE_EXPERIMENT",
        "SWEEPWISE_JOB_TYPE",
        "SWEEPWISE_ATTEMPT",
        "SWEEPWISE_RUN_DIR",
        "JOB_PARAMS_FILE",
        "SWEEPWISE_METRICS_FILE",
        "SWEEPWISE_RESULT_FILE",
        "WANDB_API_KEY",
        "CUDA_VISIBLE_DEVICES",
    ]
    assert plan.argv == [
        "docker",
        "run",
        "--rm",
        "--init",
        "--sig-proxy=true",
        "--name",
        "sweepwise-exp-exp_trial_0001-train",
        "-v",
        f"{run_dir}:{run_dir}",
        "-v",
        f"{tmp_path}/data:/data:ro",  # relative to the job's cwd
        "-v",
        "/scratch:/scratch",
        "-w",
        run_dir,
        *[word for name in env_names for word in ("-e", name)],
        "--gpus",
        "all",
        "--shm-size",
        "8g",
        "ghcr.io/org/train:1.4",
        "python",  # the image's python, not this interpreter
        "train.py",
        "lr=0.1",
    ]
    assert plan.env["API_KEY"] == SECRET and SECRET not in " ".join(plan.argv)
    assert plan.cwd == str(tmp_path)  # where the engine's CLI runs


def test_podman_command_line_uses_cdi_for_gpus(tmp_path: Path) -> None:
    plan = _plan(tmp_path, {"image": "img:1", "runtime": "podman", "workdir": "/code"}, gpus=2)
    run_dir = str(tmp_path / "runs" / "exp" / "exp_trial_0001")
    assert plan.argv[:10] == [
        "podman",
        "run",
        "--rm",
        "--init",
        "--sig-proxy=true",
        "--name",
        "sweepwise-exp-exp_trial_0001-train",
        "-v",
        f"{run_dir}:{run_dir}",
        "-w",
    ]
    assert plan.argv[10] == "/code"
    assert plan.argv[-6:] == ["--device", "nvidia.com/gpu=all", "img:1", "python", "train.py", "lr=0.1"]
    assert plan.argv[-8:-6] == ["-e", "CUDA_VISIBLE_DEVICES"]


@pytest.mark.parametrize("runtime", ["apptainer", "singularity"])
def test_apptainer_command_line(tmp_path: Path, runtime: str) -> None:
    plan = _plan(
        tmp_path, {"image": "/images/train.sif", "runtime": runtime, "mounts": ["/data:/data:ro"]}, gpus=1
    )
    run_dir = str(tmp_path / "runs" / "exp" / "exp_trial_0001")
    assert plan.argv == [
        runtime,
        "exec",
        "--bind",
        f"{run_dir}:{run_dir}",
        "--bind",
        "/data:/data:ro",
        "--pwd",
        run_dir,
        "--nv",
        "/images/train.sif",
        "python",
        "train.py",
        "lr=0.1",
    ]
    # Apptainer passes the environment itself; the job's own env also as <ENGINE>ENV_NAME, which
    # wins over the image's. No value is on the command line.
    assert plan.env[f"{runtime.upper()}ENV_API_KEY"] == SECRET and SECRET not in " ".join(plan.argv)


def test_no_gpus_no_gpu_flags_and_each_attempt_its_own_name(tmp_path: Path) -> None:
    plan = _plan(tmp_path, {"image": "img:1"}, attempt=2, type=JobTypes.LAUNCH_EVAL)
    assert "--gpus" not in plan.argv and "CUDA_VISIBLE_DEVICES" not in plan.argv
    assert plan.argv[plan.argv.index("--name") + 1] == "sweepwise-exp-exp_trial_0001-eval.2"
    assert container_name("my exp", "run/1", "train") == "sweepwise-my-exp-run-1-train"


def test_an_entrypoint_job_runs_the_image_python(tmp_path: Path) -> None:
    plan = _plan(tmp_path, {"image": "img:1"}, cmd="mypkg.jobs.train")
    image = plan.argv.index("img:1")
    assert plan.argv[image + 1 :] == ["python", "-m", "sweepwise.runtime.call", "mypkg.jobs.train", "lr=0.1"]


def test_the_command_is_not_looked_up_on_this_machine(tmp_path: Path) -> None:
    plan = _plan(tmp_path, {"image": "img:1"}, cmd=["/opt/app/train", "--fast"])
    assert plan.argv[-3:] == ["/opt/app/train", "--fast", "lr=0.1"]
    with pytest.raises(ConfigError) as info:
        _plan(tmp_path, {"image": "img:1"}, cmd=[])
    assert info.value.field == "train.cmd"


# -- load-time checks: one line naming the field, exit code 2, nothing written ----------------


@pytest.mark.parametrize(  # a subprocess each: the fast subset runs the first two
    ("container", "line"),
    [
        (
            {"image": "img:1", "runtime": "lxc"},
            "error: train.container.runtime: input should be 'docker', 'podman', 'apptainer' or "
            "'singularity' (got 'lxc')",
        ),
        (
            {"image": "img:1", "mounts": ["/ok:/ok", "data"]},
            "error: train.container.mounts[1]: expected host:container or host:container:ro (got 'data'), "
            "e.g. ./data:/data:ro",
        ),
        pytest.param(
            {"image": "img:1", "mounts": ["./Data:data"]},
            "error: train.container.mounts[0]: the container path 'data' is relative; "
            "give an absolute path such as /data",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            {"image": "img:1", "mounts": ["/a:/a:rx"]},
            "error: train.container.mounts[0]: unknown mount mode 'rx' in '/a:/a:rx'; use ro or rw",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            {"image": "img:1", "workdir": "code"},
            "error: train.container.workdir: 'code' is relative; give an absolute path inside the container",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            {"runtime": "docker"},
            "error: train.container.image: is required; add it to the spec",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_a_bad_container_is_refused_before_anything_is_written(
    tmp_path: Path, container: dict[str, Any], line: str
) -> None:
    spec = {"name": "c", "train": {"cmd": ["python", "train.py"], "container": container}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    result = cli("run", "sweep.yaml", "-q", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [line]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml"]


# -- end to end: the local dispatcher, a fake engine, a crash and a restart ------------------------

# Stands in for the docker CLI (no engine runs here): records its argv, then runs the command it
# was given in the `-w` directory with only the `-e` variables (and PATH), as an image would see
# them; `python` is this interpreter (the image's python). It execs, so signals reach the job.
FAKE_DOCKER = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    LOG = {log!r}
    argv = sys.argv
    with open(LOG, "a") as log:
        log.write(json.dumps(["docker", *argv[1:]]) + "\\n")  # argv[0] is the script path
    assert argv[1] == "run", argv
    words, i, names, workdir = argv[2:], 0, [], None
    while words[i].startswith("-"):
        if words[i] in ("--name", "-v", "-w", "-e", "--gpus", "--device", "--shm-size"):
            if words[i] == "-e":
                names.append(words[i + 1])
            if words[i] == "-w":
                workdir = words[i + 1]
            i += 2
        else:
            i += 1
    inner = words[i + 1 :]
    if inner[0] == "python":
        inner[0] = sys.executable
    env = {{name: os.environ[name] for name in names if name in os.environ}}
    env["PATH"] = os.environ["PATH"]
    os.chdir(workdir)
    os.execve(inner[0], inner, env)
    """
)


def _fake_docker(directory: Path, log: Path) -> Path:
    bin_dir = directory / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(FAKE_DOCKER.format(python=sys.executable, log=str(log)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _spec(tmp_path: Path, train_options: list[str]) -> dict[str, Any]:
    code = {"image": "sweepwise-test:1", "mounts": [f"{tmp_path}:{tmp_path}"]}
    markers = {"MARKERS": str(tmp_path / "markers"), "API_KEY": SECRET}
    return {
        "name": "boxed",
        "max_parallel": 2,
        "monitoring_interval": 1,
        "scheduler": {"type": "batched_synced", "max_trials": 2, "batch_size": 2},
        "optimizer": {"type": "random", "seed": 3},
        "train": {
            "cmd": ["python", str(tmp_path / "train.py")],
            "env": markers,
            "container": {**code, "options": train_options},
        },
        "eval": {"cmd": ["python", str(tmp_path / "eval.py")], "env": markers, "container": code},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }


@pytest.mark.slow  # two sweeps; the command lines are checked above, in the fast subset
def test_a_sweep_runs_in_containers_and_a_restarted_controller_starts_the_same_ones(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "eval.py").write_text(EVAL)
    (tmp_path / "markers").mkdir()
    log = tmp_path / "docker-argv.jsonl"
    env = {"PATH": f"{_fake_docker(tmp_path, log)}{os.pathsep}{os.environ['PATH']}"}
    spec_path = tmp_path / "sweep.yaml"
    spec_path.write_text(yaml.safe_dump(_spec(tmp_path, [])))

    # The controller is killed once both training jobs are recorded, before either starts.
    crashed = cli(
        "run", "sweep.yaml", "-q", cwd=tmp_path, env={**env, "SWEEPWISE_CRASH_AT": "after_intent:1"}
    )
    assert crashed.returncode == -9, crashed.stderr
    assert not log.exists()
    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    stored = {run.run_id: run.train_job for run in store.fetch_runs({"group": "boxed"})}
    assert len(stored) == 2
    for job in stored.values():
        assert job is not None and job.container is not None
        assert job.container.image == "sweepwise-test:1" and job.container.options == []
    store.close()

    # Rerun with another engine option for training: the recorded jobs start as recorded.
    spec_path.write_text(yaml.safe_dump(_spec(tmp_path, ["--shm-size", "1g"])))
    result = cli("run", "sweep.yaml", "-q", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    runs = status_json(tmp_path, "boxed")["runs"]
    assert [run["status"] for run in runs] == ["completed", "completed"]

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 4  # each run's train and eval job, each started once
    for call in calls:
        image = call.index("sweepwise-test:1")
        job = "train" if call[image + 2].endswith("train.py") else "eval"
        run_id = call[call.index("--name") + 1].removeprefix("sweepwise-boxed-").removesuffix(f"-{job}")
        run_dir = str(tmp_path / "runs" / "boxed" / run_id)
        assert call[:11] == [
            "docker",
            "run",
            "--rm",
            "--init",
            "--sig-proxy=true",
            "--name",
            f"sweepwise-boxed-{run_id}-{job}",
            "-v",
            f"{run_dir}:{run_dir}",
            "-v",
            f"{tmp_path}:{tmp_path}",
        ]
        assert call[11:13] == ["-w", run_dir]
        assert "--shm-size" not in call  # the container recorded with the job, not the new spec's
        assert SECRET not in " ".join(call)
        assert call[image + 1 :][:2] == ["python", str(tmp_path / f"{job}.py")]
    # The jobs saw the job's env and sweepwise's own through `-e NAME` alone.
    assert sorted((tmp_path / "markers" / "train.txt").read_text().split()) == sorted(
        r["run_id"] for r in runs
    )
    assert all(run["score"] == pytest.approx(10 * run["suggestion"]["x"]) for run in runs)


def test_the_documented_container_loads_and_gives_the_documented_command_line(tmp_path: Path) -> None:
    text = (REPO / "docs" / "backends.md").read_text()
    section = text[text.index("\n## Containers\n") : text.index("\n## sweepwise doctor\n")]
    match = BLOCK.search(section)
    assert match is not None and match["lang"] == "yaml"
    experiment = Experiment.from_dict({"name": "demo", **yaml.safe_load(match["body"])}, base_dir=tmp_path)
    job = create_training_job(experiment.scheduler_config, "demo_trial_0001", {"lr": 0.01})
    plan = build_launch(job, experiment="demo", runs_root=tmp_path / "runs")
    run_dir = str(tmp_path / "runs" / "demo" / "demo_trial_0001")
    assert plan.argv[:15] == [
        "docker",
        "run",
        "--rm",
        "--init",
        "--sig-proxy=true",
        "--name",
        "sweepwise-demo-demo_trial_0001-train",
        "-v",
        f"{run_dir}:{run_dir}",
        "-v",
        f"{tmp_path}:/code:ro",
        "-v",
        "/datasets:/datasets:ro",
        "-w",
        "/code",
    ]
    assert plan.argv[15:19] == ["-e", "WANDB_PROJECT", "-e", "SWEEPWISE_PARAMS"]
    assert plan.argv[-12:] == [
        "-e",
        "WANDB_API_KEY",
        "-e",
        "CUDA_VISIBLE_DEVICES",
        "--gpus",
        "all",
        "--shm-size",
        "8g",
        "ghcr.io/acme/train:1.4",
        "python",
        "train.py",
        "lr=0.01",
    ]
