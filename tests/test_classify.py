"""Automatic argument classification: function arguments vs overrides, types, model fields, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from conftest import REPO
from sweepwise.core.errors import ConfigError
from sweepwise.recipes import AdaptiveTool, classify
from sweepwise.recipes.classify import require_arguments
from sweepwise.recipes.loading import load_function
from sweepwise.recipes.tool import override_tool
from sweepwise.recipes.values import coerce, override_model
from sweepwise.schedulers.base import TrainAndEvalConfig
from sweepwise.schedulers.batched_synced import BatchedSyncedSchedulerConfig


class OptimizerConfig(BaseModel):
    name: str = "adam"
    lr: float = 1e-3
    betas: list[float] = Field(default_factory=lambda: [0.9, 0.999])


class TrainerConfig(BaseModel):
    epochs: int = 1
    compile: bool = False
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    tags: dict[str, str] = Field(default_factory=dict)


class Needs(BaseModel):
    width: int
    depth: int


def train(
    run: str,
    steps: int = 10,
    lr: float = 0.1,
    fast: bool = False,
    layers: list[int] | None = None,
    mode: Literal["a", "b"] = "a",
    path: Path = Path("."),
    note: str | None = None,
    trainer: TrainerConfig | None = None,
    anything=None,  # type: ignore[no-untyped-def]
) -> None:
    """A function with one parameter of each kind."""


def test_parameters_are_arguments_and_the_rest_overrides() -> None:
    result = classify(train, ["run=007", "steps=3", "max_parallel=2", "scheduler.batch_size=8"])
    assert result.args == {"run": "007", "steps": 3}
    assert result.overrides == {"max_parallel": "2", "scheduler.batch_size": "8"}


@pytest.mark.parametrize(
    ("word", "name", "expected"),
    [
        ("fast=true", "fast", True),
        ("fast=false", "fast", False),
        ("fast=1", "fast", True),
        ("fast=yes", "fast", True),
        ("steps=20", "steps", 20),
        ("steps=2.0", "steps", 2),
        ("lr=1e-3", "lr", 0.001),  # YAML 1.1 reads this as a string; the float type decides
        ("lr=3", "lr", 3.0),
        ("layers=[64, 32]", "layers", [64, 32]),
        ("layers=null", "layers", None),
        ("mode=b", "mode", "b"),
        ("path=runs/x", "path", Path("runs/x")),
        ("run=123", "run", "123"),  # str parameters keep the raw text
        ("run=true", "run", "true"),
        ("note=null", "note", None),
        ("note=hello world", "note", "hello world"),
        ("anything=[1, a]", "anything", [1, "a"]),  # unannotated: read like YAML
        ("anything=0.5", "anything", 0.5),
    ],
)
def test_values_are_coerced_to_the_annotated_type(word: str, name: str, expected: Any) -> None:
    result = classify(train, ["run=r", word] if name != "run" else [word])
    assert result.args[name] == expected
    assert type(result.args[name]) is type(expected)


def test_dotted_keys_set_fields_of_a_model_parameter() -> None:
    result = classify(
        train,
        [
            "run=r",
            "trainer.epochs=5",
            "trainer.optimizer.lr=0.01",
            "trainer.tags.team=ml",
            "trainer.compile=1",
        ],
    )
    trainer = result.args["trainer"]
    assert isinstance(trainer, TrainerConfig)
    assert trainer.epochs == 5 and trainer.compile is True
    assert trainer.optimizer == OptimizerConfig(lr=0.01)
    assert trainer.tags == {"team": "ml"}
    assert result.overrides == {}


def test_model_fields_start_from_the_parameters_default() -> None:
    def fit(trainer: TrainerConfig = TrainerConfig(epochs=7)) -> None:  # noqa: B008
        """A default instance that is not the model's own defaults."""

    result = classify(fit, ["trainer.optimizer.name=sgd"])
    assert result.args["trainer"].epochs == 7
    assert result.args["trainer"].optimizer.name == "sgd"
    assert fit.__defaults__[0].optimizer.name == "adam"  # type: ignore[index]  # not changed in place


def test_a_whole_model_value_then_one_field() -> None:
    result = classify(train, ["run=r", "trainer={epochs: 3, compile: true}", "trainer.epochs=4"])
    assert result.args["trainer"] == TrainerConfig(epochs=4, compile=True)


def test_a_model_with_required_fields_is_built_from_the_words() -> None:
    def build(net: Needs) -> None:
        """Needs both fields."""

    assert classify(build, ["net.width=8", "net.depth=2"]).args["net"] == Needs(width=8, depth=2)
    with pytest.raises(ConfigError) as info:
        classify(build, ["net.width=8"])
    assert info.value.field == "net.depth" and "required" in str(info.value)


