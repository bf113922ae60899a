"""Seed 001 (scheduler_epic): its runners and jobs work with `sweepwise.ax` after the import changes.

Written as a seed user writes them: `BaseRunner` subclasses with `run_job`,
`check_job_status` and `cancel_job` on seed-style `Job`s; `JobLibRunner(n_jobs=-1)`;
a `train.sh` script objective that is not executable. Everything runs for real: real Ax
clients, threads, processes and scripts.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sweepwise.ax import (
    AxScheduler,
    BaseRunner,
    BaseRunnerAdapter,
    ContainerObjective,
    DispatcherRunner,
    Job,
    JobLibRunner,
    JobState,
    JobType,
    LocalRunner,
    ScriptObjective,
    TrialRunner,
    TrialStatus,
    as_trial_runner,
)
from sweepwise.core.errors import ConfigError

CPUS = len(os.sched_getaffinity(0))


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def make_client(name: str = "seed001") -> Any:
    from ax import Client, RangeParameterConfig

    client = Client(random_seed=0)
    client.configure_experiment(
        name=name,
        parameters=[
            RangeParameterConfig(name="x", bounds=(0.0, 1.0), parameter_type="float"),
            RangeParameterConfig(name="y", bounds=(0.0, 1.0), parameter_type="float"),
        ],
    )
    client.configure_optimization(objective="-loss")
    client.configure_generation_strategy(method="random_search")
    return client


def config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "monitoring_interval": 0.05,
        "job_output_dir": str(tmp_path / "jobs"),
        "store": f"sqlite:///{tmp_path / 'sweepwise.db'}",
        **extra,
    }


def ax_losses(scheduler: AxScheduler) -> dict[int, float]:
    """The `loss` Ax holds for each trial."""
    df = scheduler.ax_client._experiment.lookup_data().df
    return {int(row.trial_index): float(row.mean) for row in df.itertuples() if row.metric_name == "loss"}


def ax_status(scheduler: AxScheduler, index: int) -> Any:
    return scheduler.ax_client._experiment.trials[index].status


def bowl(x: float, y: float) -> float:
    return (x - 0.3) ** 2 + (y - 0.5) ** 2


# -- seed-style runners, written as a scheduler_epic user writes them -------------------------


def objective(x: float, y: float) -> dict[str, Any]:
    """The seed's runners call the function with the parameters as keywords."""
    return {"loss": bowl(x, y)}


def diverging(x: float, y: float) -> dict[str, Any]:
    if x > 0.9:
        raise ValueError("diverged")
    return objective(x, y)


class ThreadRunner(BaseRunner):
    """Runs each job's function in a thread; completes the job in check_job_status."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.executor = ThreadPoolExecutor(max_workers=self.config.get("workers", 4))
        self.futures: dict[str, Future[Any]] = {}
        self.jobs: list[Job] = []
        self.checks = 0
        self.running = 0
        self.most_running = 0
        self.cancelled: list[str] = []

    def run_job(self, job: Job) -> None:
        self.jobs.append(job)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        self.futures[job.job_id] = self.executor.submit(self.work, job)

    def work(self, job: Job) -> Any:
        assert job.function is not None
        return job.function(**job.params)

    def check_job_status(self, job: Job) -> None:
        self.checks += 1
        future = self.futures.get(job.job_id)
        if future is None or not future.done():
            return
        del self.futures[job.job_id]
        self.running -= 1
        error = future.exception()
        if error is not None:
            job.fail(str(error))
        else:
            job.complete(future.result())

    def cancel_job(self, job: Job) -> None:
        self.cancelled.append(job.job_id)
        future = self.futures.pop(job.job_id, None)
        if future is not None:
            future.cancel()
        job.state = JobState.CANCELLED

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


class ErrorDictRunner(ThreadRunner):
    """The seed's JobLibRunner way: an exception becomes results {"error": ...}, and the job completes."""

    def work(self, job: Job) -> Any:
        try:
            return super().work(job)
        except Exception as exc:
            return {"error": str(exc)}


