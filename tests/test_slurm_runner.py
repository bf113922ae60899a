"""`SlurmRunner` (seed 001's name) and function objectives on a dispatcher, against the real SLURM.

The SLURM fixtures are those of tests/conftest.py and tests/test_slurm_dispatcher.py: SLURM is
started when `sinfo` does not answer (tests/services.py), and each test's leftover SLURM jobs are
cancelled afterwards.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sweepwise.ax import AxScheduler, DispatcherRunner, SlurmRunner, TrialStatus
from sweepwise.ax.run_function import PAYLOAD
from sweepwise.ax.slurm_runner import setup_lines
from sweepwise.core.errors import ConfigError
from sweepwise.dispatchers.local import LocalDispatcher
from test_slurm_dispatcher import experiment, slurm_jobs  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow  # real SLURM jobs: in the full suite, not in -m "not slow"

TESTS = Path(__file__).resolve().parent


def bowl(params: dict[str, Any]) -> dict[str, Any]:
    """The objective the jobs import from this module (tests/ is on their PYTHONPATH)."""
    return {"loss": ((params["x"] - 0.3) ** 2 + (params["y"] - 0.5) ** 2, 0.0)}


def diverges(params: dict[str, Any]) -> dict[str, Any]:
    raise ValueError(f"simulation diverged at x={params['x']:.3f}")


SCRIPT = textwrap.dedent(
    """
    import json, os
    with open(os.environ["JOB_PARAMS_FILE"]) as f:
        params = json.load(f)
    with open("result.json", "w") as f:
        json.dump({"loss": params["x"] + 10 * params["y"]}, f)
    """
)


@pytest.fixture(autouse=True)
def _jobs_import_this_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs (local, or SLURM's with `--export=ALL`) find `bowl` in tests/ and sweepwise in src/."""
    paths = [str(TESTS), str(TESTS.parent / "src"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path for path in paths if path))


def make_client(name: str) -> Any:
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


def config(tmp_path: Path, name: str) -> dict[str, Any]:
    return {
        "monitoring_interval": 0.2,
        "job_output_dir": str(tmp_path / "jobs"),
        "store": f"sqlite:///{tmp_path / 'sweepwise.db'}",
        "experiment_name": name,
    }


def ax_means(scheduler: AxScheduler) -> dict[int, float]:
    """The `loss` mean Ax holds for each trial."""
    df = scheduler.ax_client._experiment.lookup_data().df
    return {int(row.trial_index): float(row["mean"]) for _, row in df.iterrows() if row.metric_name == "loss"}


def slurm_runner(**options: Any) -> SlurmRunner:
    return SlurmRunner(partition="debug", time_limit="00:05:00", memory="100M", poll_interval=0.5, **options)


def test_dispatcher_runner_runs_functions_through_the_local_dispatcher(tmp_path: Path) -> None:
    offset = 0.25  # a closure: cloudpickled by value, not imported by the job

    runner = DispatcherRunner(LocalDispatcher(tmp_path / "jobs", "local-fn"), capacity=2)
    scheduler = AxScheduler(make_client("local-fn"), runner, config(tmp_path, "local-fn"))
    scheduler.set_objective_function(bowl)
    scheduler.run_optimization(max_trials=2)
    scheduler.set_objective_function(lambda p: {"loss": p["x"] + offset})
    scheduler.run_optimization(max_trials=1)
    trials = scheduler.trials
    assert [t.status for t in trials.values()] == [TrialStatus.COMPLETED] * 3
    means = ax_means(scheduler)
    for index in (0, 1):
        assert means[index] == pytest.approx(bowl(trials[index].parameters)["loss"][0])
    assert means[2] == pytest.approx(trials[2].parameters["x"] + offset)
    assert (tmp_path / "jobs" / "local-fn" / trials[0].run_id / PAYLOAD).is_file()


def test_a_raising_function_on_the_local_dispatcher_fails_with_its_last_line(tmp_path: Path) -> None:
    runner = DispatcherRunner(LocalDispatcher(tmp_path / "jobs", "local-raise"))
    scheduler = AxScheduler(make_client("local-raise"), runner, config(tmp_path, "local-raise"))
    scheduler.set_objective_function(diverges)
    scheduler.run_optimization(max_trials=1)
    trial = scheduler.trials[0]
    assert trial.status is TrialStatus.FAILED and trial.error is not None
    assert f"ValueError: simulation diverged at x={trial.parameters['x']:.3f}" in trial.error