@pytest.mark.parametrize(
    ("word", "field", "text"),
    [
        ("steps=ten", "steps", "valid integer"),
        ("fast=maybe", "fast", "valid boolean"),
        ("mode=c", "mode", "'a' or 'b'"),
        ("layers=[a]", "layers", "valid integer"),
        ("trainer.epochs=x", "trainer.epochs", "valid integer"),
        ("trainer.optimizer.lrr=1", "trainer.optimizer.lrr", "did you mean trainer.optimizer.lr"),
        ("trainer.epoch=1", "trainer.epoch", "did you mean trainer.epochs"),
        ("nokey", "nokey", "expected key=value"),
        ("=3", "=3", "expected key=value"),
    ],
)
def test_bad_words_name_the_key(word: str, field: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        classify(train, ["run=r", word])
    assert info.value.field == field
    assert text in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_keys_are_errors_when_no_override_is_allowed() -> None:
    with pytest.raises(ConfigError) as info:
        classify(train, ["run=r", "stepz=3"], known_overrides=())
    assert info.value.field == "stepz"
    assert "not a parameter of train; did you mean steps?" in str(info.value)
    with pytest.raises(ConfigError) as info:
        classify(train, ["run=r", "trainer_epochs=3"], known_overrides=())
    assert "trainer.epochs" in str(info.value)
    assert classify(train, ["run=r", "max_parallel=3"], known_overrides=["max_parallel"]).overrides == {
        "max_parallel": "3"
    }


def test_required_parameters() -> None:
    require_arguments(train, {"run": "x"})
    with pytest.raises(ConfigError, match=r"^run: is required by train; pass run=VALUE$"):
        require_arguments(train, {})


def test_coerce_and_override_model_directly() -> None:
    assert coerce("0.5", float | None, "x") == 0.5
    config = override_model(
        TrainAndEvalConfig(max_trials=2),
        [("train_overrides.trainer.lr", ["train_overrides", "trainer", "lr"], "0.01")],
    )
    assert config.train_overrides == {"trainer.lr": 0.01} and config.max_trials == 2


def _tool() -> AdaptiveTool:
    config = BatchedSyncedSchedulerConfig(
        recipe_module="examples.recipes.jobs",
        parameters={"trainer.lr": {"distribution": "log_normal", "min": 0.01, "max": 1.0}},
        train_overrides={"trainer.steps": 10},
    )
    return AdaptiveTool(scheduler_type="batched_synced", scheduler=config)


def test_tool_overrides_go_to_the_tool_or_its_scheduler_config() -> None:
    tool = override_tool(
        _tool(),
        {
            "max_parallel": "2",
            "scheduler.batch_size": "8",
            "max_trials": "3",
            "train_overrides.trainer.lr": "0.01",
            "parameters.trainer.lr.max": "0.5",
            "goal": "minimize",
        },
    )
    assert tool.max_parallel == 2 and tool.goal == "minimize"
    config = tool.scheduler
    assert isinstance(config, BatchedSyncedSchedulerConfig)
    assert (config.batch_size, config.max_trials) == (8, 3)
    assert config.train_overrides == {"trainer.steps": 10, "trainer.lr": 0.01}
    assert config.parameters["trainer.lr"] == {"distribution": "log_normal", "min": 0.01, "max": 0.5}


@pytest.mark.parametrize(
    ("key", "raw", "field", "text"),
    [
        ("max_paralel", "2", "max_paralel", "did you mean max_parallel"),
        ("batch_siz", "2", "batch_siz", "did you mean batch_size or scheduler.batch_size?"),
        ("scheduler.batch_siz", "2", "scheduler.batch_siz", "did you mean scheduler.batch_size"),
        ("batch_size", "0", "batch_size", "greater than or equal to 1"),
        ("max_parallel", "x", "max_parallel", "valid integer"),
        ("dispatcher_type", "cloud", "dispatcher_type", "unknown dispatcher 'cloud'"),
        ("scheduler_type", "nope", "scheduler_type", "unknown scheduler 'nope'"),
    ],
)
def test_bad_tool_overrides(key: str, raw: str, field: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        override_tool(_tool(), {key: raw})
    assert info.value.field == field
    assert text in str(info.value)


def test_the_tool_keeps_its_scheduler_config_typed_and_serialises_it_fully() -> None:
    tool = _tool()
    data = tool.model_dump_json()
    assert '"batch_size":4' in data and '"recipe_module":"examples.recipes.jobs"' in data
    again = AdaptiveTool.model_validate_json(data)
    assert type(again.scheduler) is BatchedSyncedSchedulerConfig
    assert again == tool
    with pytest.raises(ValueError, match="takes a BatchedSyncedSchedulerConfig, not a TrainAndEvalConfig"):
        AdaptiveTool(scheduler_type="batched_synced", scheduler=TrainAndEvalConfig())
    built = AdaptiveTool(scheduler_type="train_and_eval", scheduler={"max_trials": 2})
    assert type(built.scheduler) is TrainAndEvalConfig and built.scheduler.max_trials == 2


def test_load_function_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    assert load_function("examples.recipes.jobs.train").__name__ == "train"
    with pytest.raises(ConfigError, match=r"^examples\.recipes\.jobs\.trian: .* did you mean train\?"):
        load_function("examples.recipes.jobs.trian")
    with pytest.raises(ConfigError, match="cannot import module 'examples.nope'"):
        load_function("examples.nope.train")


class Net(BaseModel):
    needs: Needs
    name: str = "net"


def test_several_words_for_one_nested_model_are_validated_together() -> None:
    def build(net: Net) -> None:
        """A nested model with required fields."""

    result = classify(build, ["net.needs.width=8", "net.needs.depth=2", "net.name=n"])
    assert result.args["net"] == Net(needs=Needs(width=8, depth=2), name="n")
    with pytest.raises(ConfigError) as info:
        classify(build, ["net.needs.width=8"])
    assert info.value.field == "net.needs.depth"
