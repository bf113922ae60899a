"""Tests of the optimizer registry and the random optimizer."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import Observation
from sweepwise.core.protocols import Optimizer
from sweepwise.optimizers import (
    Goal,
    OptimizerSpec,
    available_optimizers,
    make_optimizer,
    register_optimizer,
)
from sweepwise.optimizers.random import RandomOptimizer
from sweepwise.space import SearchSpace

PARAMETERS: dict[str, Any] = {
    "trainer.lr": {"distribution": "log_normal", "min": 1e-4, "max": 1e-1},
    "trainer.steps": {"distribution": "int_uniform", "min": 10, "max": 200},
    "model.width": {"distribution": "uniform_pow2", "min": 4, "max": 64},
    "model.act": {"choices": ["relu", "tanh"]},
}


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace.from_dict(PARAMETERS)


def observe(suggestions: list[dict[str, Any]], *, failed: bool = False) -> list[Observation]:
    return [
        Observation(score=float(i), cost=1.0, suggestion=s, is_failure=failed)
        for i, s in enumerate(suggestions)
    ]


def keys(suggestions: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {tuple(sorted(s.items())) for s in suggestions}


# --- registry -----------------------------------------------------------------------------


def test_make_optimizer_builds_a_random_optimizer_that_meets_the_protocol(space: SearchSpace) -> None:
    optimizer = make_optimizer(OptimizerSpec(type="random", seed=3), space)
    assert isinstance(optimizer, RandomOptimizer)
    assert isinstance(optimizer, Optimizer)
    assert optimizer.seed == 3


def test_default_spec_is_protein(space: SearchSpace) -> None:
    from sweepwise.optimizers.protein import ProteinOptimizer

    assert isinstance(make_optimizer(OptimizerSpec(), space, goal="minimize"), ProteinOptimizer)
    assert isinstance(make_optimizer(OptimizerSpec(type="random"), space, goal="minimize"), RandomOptimizer)


def test_unknown_type_names_the_field_and_the_choices(space: SearchSpace) -> None:
    with pytest.raises(ConfigError) as info:
        make_optimizer(OptimizerSpec(type="bayesian-magic"), space)
    assert info.value.field == "optimizer.type"
    assert "unknown optimizer 'bayesian-magic'; choose one of: " in str(info.value)
    assert "random" in info.value.message
    assert "\n" not in str(info.value)


def test_unknown_goal_is_a_config_error(space: SearchSpace) -> None:
    with pytest.raises(ConfigError) as info:
        make_optimizer(OptimizerSpec(), space, goal="maximise")
    assert info.value.field == "goal"


def test_unknown_setting_is_a_config_error(space: SearchSpace) -> None:
    spec = OptimizerSpec.model_validate({"type": "random", "seed": 1, "num_random_samples": 4})
    assert spec.settings == {"num_random_samples": 4}
    with pytest.raises(ConfigError) as info:
        make_optimizer(spec, space)
    assert info.value.field == "optimizer.num_random_samples"
    assert "valid settings are: type, seed" in info.value.message


def test_negative_seed_is_a_config_error(space: SearchSpace) -> None:
    with pytest.raises(ConfigError) as info:
        make_optimizer(OptimizerSpec(seed=-1), space)
    assert info.value.field == "optimizer.seed"


def test_available_optimizers_lists_random() -> None:
    names = available_optimizers()
    assert "random" in names and names == sorted(names)


def test_registry_accepts_new_optimizers(space: SearchSpace) -> None:
    @register_optimizer("test-centre")
    def make_centre(spec: OptimizerSpec, space: SearchSpace, *, goal: Goal) -> RandomOptimizer:
        return RandomOptimizer(space, seed=0)

    assert "test-centre" in available_optimizers()
    assert isinstance(make_optimizer(OptimizerSpec(type="test-centre"), space), RandomOptimizer)
    # The same definition again (a module reload) is fine; a different one is not.
    register_optimizer("test-centre")(make_centre)
    with pytest.raises(ValueError, match="already registered"):

        @register_optimizer("test-centre")
        def other(spec: OptimizerSpec, space: SearchSpace, *, goal: Goal) -> RandomOptimizer:
            return RandomOptimizer(space)


def test_importing_the_package_does_not_import_numpy() -> None:
    code = "import sys, sweepwise.optimizers; print('numpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- suggestions --------------------------------------------------------------------------


def test_suggestions_are_valid(space: SearchSpace) -> None:
    for suggestion in RandomOptimizer(space, seed=0).suggest([], n_suggestions=20):
        space.validate_suggestion(suggestion)


def test_same_seed_and_inputs_give_the_same_suggestions(space: SearchSpace) -> None:
    first = RandomOptimizer(space, seed=11).suggest([], n_suggestions=5)
    history = observe(first)
    a = RandomOptimizer(space, seed=11).suggest(history, n_suggestions=3, pending=first[:1])
    b = RandomOptimizer(space, seed=11).suggest(history, n_suggestions=3, pending=first[:1])
    assert a == b


def test_different_seeds_give_different_suggestions(space: SearchSpace) -> None:
    assert RandomOptimizer(space, seed=1).suggest([], 4) != RandomOptimizer(space, seed=2).suggest([], 4)


def test_successive_calls_differ_as_observations_grow(space: SearchSpace) -> None:
    optimizer = RandomOptimizer(space, seed=5)
    first = optimizer.suggest([], n_suggestions=2)
    second = optimizer.suggest(observe(first), n_suggestions=2)
    third = optimizer.suggest(observe(first + second), n_suggestions=2)
    assert first != second and second != third and first != third


def test_pending_changes_the_suggestions(space: SearchSpace) -> None:
    optimizer = RandomOptimizer(space, seed=5)
    first = optimizer.suggest([], n_suggestions=1)
    assert optimizer.suggest([], n_suggestions=1, pending=first) != first


def test_unseeded_optimizers_draw_their_own_seed(space: SearchSpace) -> None:
    a, b = RandomOptimizer(space), RandomOptimizer(space)
    assert a.seed != b.seed
    assert a.suggest([], 3) == a.suggest([], 3)


def test_no_duplicates_within_a_batch(space: SearchSpace) -> None:
    batch = RandomOptimizer(space, seed=0).suggest([], n_suggestions=200)
    assert len(keys(batch)) == 200


def test_tiny_space_is_exhausted_before_any_repeat() -> None:
    space = SearchSpace.from_dict({"a": {"choices": ["x", "y", "z"]}, "b": {"choices": [1, 2]}})
    optimizer = RandomOptimizer(space, seed=0)
    batch = optimizer.suggest([], n_suggestions=6)
    assert len(keys(batch)) == 6
    # Everything has been tried: repeats are allowed now, but spread over the space.
    more = optimizer.suggest(observe(batch), n_suggestions=8)
    assert len(more) == 8 and len(keys(more[:6])) == 6


def test_observed_and_pending_points_are_avoided() -> None:
    space = SearchSpace.from_dict({"a": {"distribution": "int_uniform", "min": 0, "max": 9}})
    optimizer = RandomOptimizer(space, seed=4)
    observed: list[dict[str, Any]] = [{"a": v} for v in range(0, 5)]
    pending: list[dict[str, Any]] = [{"a": 5}, {"a": 6.0}]
    batch = optimizer.suggest(observe(observed[:3]) + observe(observed[3:], failed=True), 3, pending=pending)
    assert sorted(s["a"] for s in batch) == [7, 8, 9]


def test_rejection_sampling_avoids_observed_points_in_large_spaces() -> None:
    space = SearchSpace.from_dict({"a": {"distribution": "int_uniform", "min": 0, "max": 9999}})
    optimizer = RandomOptimizer(space, seed=2)
    observed = optimizer.suggest([], n_suggestions=300)
    later = optimizer.suggest(observe(observed), n_suggestions=300)
    assert len(keys(observed)) == 300 and not keys(observed) & keys(later)


def test_observations_from_another_space_are_ignored(space: SearchSpace) -> None:
    stale = observe([{"unrelated": 1}])
    assert len(RandomOptimizer(space, seed=0).suggest(stale, n_suggestions=2)) == 2


def test_zero_and_negative_counts(space: SearchSpace) -> None:
    optimizer = RandomOptimizer(space, seed=0)
    assert optimizer.suggest([], n_suggestions=0) == []
    with pytest.raises(ValueError):
        optimizer.suggest([], n_suggestions=-1)


def test_docstring_example_runs() -> None:
    import doctest

    import sweepwise.optimizers

    result = doctest.testmod(sweepwise.optimizers)
    assert result.attempted > 0 and result.failed == 0