class SubprocessRunner(BaseRunner):
    """Runs script jobs as processes in the job's working directory, as the seed's JobLibRunner does."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.processes: dict[str, subprocess.Popen[str]] = {}

    def run_job(self, job: Job) -> None:
        assert job.job_type is JobType.SCRIPT and job.script_path and job.working_dir
        params_file = os.path.join(job.working_dir, "params.json")
        with open(params_file, "w") as f:
            json.dump(job.params, f)
        env = {**os.environ, **job.env_vars, "JOB_PARAMS_FILE": params_file}
        command = (
            ["bash", job.script_path] if job.script_path.endswith(".sh") else ["python", job.script_path]
        )
        self.processes[job.job_id] = subprocess.Popen(
            command, cwd=job.working_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def check_job_status(self, job: Job) -> None:
        process = self.processes[job.job_id]
        if process.poll() is None:
            return
        _, stderr = process.communicate()
        assert job.working_dir is not None
        if process.returncode != 0:
            job.fail(f"Script failed with exit code {process.returncode}. Error: {stderr}")
            return
        with open(os.path.join(job.working_dir, "result.json")) as f:
            job.complete(json.load(f))

    def cancel_job(self, job: Job) -> None:
        self.processes[job.job_id].kill()
        job.state = JobState.CANCELLED


TRAIN_SH = textwrap.dedent(
    """\
    # bash, not sh: [[ ]] and $( ); parameters come from the file, never from a command line
    [[ -f params.json && -f "$JOB_PARAMS_FILE" ]] || exit 7
    params=$(tr -d ' \\n' < "$JOB_PARAMS_FILE")
    x=$(sed -E 's/.*"x":([-0-9.eE+]+).*/\\1/' <<< "$params")
    y=$(sed -E 's/.*"y":([-0-9.eE+]+).*/\\1/' <<< "$params")
    if [[ $(awk -v x="$x" 'BEGIN { print (x > 0.9) }') == 1 ]]; then
        echo "diverged" >&2
        exit 3
    fi
    awk -v x="$x" -v y="$y" 'BEGIN { printf "{\\"loss\\": %.17g}\\n", (x-0.3)^2 + (y-0.5)^2 }' > result.json
    """
)


def write_train_sh(tmp_path: Path) -> Path:
    script = tmp_path / "train.sh"
    script.write_text(TRAIN_SH)
    script.chmod(0o644)  # not executable: it runs with bash, as in the seed
    return script


# -- a seed-style BaseRunner subclass drives AxScheduler ---------------------------------------


def test_a_seed_style_runner_runs_the_optimization_one_trial_at_a_time(tmp_path: Path) -> None:
    runner = ThreadRunner()
    scheduler = AxScheduler(make_client(), runner, config(tmp_path))
    scheduler.set_objective_function(objective)
    best = scheduler.run_optimization(max_trials=4)

    assert isinstance(best, dict) and set(best) == {"x", "y"}
    trials = scheduler.trials
    assert sorted(trials) == [0, 1, 2, 3]
    assert all(t.status is TrialStatus.COMPLETED for t in trials.values())
    losses = ax_losses(scheduler)
    for index, trial in trials.items():
        assert losses[index] == pytest.approx(bowl(**trial.parameters))
        assert ax_status(scheduler, index).is_completed
    # The jobs the runner was given are the seed's: one per trial, in the trial's directory.
    assert len(runner.jobs) == 4 and runner.checks >= 4
    for index, job in enumerate(runner.jobs):
        assert job.job_id.startswith(f"trial_{index}_job_")
        assert job.job_type is JobType.FUNCTION and job.function is objective
        assert job.params == trials[index].parameters and job.env_vars == {}
        assert job.working_dir is not None and Path(job.working_dir).is_dir()
        assert job.state is JobState.COMPLETED and job.is_completed() and not job.is_running()
        assert job.start_time is not None and job.end_time is not None and job.start_time <= job.end_time
        assert job.get_results() == {"loss": pytest.approx(bowl(**job.params))}
    assert runner.most_running == 1  # the seed's scheduler runs one trial at a time (max_concurrent_trials=1)
    scheduler.close()
    assert runner.executor._shutdown  # close() calls the seed runner's shutdown()


@pytest.mark.parametrize("runner_class", [ThreadRunner, ErrorDictRunner])
def test_a_job_the_runner_fails_fails_its_trial_with_the_reason(
    tmp_path: Path, runner_class: type[ThreadRunner]
) -> None:
    scheduler = AxScheduler(make_client(), runner_class(), config(tmp_path))
    scheduler.set_objective_function(diverging)
    with scheduler.batch_trial_context() as batch:
        for x in (0.2, 0.95, 0.4):
            batch.add_trial({"x": x, "y": 0.5})
        trials = batch.run()
    assert [t.status for t in trials] == [TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.COMPLETED]
    assert trials[1].error == "diverged"
    assert ax_status(scheduler, 1).is_failed
    assert ax_losses(scheduler) == {0: pytest.approx(0.01), 2: pytest.approx(0.01)}


def test_a_seed_style_runner_runs_a_script_objective(tmp_path: Path) -> None:
    scheduler = AxScheduler(make_client(), SubprocessRunner(), config(tmp_path))
    scheduler.set_script_objective(str(write_train_sh(tmp_path)))
    with scheduler.batch_trial_context() as batch:
        for x, y in ((0.1, 0.2), (0.95, 0.5), (0.3, 0.4)):
            batch.add_trial({"x": x, "y": y})
        trials = batch.run()
    assert [t.status for t in trials] == [TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.COMPLETED]
    assert trials[1].error is not None and "exit code 3" in trials[1].error and "diverged" in trials[1].error
    assert ax_losses(scheduler) == {0: pytest.approx(bowl(0.1, 0.2)), 2: pytest.approx(bowl(0.3, 0.4))}


def test_adapter_capacity_runs_several_seed_jobs_at_once(tmp_path: Path) -> None:
    barrier = threading.Barrier(3, timeout=30)  # passes only when three trials run together

    def together(x: float, y: float) -> dict[str, Any]:
        barrier.wait()
        return {"loss": bowl(x, y)}

    runner = ThreadRunner()
    scheduler = AxScheduler(make_client(), BaseRunnerAdapter(runner, capacity=3), config(tmp_path))
    scheduler.set_objective_function(together)
    scheduler.run_optimization(max_trials=3)
    assert all(t.status is TrialStatus.COMPLETED for t in scheduler.trials.values())
    assert runner.most_running == 3


def test_a_trial_past_the_time_limit_is_cancelled_through_cancel_job(tmp_path: Path) -> None:
    class NeverEnding(ThreadRunner):
        def run_job(self, job: Job) -> None:
            self.jobs.append(job)  # starts nothing: the job never ends by itself

        def check_job_status(self, job: Job) -> None:
            self.checks += 1

    runner = NeverEnding()
    scheduler = AxScheduler(make_client(), runner, config(tmp_path, max_trial_monitoring_time=0.2))
    scheduler.set_objective_function(objective)
    assert scheduler.run_optimization(max_trials=2) == {}
    assert all(t.status is TrialStatus.FAILED for t in scheduler.trials.values())
    assert all("max_trial_monitoring_time" in (t.error or "") for t in scheduler.trials.values())
    assert runner.cancelled == [job.job_id for job in runner.jobs]
    assert all(job.state is JobState.CANCELLED for job in runner.jobs)


def test_a_runner_that_raises_fails_the_trial_and_the_loop_goes_on(tmp_path: Path) -> None:
    class Broken(ThreadRunner):
        def run_job(self, job: Job) -> None:
            if job.params["x"] > 0.5:
                raise RuntimeError("no slot")
            super().run_job(job)

    scheduler = AxScheduler(make_client(), Broken(), config(tmp_path))
    scheduler.set_objective_function(objective)
    with scheduler.batch_trial_context() as batch:
        batch.add_trial({"x": 0.8, "y": 0.5})
        batch.add_trial({"x": 0.3, "y": 0.5})
        trials = batch.run()
    assert [t.status for t in trials] == [TrialStatus.FAILED, TrialStatus.COMPLETED]
    assert trials[0].error == "Broken.run_job raised RuntimeError: no slot"


# -- the two runner contracts ---------------------------------------------------------------------


def test_base_runner_is_the_seeds_abstract_class() -> None:
    with pytest.raises(TypeError):
        BaseRunner()  # type: ignore[abstract]

    class Incomplete(BaseRunner):
        def run_job(self, job: Job) -> None: ...

        def check_job_status(self, job: Job) -> None: ...

    with pytest.raises(TypeError, match="cancel_job"):
        Incomplete()  # type: ignore[abstract]
    assert ThreadRunner().config == {} and ThreadRunner({"workers": 2}).config == {"workers": 2}


def test_built_in_runners_are_seed_runners_and_native_runners(tmp_path: Path) -> None:
    from sweepwise.core.clock import VirtualClock
    from sweepwise.dispatchers.simulated import SimOutcome, SimulatedDispatcher

    dispatcher_runner = DispatcherRunner(SimulatedDispatcher(VirtualClock(), lambda job: SimOutcome(1.0)))
    for runner in (JobLibRunner(), LocalRunner(n_jobs=1), dispatcher_runner):
        assert isinstance(runner, BaseRunner) and isinstance(runner, TrialRunner)
        assert as_trial_runner(runner) is runner
    adapter = as_trial_runner(ThreadRunner())
    assert isinstance(adapter, BaseRunnerAdapter) and adapter.capacity == 1
    assert as_trial_runner(adapter) is adapter

    class DuckRunner:  # e.g. a subclass of the seed package's own BaseRunner
        def run_job(self, job: Job) -> None: ...

        def check_job_status(self, job: Job) -> None: ...

        def cancel_job(self, job: Job) -> None: ...

    assert isinstance(as_trial_runner(DuckRunner()), BaseRunnerAdapter)
    for bad in (object(), "joblib", None):
        with pytest.raises(ConfigError) as info:
            as_trial_runner(bad)
        assert info.value.field == "runner" and "BaseRunner subclass" in str(info.value)
    with pytest.raises(ConfigError) as info:
        AxScheduler(make_client(), object(), config(tmp_path))  # type: ignore[arg-type]
    assert info.value.field == "runner"
    with pytest.raises(ConfigError) as info:
        BaseRunnerAdapter(ThreadRunner(), capacity=0)
    assert info.value.field == "capacity"


# -- JobLibRunner: the seed's signature, joblib's n_jobs ------------------------------------------


def test_joblib_runner_takes_the_seeds_signature_and_defaults(tmp_path: Path) -> None:
    params = inspect.signature(JobLibRunner).parameters
    assert [(p.name, p.default) for p in params.values()] == [
        ("n_jobs", -1),
        ("backend", "loky"),
        ("config", None),
    ]
    runner = JobLibRunner()
    assert (runner.n_jobs, runner.backend, runner.config, runner.capacity) == (-1, "loky", {}, CPUS)
    positional = JobLibRunner(2, "threading", {"tmp_dir": str(tmp_path), "container_engine": "singularity"})
    assert positional.capacity == 2 and positional.config["tmp_dir"] == str(tmp_path)
    assert positional.container_engine == "singularity"
    for n_jobs in range(-1, -CPUS - 1, -1):  # -1 all CPUs, -2 all but one, ... -CPUS one
        assert JobLibRunner(n_jobs=n_jobs).capacity == CPUS + 1 + n_jobs
    assert JobLibRunner(n_jobs=None).capacity == 1  # joblib: None means one


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_jobs": 0}, "n_jobs"),
        ({"n_jobs": -CPUS - 1}, "n_jobs"),
        ({"n_jobs": 1.5}, "n_jobs"),
        ({"n_jobs": "2"}, "n_jobs"),
        ({"n_jobs": True}, "n_jobs"),
        ({"backend": "dask"}, "backend"),
        ({"config": {"bogus": 1}}, "config.bogus"),
        ({"config": {"container_engine": "rkt"}}, "config.container_engine"),
    ],
)
def test_joblib_runner_rejects_bad_arguments_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        JobLibRunner(**kwargs)
    assert info.value.field == field
    if field == "backend":
        assert "loky, multiprocessing, threading" in str(info.value)


def pid_objective(params: dict[str, Any]) -> dict[str, Any]:
    """Records the process it ran in (a file per call, so it works across processes)."""
    out = Path(os.environ["SEED001_PID_DIR"])
    (out / f"{os.getpid()}-{threading.get_ident()}-{params['x']}").write_text("")
    return {"loss": bowl(params["x"], params["y"])}


def test_joblib_runner_with_all_cpus_runs_functions_in_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEED001_PID_DIR", str(tmp_path))
    with AxScheduler(make_client(), JobLibRunner(n_jobs=-1), config(tmp_path)) as scheduler:
        scheduler.set_objective_function(pid_objective)
        scheduler.run_optimization(max_trials=3)
    assert all(t.status is TrialStatus.COMPLETED for t in scheduler.trials.values())
    losses = ax_losses(scheduler)
    assert all(losses[i] == pytest.approx(bowl(**t.parameters)) for i, t in scheduler.trials.items())
    pids = {int(path.name.split("-")[0]) for path in tmp_path.glob("*-*-*")}
    assert pids and os.getpid() not in pids


def test_joblib_runner_threading_backend_runs_two_trials_at_once_in_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEED001_PID_DIR", str(tmp_path))
    barrier = threading.Barrier(2, timeout=30)  # passes only when two trials run together

    def paired(params: dict[str, Any]) -> dict[str, Any]:
        barrier.wait()
        return pid_objective(params)

    runner = JobLibRunner(n_jobs=2, backend="threading")
    with AxScheduler(make_client(), runner, config(tmp_path)) as scheduler:
        scheduler.set_objective_function(paired)
        scheduler.run_optimization(max_trials=4)
    assert all(t.status is TrialStatus.COMPLETED for t in scheduler.trials.values())
    assert len(ax_losses(scheduler)) == 4
    pids = {int(path.name.split("-")[0]) for path in tmp_path.glob("*-*-*")}
    assert pids == {os.getpid()}


# -- script objectives: .sh with bash, .py with this Python, others executable ----------------


def test_a_non_executable_train_sh_runs_with_bash(tmp_path: Path) -> None:
    script = write_train_sh(tmp_path)
    assert not os.access(script, os.X_OK)
    with AxScheduler(make_client(), JobLibRunner(n_jobs=2), config(tmp_path)) as scheduler:
        scheduler.set_script_objective(str(script))
        scheduler.run_optimization(max_trials=3)
    assert all(t.status is TrialStatus.COMPLETED for t in scheduler.trials.values()), [
        t.error for t in scheduler.trials.values()
    ]
    losses = ax_losses(scheduler)
    for index, trial in scheduler.trials.items():
        assert losses[index] == pytest.approx(bowl(**trial.parameters))


def test_script_commands_and_a_script_that_cannot_run(tmp_path: Path) -> None:
    sh, py, exe = tmp_path / "train.sh", tmp_path / "train.py", tmp_path / "train"
    for path in (sh, py, exe):
        path.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert ScriptObjective(str(sh)).command() == ["bash", str(sh)]
    assert ScriptObjective(str(py)).command() == [sys.executable, str(py)]
    assert ScriptObjective(str(exe)).command() == [str(exe)]

    scheduler = AxScheduler(make_client(), JobLibRunner(n_jobs=1), config(tmp_path))
    for name in ("train.txt", "train_no_suffix"):
        plain = tmp_path / name
        plain.write_text("echo hi\n")
        with pytest.raises(ConfigError) as info:
            scheduler.set_script_objective(str(plain))
        assert info.value.field == "script_path"
        assert "chmod +x" in str(info.value) and ".sh" in str(info.value) and ".py" in str(info.value)
    with pytest.raises(ConfigError) as info:
        scheduler.set_script_objective(str(tmp_path / "missing.sh"))
    assert info.value.field == "script_path"


# -- container objectives: the trial directory at /job ---------------------------------------------

# No container engine runs on this machine (a docker CLI without a daemon), so these check the
# command line the runner starts: the trial directory mounted at /job, the working directory /job.


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_container_mounts_the_trial_directory_at_job(engine: str) -> None:
    argv = ContainerObjective("detector:1", "python sim.py --fast", engine).argv("/runs/t0")
    assert argv == [
        engine,
        "run",
        "--rm",
        "-v",
        "/runs/t0:/job",
        "-w",
        "/job",
        "-e",
        "JOB_PARAMS_FILE=/job/params.json",
        "detector:1",
        "python",
        "sim.py",
        "--fast",
    ]


@pytest.mark.parametrize("engine", ["apptainer", "singularity"])
def test_apptainer_binds_the_trial_directory_at_job(engine: str) -> None:
    argv = ContainerObjective("detector.sif", None, engine).argv("/runs/t0")
    assert argv[:8] == [engine, "run", "--bind", "/runs/t0:/job", "--pwd", "/job", "--env", argv[7]]
    assert argv[7] == "JOB_PARAMS_FILE=/job/params.json" and argv[-1] == "detector.sif"


# -- the built-in runners driven job by job, as a seed user may drive JobLibRunner --------------


def drive(runner: BaseRunner, job: Job) -> Job:
    """Run `job` and check it until it has finished, as the seed's scheduler does."""
    job.set_runner(runner)
    job.run()
    for _ in range(2000):  # a bound, so a bug ends the test instead of hanging it
        job.check_status()
        if job.state.is_finished():
            return job
        assert isinstance(runner, TrialRunner)
        runner.wait(0.05)
    raise AssertionError(f"{job} did not finish")


