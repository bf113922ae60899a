"""The optuna and ax optimizer adapters: valid suggestions, failures told, whole sweeps through the CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import cli, status_json
from sweepwise.core.errors import ConfigError, MissingExtraError
from sweepwise.core.models import Observation
from sweepwise.optimizers import OptimizerSpec, available_optimizers, make_optimizer
from sweepwise.space import SearchSpace

SPACE = SearchSpace.from_dict(
    {
        "model.x": {"distribution": "uniform", "min": 0.0, "max": 1.0},
        "lr": {"distribution": "log_normal", "min": 1e-4, "max": 1e-1},
        "layers": {"distribution": "int_uniform", "min": 1, "max": 4},
        "act": {"choices": ["relu", "tanh", "gelu"]},
    }
)


def _observe(suggestions: list[dict[str, Any]], fail_first: bool = True) -> list[Observation]:
    return [
        Observation(score=-abs(s["model.x"] - 0.3), cost=1.0, suggestion=s, is_failure=fail_first and i == 0)
        for i, s in enumerate(suggestions)
    ]


def test_both_are_registered() -> None:
    assert {"ax", "optuna"} <= set(available_optimizers())


@pytest.mark.parametrize("sampler", ["tpe", "gp", "nsga2", "random"])
def test_optuna_samplers_give_valid_suggestions_with_failures_and_pending(sampler: str) -> None:
    optimizer = make_optimizer(OptimizerSpec(type="optuna", seed=3, sampler=sampler), SPACE, goal="minimize")
    observations: list[Observation] = []
    for _ in range(3):
        batch = optimizer.suggest(observations, n_suggestions=3, pending=[SPACE.center()])
        assert len(batch) == 3
        for suggestion in batch:
            SPACE.validate_suggestion(suggestion)
        observations += _observe(batch)
    # Stateless: the same inputs give the same suggestions.
    again = make_optimizer(OptimizerSpec(type="optuna", seed=3, sampler=sampler), SPACE, goal="minimize")
    assert again.suggest(observations, 2) == optimizer.suggest(observations, 2)


def test_optuna_rejects_an_unknown_sampler_and_setting() -> None:
    with pytest.raises(ConfigError) as info:
        make_optimizer(OptimizerSpec(type="optuna", sampler="magic"), SPACE)
    assert info.value.field == "optimizer.sampler"
    with pytest.raises(ConfigError) as info:
        make_optimizer(OptimizerSpec(type="optuna", bogus=1), SPACE)
    assert "valid settings are" in str(info.value)


def test_ax_gives_valid_suggestions_with_failures_and_pending() -> None:
    import torch

    torch.set_num_threads(1)
    optimizer = make_optimizer(OptimizerSpec(type="ax", seed=0, initialization_budget=3), SPACE)
    observations = _observe(optimizer.suggest([], n_suggestions=3))
    batch = optimizer.suggest(observations, n_suggestions=2, pending=[SPACE.center()])
    assert len(batch) == 2
    for suggestion in batch:
        SPACE.validate_suggestion(suggestion)
    # Rebuilt at each call, it must not replay the same initial points.
    xs = [obs.suggestion["model.x"] for obs in observations] + [s["model.x"] for s in batch]
    assert len(set(xs)) == len(xs)
    assert optimizer.suggest(observations, 0) == []
    with pytest.raises(ConfigError) as info:
        make_optimizer(OptimizerSpec(type="ax", method="best"), SPACE)
    assert info.value.field == "optimizer.method"


def test_ax_searches_an_int_range_of_more_values_than_it_takes_in_a_choice() -> None:
    space = SearchSpace.from_dict(
        {
            "steps": {"distribution": "int_uniform", "min": 100, "max": 2000},
            "x": {"distribution": "uniform", "min": 0.0, "max": 1.0},
        }
    )
    optimizer = make_optimizer(OptimizerSpec(type="ax", seed=0, initialization_budget=2), space)
    observations = [
        Observation(score=s["steps"] / 2000 - s["x"], cost=1.0, suggestion=s)
        for s in optimizer.suggest([], n_suggestions=2)
    ]
    for suggestion in [*[o.suggestion for o in observations], *optimizer.suggest(observations, 2)]:
        space.validate_suggestion(suggestion)
        assert isinstance(suggestion["steps"], int) and 100 <= suggestion["steps"] <= 2000


def test_ax_refuses_a_categorical_of_more_choices_than_it_takes_naming_the_parameter() -> None:
    choices = [f"c{i}" for i in range(1001)]
    space = SearchSpace.from_dict({"arch": {"choices": choices}})
    with pytest.raises(ConfigError) as info:
        make_optimizer(OptimizerSpec(type="ax"), space)
    assert info.value.field == "parameters.arch" and "1001 choices" in str(info.value)


@pytest.mark.slow  # the optimizers' suggestions are checked in the fast subset above
@pytest.mark.parametrize(
    "optimizer",
    [
        pytest.param({"type": "optuna", "sampler": "tpe", "seed": 1}, id="optuna"),
        pytest.param({"type": "ax", "seed": 1}, id="ax"),
    ],
)
def test_quickstart_sweep_end_to_end(tmp_path: Path, make_sweep, optimizer: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    name = f"sweep-{optimizer['type']}"
    spec = make_sweep(name, optimizer=optimizer)
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = status_json(tmp_path, name)["runs"]
    assert len(rows) == 6
    assert all(row["status"] == "completed" for row in rows)
    xs = [row["suggestion"]["x"] for row in rows]
    assert all(0.0 <= x <= 1.0 for x in xs) and len(set(xs)) == 6


@pytest.mark.parametrize(("name", "module"), [("optuna", "optuna"), ("ax", "ax")])
def test_a_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(MissingExtraError) as info:
        make_optimizer(OptimizerSpec(type=name), SPACE)
    assert f"sweepwise[{name}]" in str(info.value)


MIXED = SearchSpace.from_dict(
    {
        "lr": {"distribution": "ordinal", "values": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], "log": True},
        "layers": {"distribution": "ordinal", "values": [1, 2, 4, 8]},
        "steps": {"distribution": "int_uniform", "min": 10, "max": 50},
        "kernel": {"choices": ["rbf", "poly", "linear"]},
        "degree": {"distribution": "int_uniform", "min": 2, "max": 5, "when": {"kernel": "poly"}},
        "gamma": {"distribution": "log_normal", "min": 1e-3, "max": 1.0, "when": {"kernel": "rbf"}},
    }
)


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "protein"},
        {"type": "random"},
        {"type": "grid"},
        {"type": "sobol"},
        {"type": "optuna", "sampler": "tpe"},
        {"type": "optuna", "sampler": "gp"},
        # Ax in the full suite: test_ax_gives_valid_suggestions_with_failures_and_pending is fast
        pytest.param({"type": "ax", "initialization_budget": 3}, marks=pytest.mark.slow),
    ],
    ids=lambda spec: "-".join(str(v) for v in spec.values()),
)
def test_every_optimizer_gives_valid_suggestions_on_a_mixed_conditional_space(spec: dict[str, Any]) -> None:
    optimizer = make_optimizer(OptimizerSpec.model_validate({**spec, "seed": 2}), MIXED)
    observations: list[Observation] = []
    kernels = set()
    for _ in range(2 if spec["type"] == "ax" else 4):  # ax: one Sobol round, one BoTorch round
        batch = optimizer.suggest(observations, n_suggestions=3, pending=[MIXED.center()])
        assert len(batch) == 3
        for s in batch:
            MIXED.validate_suggestion(s)
            assert set(s) == MIXED.active(s)  # inactive parameters are left out
            assert isinstance(s["steps"], int) and isinstance(s["layers"], int)
            assert s["lr"] in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
            kernels.add(s["kernel"])
            observations.append(Observation(s["layers"] - s.get("degree", 0), 1.0, s, is_failure=False))
    if spec["type"] != "grid":  # the grid walks one kernel's points first
        assert len(kernels) > 1
