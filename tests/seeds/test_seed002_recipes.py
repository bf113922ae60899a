"""Seed 002's recipes, written as the seed writes them, run for real through `sweepwise run`.

The recipe module (`seed_recipes.adaptive`) and its job functions (`seed_recipes.arena`,
standing in for the seed's `experiments.recipes.arena`) are written into a scratch
directory. The jobs write what they received (arguments, overrides, `stats_server_uri`,
`CUDA_VISIBLE_DEVICES`) into their run directory, and the tests read it from there.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from conftest import cli, status_json
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import Observation, RunInfo
from sweepwise.engine.hooks import MissingMetricError, ObservationHook
from sweepwise.optimizers import OptimizerSpec, make_optimizer
from sweepwise.optimizers.protein import ProteinConfig, ProteinSettings
from sweepwise.recipes import AdaptiveConfig, AdaptiveTool, DispatcherType, SchedulerType
from sweepwise.schedulers import register_scheduler
from sweepwise.schedulers.batched_synced import BatchedSyncedOptimizingScheduler, BatchedSyncedSchedulerConfig
from sweepwise.schedulers.train_and_eval import TrainAndEvalConfig, TrainAndEvalScheduler
from sweepwise.space import SearchSpace

ARENA = '''
"""Job functions standing in for the seed's `experiments.recipes.arena`."""

import json
import os
from pathlib import Path