def test_joblib_runner_runs_seed_jobs(tmp_path: Path) -> None:
    runner = JobLibRunner(n_jobs=2, backend="threading", config={"tmp_dir": str(tmp_path)})
    done = drive(runner, Job("fn-ok", JobType.FUNCTION, function=objective, params={"x": 0.3, "y": 0.1}))
    assert done.is_completed() and done.get_results() == {"loss": pytest.approx(0.16)}
    failed = drive(runner, Job("fn-bad", JobType.FUNCTION, function=diverging, params={"x": 0.95, "y": 0.1}))
    assert failed.has_failed() and "ValueError: diverged" in failed.get_results()["error"]

    script = write_train_sh(tmp_path)
    work = tmp_path / "trial_0"
    work.mkdir()
    ran = drive(
        runner,
        Job(
            "sh", JobType.SCRIPT, script_path=str(script), params={"x": 0.5, "y": 0.5}, working_dir=str(work)
        ),
    )
    assert ran.is_completed() and ran.get_results() == {"loss": pytest.approx(0.04)}
    assert json.loads((work / "sh" / "params.json").read_text()) == {"x": 0.5, "y": 0.5}

    sleeper = tmp_path / "sleep.sh"
    sleeper.write_text("touch started\nsleep 60\n")
    job = Job("sleepy", JobType.SCRIPT, script_path=str(sleeper), params={"x": 0.1})
    job.set_runner(runner)
    job.run()
    started = tmp_path / "job_sleepy" / "started"  # no working_dir: the job runs under tmp_dir
    for _ in range(2000):  # cancel once it runs (a job still starting takes the grace period to stop)
        if started.exists():
            break
        runner.wait(0.01)
    assert job.is_running() and started.exists()
    job.cancel()
    assert job.state is JobState.CANCELLED
    runner.close()