def test_seed_options_become_the_batch_script(tmp_path: Path) -> None:
    runner = SlurmRunner(
        partition="gpu",
        time_limit="02:00:00",
        memory="16G",
        cpus_per_task=4,
        nodes=2,
        ntasks_per_node=2,
        account="proj",
        qos="high",
        config={"modules": ["cuda/12"], "init_env": ["export A=1"], "conda_env": "train"},
    )
    assert runner.capacity == 4 and runner.partition == "gpu"
    job = runner._definition(
        _trial(tmp_path / "jobs" / "seedopts" / "seedopts-trial-0000", bowl)
    )  # makes the dispatcher, writes function.pkl; submits nothing
    assert job.nodes == 2
    script = runner.dispatcher.batch_script(job)  # type: ignore[attr-defined]
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj",
        "#SBATCH --mem=16G",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=2",
        "#SBATCH --time=02:00:00",
        "#SBATCH --qos=high",
    ):
        assert line in script.splitlines(), line
    assert script.index("module load cuda/12") < script.index("export A=1") < script.index("conda activate")
    assert setup_lines({"modules": "gcc"}) == ["module load gcc"]
    with pytest.raises(ConfigError, match=r"config\.queue"):
        SlurmRunner(config={"queue": "x"})
    with pytest.raises(ConfigError, match="time_limit"):
        SlurmRunner(time_limit="soon")


def _trial(workdir: Path, fn: Any) -> Any:
    from sweepwise.ax import FunctionObjective, TrialJob

    workdir.mkdir(parents=True)
    return TrialJob(0, workdir.name, {"x": 0.1, "y": 0.2}, FunctionObjective(fn), workdir)


@pytest.mark.slow
def test_an_ax_loop_moves_to_slurm_by_changing_the_runner(tmp_path: Path, experiment: str) -> None:  # noqa: F811
    scheduler = AxScheduler(make_client(experiment), slurm_runner(max_jobs=3), config(tmp_path, experiment))
    scheduler.set_objective_function(bowl)
    best = scheduler.run_optimization(max_trials=3)
    assert isinstance(best, dict) and set(best) == {"x", "y"}
    trials = scheduler.trials
    assert [t.status for t in trials.values()] == [TrialStatus.COMPLETED] * 3
    means = ax_means(scheduler)
    assert sorted(means) == [0, 1, 2]
    for index, trial in trials.items():
        assert means[index] == pytest.approx(bowl(trial.parameters)["loss"][0])
    ax_trials = scheduler.ax_client._experiment.trials
    assert all(ax_trials[index].status.is_completed for index in trials)
    # Each trial was a SLURM job of its own, named after its run.
    names = sorted(name for _, name in slurm_jobs(experiment))
    assert names == [f"{experiment}.{trial.run_id}.train" for trial in trials.values()]


def test_a_script_objective_runs_through_slurm(tmp_path: Path, experiment: str) -> None:  # noqa: F811
    script = tmp_path / "objective.py"
    script.write_text(SCRIPT)
    scheduler = AxScheduler(make_client(experiment), slurm_runner(max_jobs=2), config(tmp_path, experiment))
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=2)
    means = ax_means(scheduler)
    for index, trial in scheduler.trials.items():
        assert trial.status is TrialStatus.COMPLETED, trial.error
        assert means[index] == pytest.approx(trial.parameters["x"] + 10 * trial.parameters["y"])
    assert len(slurm_jobs(experiment)) == 2


def test_a_raising_function_fails_its_slurm_trial_with_the_last_line(tmp_path: Path, experiment: str) -> None:  # noqa: F811
    scheduler = AxScheduler(make_client(experiment), slurm_runner(), config(tmp_path, experiment))
    scheduler.set_objective_function(diverges)
    assert scheduler.run_optimization(max_trials=1) == {}
    trial = scheduler.trials[0]
    assert trial.status is TrialStatus.FAILED and trial.error is not None
    assert f"ValueError: simulation diverged at x={trial.parameters['x']:.3f}" in trial.error
    assert scheduler.ax_client._experiment.trials[0].status.is_failed