def _seen(job, **values):
    run_dir = Path(os.environ["SWEEPWISE_RUN_DIR"])
    values["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    (run_dir / f"{job}.seen.json").write_text(json.dumps(values, sort_keys=True))


def train(run: str, group: str, stats_server_uri: str | None = None, overrides: dict | None = None):
    overrides = dict(overrides or {})
    _seen("train", run=run, group=group, stats_server_uri=stats_server_uri, overrides=overrides)
    lr = float(overrides.get("trainer.lr", 0.1))
    (Path(os.environ["SWEEPWISE_RUN_DIR"]) / "policy.json").write_text(json.dumps({"lr": lr}))
    return {"train_loss": 1.0 - lr}


def evaluate(policy_uri: str, stats_server_uri: str | None = None):
    _seen("eval", policy_uri=policy_uri, stats_server_uri=stats_server_uri)
    lr = json.loads((Path(policy_uri) / "policy.json").read_text())["lr"]
    return {"evaluator/eval_arena/score": round(1.0 - (lr - 0.3) ** 2, 6)}  # the seed's metric only
'''

ADAPTIVE = '''
"""Adaptive experiment recipes, as seed 002 writes them."""

from typing import Any

from sweepwise.optimizers import OptimizerSpec
from sweepwise.optimizers.protein import ProteinConfig, ProteinSettings
from sweepwise.recipes import AdaptiveConfig, AdaptiveTool, DispatcherType, SchedulerType
from sweepwise.schedulers.batched_synced import BatchedSyncedSchedulerConfig


def train_and_eval(
    run: str | None = None,  # Accept run parameter from dispatcher (unused)
    recipe_module: str = "seed_recipes.arena",
    train_entrypoint: str = "train",
    eval_entrypoint: str = "evaluate",
    max_trials: int = 2,
    gpus: int = 0,
    experiment_id: str = "train_eval_poc",
    train_overrides: dict[str, Any] | None = None,
    dispatcher_type: str = "local",
    resume: bool = False,  # Resume from existing experiment
) -> AdaptiveTool:
    if dispatcher_type.lower() == "local":
        dispatcher_enum = DispatcherType.LOCAL
    else:
        raise ValueError(f"Invalid dispatcher_type: {dispatcher_type}. Must be 'local'")
    scheduler_config = {
        "recipe_module": recipe_module,
        "train_entrypoint": train_entrypoint,
        "eval_entrypoint": eval_entrypoint,
        "max_trials": max_trials,
        "gpus": gpus,
        "experiment_id": experiment_id,
    }
    scheduler_config["train_overrides"] = {"trainer.total_timesteps": 1000}
    adaptive_config = AdaptiveConfig(max_parallel=4, resume=resume, monitoring_interval=0.2)
    return AdaptiveTool(
        scheduler_type=SchedulerType.TRAIN_AND_EVAL,
        scheduler_config=scheduler_config,
        config=adaptive_config,
        dispatcher_type=dispatcher_enum,
        experiment_id=experiment_id,
    )


def protein_sweep(max_trials: int = 4, batch_size: int = 2) -> AdaptiveTool:
    protein_config = ProteinConfig(
        metric="evaluator/eval_arena/score",
        goal="maximize",
        method="bayes",
        parameters={
            "trainer.lr": {
                "min": 0.01, "max": 1.0, "distribution": "log_normal", "mean": 0.1, "scale": "auto"
            },
        },
        settings=ProteinSettings(num_random_samples=2),
    )
    scheduler_config = BatchedSyncedSchedulerConfig(
        recipe_module="seed_recipes.arena",
        max_trials=max_trials,
        batch_size=batch_size,
        experiment_id="protein_sweep",
        protein_config=protein_config,
    )
    return AdaptiveTool(
        scheduler_type=SchedulerType.BATCHED_SYNCED,
        scheduler_config=scheduler_config,
        dispatcher_type=DispatcherType.LOCAL,
        monitoring_interval=0.2,
    )


def fixed_batches(stats_server_uri: str = "https://stats.example.org:8443") -> AdaptiveTool:
    scheduler_config = BatchedSyncedSchedulerConfig(
        recipe_module="seed_recipes.arena",
        max_trials=2,
        batch_size=2,
        experiment_id="fixed_batches",
        train_overrides={"trainer.lr": 0.3},
        stats_server_uri=stats_server_uri,
    )
    return AdaptiveTool(
        scheduler_type="batched_synced", scheduler_config=scheduler_config, monitoring_interval=0.2
    )


def gpu_sweep() -> AdaptiveTool:
    scheduler_config = BatchedSyncedSchedulerConfig(
        recipe_module="seed_recipes.arena",
        max_trials=3,
        batch_size=3,
        experiment_id="gpu_sweep",
        parameters={"gpus": {"distribution": "int_uniform", "min": 1, "max": 3}},
        optimizer=OptimizerSpec(type="grid"),
    )
    return AdaptiveTool(
        scheduler_type="batched_synced", scheduler_config=scheduler_config, monitoring_interval=0.2
    )
'''


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    package = tmp_path / "seed_recipes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "arena.py").write_text(textwrap.dedent(ARENA))
    (package / "adaptive.py").write_text(textwrap.dedent(ADAPTIVE))
    return tmp_path


def _seen(workdir: Path, experiment: str, run_id: str, job: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (workdir / "runs" / experiment / run_id / f"{job}.seen.json").read_text()
    )
    return data


def _best(workdir: Path, experiment: str) -> dict[str, Any]:
    result = cli("best", experiment, "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _protein_space() -> dict[str, Any]:
    return {"trainer.lr": {"distribution": "log_normal", "min": 0.01, "max": 1.0, "mean": 0.1}}


# -- SchedulerType --------------------------------------------------------------------------


def test_scheduler_type_members_are_the_registered_names() -> None:
    assert SchedulerType.TRAIN_AND_EVAL == "train_and_eval"
    assert SchedulerType.BATCHED_SYNCED == "batched_synced"
    assert DispatcherType.LOCAL == "local"
    from sweepwise.recipes.tool import DispatcherType as ToolDispatcherType
    from sweepwise.recipes.tool import SchedulerType as ToolSchedulerType

    assert ToolSchedulerType is SchedulerType and ToolDispatcherType is DispatcherType


@pytest.mark.parametrize(
    "spelling", [SchedulerType.TRAIN_AND_EVAL, "train_and_eval", "TRAIN_AND_EVAL", "Train_And_Eval"]
)
def test_scheduler_type_is_stored_as_the_canonical_name(spelling: str) -> None:
    config = TrainAndEvalConfig(recipe_module="seed_recipes.arena", max_trials=2)
    tool = AdaptiveTool(scheduler_type=spelling, scheduler_config=config, dispatcher_type="LOCAL")
    assert tool.scheduler_type == "train_and_eval" and type(tool.scheduler_type) is str
    assert tool.dispatcher_type == "local"
    assert tool.scheduler is config
    data = json.loads(tool.model_dump_json())
    assert data["scheduler_type"] == "train_and_eval" and data["dispatcher_type"] == "local"
    assert AdaptiveTool.model_validate_json(tool.model_dump_json()) == tool


def test_registered_custom_names_match_case_insensitively() -> None:
    class SeedRoundRobinConfig(TrainAndEvalConfig):
        pass

    @register_scheduler("seed_round_robin", SeedRoundRobinConfig)
    class SeedRoundRobin(TrainAndEvalScheduler):
        pass

    tool = AdaptiveTool(scheduler_type="SEED_ROUND_ROBIN", scheduler={"max_trials": 2})
    assert tool.scheduler_type == "seed_round_robin" and type(tool.scheduler) is SeedRoundRobinConfig
    with pytest.raises(ValidationError, match="unknown scheduler 'TRAIN_AND_EVALS'; choose one of: "):
        AdaptiveTool(scheduler_type="TRAIN_AND_EVALS")


@pytest.mark.slow
def test_train_and_eval_recipe_with_scheduler_type_word_runs_and_scores_from_eval_arena(
    workdir: Path,
) -> None:
    result = cli("run", "seed_recipes.adaptive.train_and_eval", "scheduler_type=TRAIN_AND_EVAL", cwd=workdir)
    assert result.returncode == 0, result.stderr
    status = status_json(workdir, "train_eval_poc")
    assert status["status"] == "complete"
    assert [row["status"] for row in status["runs"]] == ["completed", "completed"]
    for row in status["runs"]:
        seen = _seen(workdir, "train_eval_poc", row["run_id"], "train")
        assert seen["run"] == row["run_id"] and seen["group"] == "train_eval_poc"
        assert seen["overrides"] == {"trainer.total_timesteps": 1000}
        # the job reported only `evaluator/eval_arena/score`: with the default metric, it is the score
        assert row["score"] == pytest.approx(1.0 - (0.1 - 0.3) ** 2)
    config = json.loads((workdir / "runs" / "train_eval_poc" / "adaptive_config.json").read_text())
    assert config["spec"]["scheduler"] == {"type": "train_and_eval"} and config["spec"]["metric"] == "score"
    best = _best(workdir, "train_eval_poc")
    assert best["run_id"].startswith("train_eval_poc_trial_") and best["score"] == pytest.approx(0.96)


# -- the fallback metric --------------------------------------------------------------------


def _evaluated(result: dict[str, Any]) -> RunInfo:
    return RunInfo(
        run_id="r1",
        summary={"eval/result": result, "train/result": {"train_loss": 0.5}},
        has_started_training=True,
        has_completed_training=True,
        has_started_eval=True,
        has_been_evaluated=True,
        runtime=12.0,
    )


def test_the_default_metric_falls_back_to_eval_arena_score_only_when_missing() -> None:
    hook = ObservationHook("score")
    assert hook(_evaluated({"evaluator/eval_arena/score": 0.7}))["observation/score"] == 0.7
    assert hook(_evaluated({"score": 0.2, "evaluator/eval_arena/score": 0.7}))["observation/score"] == 0.2
    with pytest.raises(MissingMetricError) as missing:
        hook(_evaluated({"accuracy": 0.9}))
    assert str(missing.value) == (
        "the result has no 'score' (it reported: accuracy, train_loss); "
        'report it, e.g. SWEEPWISE_RESULT {"score": 0.9}, or set metric: in the spec'
    )
    with pytest.raises(MissingMetricError, match="the result has no 'loss'"):  # a chosen metric: no fallback
        ObservationHook("loss")(_evaluated({"evaluator/eval_arena/score": 0.7}))
    with pytest.raises(MissingMetricError, match='"evaluator/eval_arena/score" is the string "high"'):
        hook(_evaluated({"evaluator/eval_arena/score": "high"}))


# -- BatchedSyncedSchedulerConfig and protein_config ------------------------------------------


def test_the_default_config_builds_a_scheduler_that_trains_fixed_batches() -> None:
    scheduler = BatchedSyncedOptimizingScheduler(BatchedSyncedSchedulerConfig())
    jobs = scheduler.schedule([], available_training_slots=8)
    assert [job.run_id for job in jobs] == [
        f"batched_synced_trial_{i:04d}" for i in range(1, 5)
    ]  # batch_size 4
    assert all(job.overrides == {} and job.metadata["adaptive/suggestion"] == {} for job in jobs)


def test_protein_config_alone_gives_the_search() -> None:
    protein = ProteinConfig(
        metric="evaluator/eval_arena/score",
        goal="minimize",
        parameters={"trainer": {"lr": {"distribution": "log_normal", "min": 0.01, "max": 1.0, "mean": 0.1}}},
        settings=ProteinSettings(num_random_samples=3, acquisition_fn="ei"),
    )
    config = BatchedSyncedSchedulerConfig(
        recipe_module="seed_recipes.arena", batch_size=2, protein_config=protein
    )
    jobs = BatchedSyncedOptimizingScheduler(config).schedule([], available_training_slots=2)
    assert [job.overrides["trainer.lr"] for job in jobs][0] == pytest.approx(
        0.1
    )  # Protein starts at the mean
    assert all(0.01 <= job.overrides["trainer.lr"] <= 1.0 for job in jobs)

    tool = AdaptiveTool(scheduler_type=SchedulerType.BATCHED_SYNCED, scheduler_config=config)
    spec = tool.experiment_spec()
    assert spec.parameters == protein.parameters
    assert (spec.goal, spec.metric) == ("minimize", "evaluator/eval_arena/score")
    assert spec.optimizer == {
        "type": "protein",
        "seed": None,
        "num_random_samples": 3,
        "acquisition_fn": "ei",
    }
    again = AdaptiveTool.model_validate_json(tool.model_dump_json())
    assert again == tool and type(again.scheduler.protein_config) is ProteinConfig  # type: ignore[attr-defined]
    assert AdaptiveTool(
        scheduler_type="batched_synced", scheduler=config, metric="loss"
    ).experiment_spec().metric == ("loss")


def test_parameters_and_protein_config_must_agree() -> None:
    same = {
        "trainer.lr": {"distribution": "log_normal", "min": 0.01, "max": 1.0, "mean": 0.1, "scale": "auto"}
    }
    config = BatchedSyncedSchedulerConfig(
        parameters=same, protein_config=ProteinConfig(parameters=_protein_space())
    )
    assert config.protein_config is not None
    with pytest.raises(ValidationError) as differ:
        BatchedSyncedSchedulerConfig(
            parameters={"trainer.lr": {"distribution": "uniform", "min": 0, "max": 1}},
            protein_config=ProteinConfig(parameters=_protein_space()),
        )
    assert differ.value.errors()[0]["msg"] == (
        "Value error, its parameters differ from parameters (in trainer.lr); "
        "give the search space once, in parameters or in protein_config.parameters"
    )
    with pytest.raises(ValidationError, match="its goal 'maximize' differs from goal 'minimize'"):
        BatchedSyncedSchedulerConfig(
            goal="minimize", protein_config=ProteinConfig(parameters=_protein_space())
        )
    with pytest.raises(ValidationError, match="its settings are Protein's but optimizer.type is 'random'"):
        BatchedSyncedSchedulerConfig(
            optimizer=OptimizerSpec(type="random"),
            protein_config=ProteinConfig(settings=ProteinSettings(num_random_samples=3)),
        )


@pytest.mark.slow
def test_a_conflicting_override_on_the_command_line_is_one_line(workdir: Path) -> None:
    goal = cli("run", "seed_recipes.adaptive.protein_sweep", "scheduler.goal=minimize", cwd=workdir)
    assert goal.returncode == 2 and goal.stderr.count("\n") == 1, goal.stderr
    assert "its goal 'maximize' differs from goal 'minimize'" in goal.stderr
    space = "parameters={trainer.lr: {distribution: uniform, min: 0.1, max: 0.5}}"
    conflict = cli("run", "seed_recipes.adaptive.protein_sweep", space, cwd=workdir)
    assert conflict.returncode == 2 and conflict.stderr.count("\n") == 1, conflict.stderr
    assert "its parameters differ from parameters (in trainer.lr)" in conflict.stderr
    assert not list(workdir.glob("*.db"))


@pytest.mark.slow
def test_batched_synced_sweep_with_only_protein_config(workdir: Path) -> None:
    result = cli("run", "seed_recipes.adaptive.protein_sweep", cwd=workdir)
    assert result.returncode == 0, result.stderr
    status = status_json(workdir, "protein_sweep")
    assert [row["status"] for row in status["runs"]] == ["completed"] * 4
    for row in status["runs"]:
        assert set(row["suggestion"]) == {"trainer.lr"} and 0.01 <= row["suggestion"]["trainer.lr"] <= 1.0
        seen = _seen(workdir, "protein_sweep", row["run_id"], "train")
        assert seen["overrides"] == row["suggestion"]
        assert row["score"] == pytest.approx(1.0 - (row["suggestion"]["trainer.lr"] - 0.3) ** 2)
    config = json.loads((workdir / "runs" / "protein_sweep" / "adaptive_config.json").read_text())
    assert config["spec"]["metric"] == "evaluator/eval_arena/score"
    assert config["spec"]["parameters"] == {"trainer.lr": _protein_space()["trainer.lr"] | {"scale": "auto"}}
    assert config["scheduler_config"]["protein_config"]["settings"]["num_random_samples"] == 2
    best = _best(workdir, "protein_sweep")
    assert best["metric"] == "evaluator/eval_arena/score"
    assert best["score"] == max(row["score"] for row in status["runs"])


# -- stats_server_uri --------------------------------------------------------------------------


@pytest.mark.slow
def test_stats_server_uri_reaches_every_train_and_eval_job(workdir: Path) -> None:
    uri = "https://stats.example.org:8443"
    result = cli("run", "seed_recipes.adaptive.fixed_batches", f"stats_server_uri={uri}", cwd=workdir)
    assert result.returncode == 0, result.stderr
    status = status_json(workdir, "fixed_batches")
    assert [row["status"] for row in status["runs"]] == ["completed", "completed"]
    for row in status["runs"]:
        assert row["suggestion"] == {}  # no search space: the fixed overrides
        train = _seen(workdir, "fixed_batches", row["run_id"], "train")
        assert train["stats_server_uri"] == uri and train["overrides"] == {"trainer.lr": 0.3}
        assert _seen(workdir, "fixed_batches", row["run_id"], "eval")["stats_server_uri"] == uri
        assert row["score"] == 1.0


def test_stats_server_uri_is_an_optional_override_of_both_jobs() -> None:
    config = BatchedSyncedSchedulerConfig(
        recipe_module="seed_recipes.arena", stats_server_uri="http://stats:8080"
    )
    train = BatchedSyncedOptimizingScheduler(config).schedule([], available_training_slots=1)[0]
    assert train.overrides == {"stats_server_uri": "http://stats:8080"}
    assert json.loads(train.env["SWEEPWISE_OPTIONAL_KEYS"]) == ["stats_server_uri"]
    trained = RunInfo(
        run_id=train.run_id,
        summary={"observation/suggestion": {}},
        has_started_training=True,
        has_completed_training=True,
    )
    evaluation = BatchedSyncedOptimizingScheduler(config).schedule([trained], available_training_slots=1)[0]
    assert evaluation.overrides == {"stats_server_uri": "http://stats:8080"}
    assert json.loads(evaluation.env["SWEEPWISE_OPTIONAL_KEYS"]) == ["stats_server_uri"]
    plain = BatchedSyncedOptimizingScheduler(BatchedSyncedSchedulerConfig(recipe_module="m"))
    assert "SWEEPWISE_OPTIONAL_KEYS" not in plain.schedule([], available_training_slots=1)[0].env


# -- resource sweeps ---------------------------------------------------------------------------


def test_protein_searches_an_int_gpus_parameter() -> None:
    space = SearchSpace.from_dict({"gpus": {"distribution": "int_uniform", "min": 0, "max": 4}})
    protein = make_optimizer(OptimizerSpec(type="protein", seed=3, num_random_samples=2), space)
    observations: list[Observation] = []
    for _ in range(4):
        suggestions = protein.suggest(observations, n_suggestions=2)
        for suggestion in suggestions:
            assert type(suggestion["gpus"]) is int and 0 <= suggestion["gpus"] <= 4
            observations.append(Observation(float(suggestion["gpus"]), 1.0 + suggestion["gpus"], suggestion))


def test_a_searched_gpus_is_the_training_jobs_request_not_an_override() -> None:
    config = BatchedSyncedSchedulerConfig(
        recipe_module="seed_recipes.arena",
        gpus=1,
        batch_size=3,
        parameters={
            "gpus": {"choices": [0, 2, 4]},
            "nodes": {"distribution": "int_uniform", "min": 1, "max": 2},
        },
        optimizer=OptimizerSpec(type="grid"),
    )
    jobs = BatchedSyncedOptimizingScheduler(config).schedule([], available_training_slots=3)
    assert [(job.gpus, job.nodes) for job in jobs] == [(0, 1), (0, 2), (2, 1)]
    assert all(job.overrides == {} for job in jobs)
    assert jobs[1].metadata["adaptive/suggestion"] == {"gpus": 0, "nodes": 2}
    trained = RunInfo(
        run_id=jobs[2].run_id,
        summary={"observation/suggestion": {"gpus": 2, "nodes": 1}},
        has_started_training=True,
        has_completed_training=True,
    )
    evaluation = BatchedSyncedOptimizingScheduler(config).schedule([trained], available_training_slots=0)[0]
    assert evaluation.gpus == 1 and evaluation.overrides == {}  # eval keeps the config's resources


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        ("gpus", {"distribution": "uniform", "min": 0, "max": 2}, "got a uniform range"),
        ("gpus", {"choices": [1, 1.5]}, "got choices [1, 1.5]"),
        ("gpus", {"distribution": "int_uniform", "min": -1, "max": 2}, "got choices [-1, 0, 1, 2]"),
        ("nodes", {"choices": [0, 1]}, "got choices [0, 1]"),
    ],
)
def test_a_resource_parameter_must_be_whole_numbers(name: str, spec: dict[str, Any], message: str) -> None:
    least = 0 if name == "gpus" else 1
    with pytest.raises(ConfigError) as bad:
        BatchedSyncedOptimizingScheduler(BatchedSyncedSchedulerConfig(parameters={name: spec}))
    assert bad.value.field == f"parameters.{name}"
    assert f"values must be whole numbers >= {least} ({message})" in bad.value.message
    with pytest.raises(ConfigError, match=f"protein_config.parameters.{name}: sets each run's"):
        BatchedSyncedOptimizingScheduler(
            BatchedSyncedSchedulerConfig(protein_config=ProteinConfig(parameters={name: spec}))
        )


@pytest.mark.slow
def test_a_gpus_sweep_gives_each_run_its_own_gpus(workdir: Path) -> None:
    fake_gpus = {
        "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5"
    }  # as tests/test_gpus.py: the pool the dispatcher detects
    result = cli("run", "seed_recipes.adaptive.gpu_sweep", "max_parallel=3", cwd=workdir, env=fake_gpus)
    assert result.returncode == 0, result.stderr
    status = status_json(workdir, "gpu_sweep")
    assert [row["status"] for row in status["runs"]] == ["completed"] * 3
    counts = []
    for row in status["runs"]:
        train = _seen(workdir, "gpu_sweep", row["run_id"], "train")
        visible = train["CUDA_VISIBLE_DEVICES"].split(",")
        assert len(visible) == row["suggestion"]["gpus"] and set(visible) <= set("012345")
        assert train["overrides"] == {}  # a resource request, not a config override
        params = json.loads(
            (workdir / "runs" / "gpu_sweep" / row["run_id"] / "train.params.json").read_text()
        )
        assert "gpus" not in params
        counts.append(row["suggestion"]["gpus"])
    assert sorted(counts) == [1, 2, 3]


def test_the_seeds_controller_config_and_experiment_id_on_the_tool() -> None:
    tool = AdaptiveTool(
        scheduler_type=SchedulerType.TRAIN_AND_EVAL,
        scheduler_config={"recipe_module": "seed_recipes.arena", "max_trials": 2},
        config=AdaptiveConfig(max_parallel=3, monitoring_interval=7, resume=True),
        experiment_id="from_the_tool",
        max_parallel=2,  # the tool's own setting wins over the config's
    )
    assert (tool.max_parallel, tool.monitoring_interval) == (2, 7.0)
    assert tool.scheduler.experiment_id == "from_the_tool"  # type: ignore[attr-defined]
    assert tool.experiment_spec().name == "from_the_tool"
    assert AdaptiveTool.model_validate_json(tool.model_dump_json()) == tool


def test_stats_server_uri_on_the_tool_reaches_the_scheduler_config() -> None:
    tool = AdaptiveTool(
        scheduler_type="batched_synced", config=AdaptiveConfig(), stats_server_uri="https://stats.example"
    )
    assert tool.scheduler.stats_server_uri == "https://stats.example"  # type: ignore[attr-defined]
    assert (tool.max_parallel, tool.monitoring_interval) == (1, 60.0)  # the seed's defaults
    with pytest.raises(ValidationError, match="TrainAndEvalConfig has no stats_server_uri"):
        AdaptiveTool(scheduler_type="train_and_eval", stats_server_uri="https://stats.example")