def test_job_is_the_seeds_job() -> None:
    assert [state.name for state in JobState] == [
        "NEW",
        "READY",
        "CREATED",
        "QUEUED",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "PAUSED",
        "CANCELLED",
    ]
    assert str(JobState.RUNNING) == "RUNNING"
    assert {t.name: t.value for t in JobType} == {
        "FUNCTION": "function",
        "SCRIPT": "script",
        "CONTAINER": "container",
    }
    job = Job("j1", function=objective, params={"x": 0.1, "y": 0.2})
    assert job.job_type is JobType.FUNCTION and job.state is JobState.CREATED
    assert (job.env_vars, job.results, job.output_files, job.working_dir) == ({}, {}, [], None)
    with pytest.raises(ConfigError) as info:
        job.run()
    assert info.value.field == "runner"
    job.fail("out of memory")
    assert job.has_failed() and job.get_results() == {"error": "out of memory"} and job.end_time is not None
    for kwargs, field in [
        ({"job_type": JobType.FUNCTION}, "function"),
        ({"job_type": JobType.SCRIPT, "script_path": "/no/such/train.sh"}, "script_path"),
        ({"job_type": JobType.CONTAINER}, "container_image"),
    ]:
        with pytest.raises(ValueError) as raised:  # the seed raises ValueError; ConfigError is one
            Job("bad", **kwargs)
        assert isinstance(raised.value, ConfigError) and raised.value.field == field
