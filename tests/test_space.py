"""Tests of the search space: specs, validation, normalisation round trips, sampling."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from sweepwise.core.errors import ConfigError
from sweepwise.space import AUTO_SCALE, Distribution, ParameterSpec, SearchSpace

EXAMPLE: dict[str, Any] = {
    "trainer.lr": {"distribution": "log_normal", "min": 1e-4, "max": 1e-1, "mean": 1e-2, "scale": "auto"},
    "trainer.steps": {"distribution": "int_uniform", "min": 10, "max": 200},
    "model.width": {"distribution": "uniform_pow2", "min": 4, "max": 64},
    "model.dropout": {"distribution": "logit_normal", "min": 0.01, "max": 0.5},
    "model.act": {"choices": ["relu", "tanh"]},
    "x": {"distribution": "uniform", "min": -5, "max": 10},
}


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace.from_dict(EXAMPLE)


def one(spec: dict[str, Any]) -> SearchSpace:
    return SearchSpace.from_dict({"p": spec})


def config_error(mapping: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_dict(mapping)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{info.value.field}: ")
    return info.value


# --- loading ------------------------------------------------------------------------------


def test_names_are_sorted_dot_paths_and_dim_counts_parameters(space: SearchSpace) -> None:
    assert space.names == sorted(EXAMPLE)
    assert space.dim == 6
    assert space.specs["model.act"].distribution is Distribution.CATEGORICAL


def test_nested_groups_flatten_to_dot_paths() -> None:
    nested = {
        "trainer": {"lr": EXAMPLE["trainer.lr"], "steps": EXAMPLE["trainer.steps"]},
        "model": {
            "width": EXAMPLE["model.width"],
            "dropout": EXAMPLE["model.dropout"],
            "act": EXAMPLE["model.act"],
        },
        "x": EXAMPLE["x"],
    }
    assert SearchSpace.from_dict(nested) == SearchSpace.from_dict(EXAMPLE)


def test_deeply_nested_and_mixed_groups() -> None:
    space = SearchSpace.from_dict({"a": {"b": {"c": {"choices": [1, 2]}}}, "a.d": {"choices": ["x"]}})
    assert space.names == ["a.b.c", "a.d"]


def test_explicit_categorical_distribution_is_accepted() -> None:
    space = one({"distribution": "categorical", "choices": ["a", "b"]})
    assert space.specs["p"].distribution is Distribution.CATEGORICAL


def test_to_dict_round_trips_through_from_dict_and_json(space: SearchSpace) -> None:
    data = space.to_dict()
    assert SearchSpace.from_dict(json.loads(json.dumps(data))) == space
    assert data["model.width"]["min"] == 4 and isinstance(data["model.width"]["min"], int)


def test_scale_auto_and_explicit() -> None:
    assert one({"distribution": "uniform", "min": 0, "max": 1}).specs["p"].resolved_scale == AUTO_SCALE
    spec = one({"distribution": "uniform", "min": 0, "max": 1, "scale": 0.2}).specs["p"]
    assert spec.scale == 0.2 and spec.resolved_scale == 0.2


# --- centre / mean --------------------------------------------------------------------------


def test_default_means_are_midpoints_of_normalised_space(space: SearchSpace) -> None:
    centre = space.center()
    assert centre["x"] == 2.5
    assert centre["trainer.steps"] == 105 and isinstance(centre["trainer.steps"], int)
    assert centre["model.width"] == 16 and isinstance(centre["model.width"], int)
    assert centre["trainer.lr"] == 1e-2  # given explicitly
    assert math.isclose(centre["model.dropout"], 1 / (1 + math.sqrt(99)), rel_tol=1e-12)
    assert centre["model.act"] == "relu"
    np.testing.assert_allclose(space.normalize(centre)[[1, 2, 4, 5]], 0.0, atol=1e-12)


def test_default_log_mean_is_geometric_mean() -> None:
    centre = one({"distribution": "log_normal", "min": 1e-4, "max": 1.0}).center()
    assert math.isclose(centre["p"], 1e-2, rel_tol=1e-12)


def test_mean_is_snapped_for_integral_distributions() -> None:
    assert one({"distribution": "uniform_pow2", "min": 1, "max": 1024, "mean": 20}).center() == {"p": 16}
    assert one({"distribution": "int_uniform", "min": 0, "max": 9, "mean": 3.4}).center() == {"p": 3}


def test_categorical_mean_must_be_a_choice() -> None:
    assert one({"choices": ["a", "b"], "mean": "b"}).center() == {"p": "b"}
    error = config_error({"p": {"choices": ["a", "b"], "mean": "c"}})
    assert error.field == "parameters.p.mean"


def test_centre_is_a_valid_suggestion(space: SearchSpace) -> None:
    space.validate_suggestion(space.center())


# --- round trips ---------------------------------------------------------------------------

ROUND_TRIPS = [
    ({"distribution": "uniform", "min": -5, "max": 10}, [-5.0, -4.999, 0.0, 1.2345678, 9.99, 10.0]),
    ({"distribution": "int_uniform", "min": -3, "max": 1000}, [-3, -2, 0, 7, 500, 999, 1000]),
    ({"distribution": "uniform_pow2", "min": 4, "max": 512}, [4, 8, 16, 64, 256, 512]),
    ({"distribution": "uniform_pow2", "min": 1, "max": 2}, [1, 2]),
    ({"distribution": "uniform_pow2", "min": 8, "max": 16}, [8, 16]),
    ({"distribution": "log_normal", "min": 1e-6, "max": 1e3}, [1e-6, 3.3e-5, 1e-2, 0.5, 7.0, 999.9, 1e3]),
    ({"distribution": "logit_normal", "min": 1e-3, "max": 0.999}, [1e-3, 0.01, 0.3, 0.5, 0.9, 0.99, 0.999]),
    ({"choices": ["relu", 3, 2.5, True, None, "tanh"]}, ["relu", 3, 2.5, True, None, "tanh"]),
    ({"choices": ["only"]}, ["only"]),
]


@pytest.mark.parametrize(("spec", "values"), ROUND_TRIPS)
def test_denormalize_inverts_normalize(spec: dict[str, Any], values: list[Any]) -> None:
    space = one(spec)
    for value in values:
        point = space.normalize({"p": value})
        assert point.shape == (1,) and -1.0 <= point[0] <= 1.0
        back = space.denormalize(point)["p"]
        assert type(back) is type(value)
        if isinstance(value, float):
            assert math.isclose(back, value, rel_tol=1e-9)
        else:
            assert back == value


@pytest.mark.parametrize(("spec", "values"), ROUND_TRIPS)
def test_normalize_inverts_denormalize_at_the_ends(spec: dict[str, Any], values: list[Any]) -> None:
    space = one(spec)
    assert space.denormalize(np.array([-1.0]))["p"] == values[0]
    assert space.denormalize(np.array([1.0]))["p"] == values[-1]


def test_range_ends_map_to_box_ends(space: SearchSpace) -> None:
    low = {"model.act": "relu", "model.dropout": 0.01, "model.width": 4, "trainer.lr": 1e-4}
    low |= {"trainer.steps": 10, "x": -5}
    np.testing.assert_allclose(space.normalize(low), -1.0)
    np.testing.assert_allclose(space.normalize(space.denormalize(np.ones(6))), 1.0)


def test_denormalize_clips_points_outside_the_box(space: SearchSpace) -> None:
    assert space.denormalize(np.full(6, 7.0)) == space.denormalize(np.ones(6))
    assert space.denormalize(np.full(6, -7.0)) == space.denormalize(-np.ones(6))


def test_denormalize_rejects_wrong_shape(space: SearchSpace) -> None:
    with pytest.raises(ValueError, match="shape"):
        space.denormalize(np.zeros(3))


def test_categorical_index_spreads_evenly_over_the_box() -> None:
    space = one({"choices": ["a", "b", "c"]})
    assert [float(space.normalize({"p": c})[0]) for c in "abc"] == [-1.0, 0.0, 1.0]
    assert space.denormalize(np.array([0.4]))["p"] == "b"
    assert space.denormalize(np.array([0.6]))["p"] == "c"


def test_categorical_keeps_true_and_one_apart() -> None:
    space = one({"choices": [1, True]})
    assert space.normalize({"p": True})[0] == 1.0
    assert space.normalize({"p": 1})[0] == -1.0


def test_denormalize_returns_json_serialisable_python_scalars(space: SearchSpace) -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        suggestion = space.denormalize(rng.uniform(-1, 1, space.dim))
        assert json.loads(json.dumps(suggestion)) == suggestion
        for value in suggestion.values():
            assert type(value) in (int, float, str, bool, type(None))


def test_pow2_outputs_are_exact_powers_of_two() -> None:
    space = one({"distribution": "uniform_pow2", "min": 4, "max": 4096})
    for u in np.linspace(-1, 1, 101):
        value = space.denormalize(np.array([u]))["p"]
        assert isinstance(value, int) and 4 <= value <= 4096 and value & (value - 1) == 0


def test_int_outputs_are_ints() -> None:
    space = one({"distribution": "int_uniform", "min": 0, "max": 3})
    values = {space.denormalize(np.array([u]))["p"] for u in np.linspace(-1, 1, 41)}
    assert values == {0, 1, 2, 3}
    assert all(type(v) is int for v in values)


def test_normalize_reports_missing_and_unknown_values(space: SearchSpace) -> None:
    centre = space.center()
    with pytest.raises(ConfigError) as info:
        space.normalize({k: v for k, v in centre.items() if k != "x"})
    assert info.value.field == "x"
    with pytest.raises(ConfigError) as info:
        space.normalize(centre | {"model.act": "gelu"})
    assert info.value.field == "model.act"


# --- sampling -----------------------------------------------------------------------------


def test_sample_uniform_stays_in_bounds(space: SearchSpace) -> None:
    samples = space.sample_uniform(np.random.default_rng(0), 500)
    assert len(samples) == 500
    for s in samples:
        space.validate_suggestion(s)
        assert -5 <= s["x"] <= 10 and 1e-4 <= s["trainer.lr"] <= 0.1


def test_sample_uniform_is_reproducible_and_covers_discrete_values(space: SearchSpace) -> None:
    a = space.sample_uniform(np.random.default_rng(7), 400)
    assert a == space.sample_uniform(np.random.default_rng(7), 400)
    assert {s["model.width"] for s in a} == {4, 8, 16, 32, 64}
    assert {s["model.act"] for s in a} == {"relu", "tanh"}


def test_sample_uniform_gives_discrete_values_equal_chances() -> None:
    space = one({"choices": ["a", "b", "c"]})
    counts = {c: 0 for c in "abc"}
    for s in space.sample_uniform(np.random.default_rng(1), 3000):
        counts[str(s["p"])] += 1
    assert all(850 < n < 1150 for n in counts.values()), counts


def test_sample_uniform_is_log_uniform_for_log_normal() -> None:
    space = one({"distribution": "log_normal", "min": 1e-4, "max": 1.0})
    values = np.array([s["p"] for s in space.sample_uniform(np.random.default_rng(2), 2000)])
    assert 0.4 < np.mean(values < 1e-2) < 0.6


def test_cardinality() -> None:
    assert SearchSpace.from_dict(EXAMPLE).cardinality is None
    finite = SearchSpace.from_dict(
        {"a": {"choices": [1, 2, 3]}, "b": {"distribution": "int_uniform", "min": 1, "max": 4}}
    )
    assert finite.cardinality == 12


# --- validate_suggestion ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"extra": 1}, "extra"),
        ({"x": 11.0}, "x"),
        ({"x": "3"}, "x"),
        ({"x": True}, "x"),
        ({"trainer.steps": 10.5}, "trainer.steps"),
        ({"model.width": 12}, "model.width"),
        ({"model.act": "gelu"}, "model.act"),
        ({"trainer.lr": 0.5}, "trainer.lr"),
    ],
)
def test_validate_suggestion_rejects_bad_values(
    space: SearchSpace, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        space.validate_suggestion(space.center() | change)
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_validate_suggestion_rejects_missing_names(space: SearchSpace) -> None:
    suggestion = space.center()
    del suggestion["trainer.lr"]
    with pytest.raises(ConfigError) as info:
        space.validate_suggestion(suggestion)
    assert info.value.field == "trainer.lr"


# --- load-time validation -----------------------------------------------------------------

U: dict[str, Any] = {"distribution": "uniform", "min": 0, "max": 1}


@pytest.mark.parametrize(
    ("mapping", "field", "needle"),
    [
        (
            {"trainer": {"lr": {"distribution": "gauss", "min": 0, "max": 1}}},
            "parameters.trainer.lr.distribution",
            "uniform, int_uniform, uniform_pow2, log_normal, logit_normal, categorical",
        ),
        ({"a": {"min": 0, "max": 1}}, "parameters.a.distribution", "required"),
        ({"a": {"distribution": "uniform", "max": 1}}, "parameters.a.min", "required"),
        ({"a": {"distribution": "uniform", "min": 0}}, "parameters.a.max", "required"),
        (
            {"trainer.lr": {"distribution": "log_normal", "min": 0.1, "max": 0.01}},
            "parameters.trainer.lr.min",
            "must be below max (got min=0.1, max=0.01); swap them or fix the range",
        ),
        ({"a": {"distribution": "uniform", "min": 1, "max": 1}}, "parameters.a.min", "below max"),
        ({"a": {"distribution": "log_normal", "min": 0, "max": 1}}, "parameters.a.min", "above 0"),
        ({"a": {"distribution": "log_normal", "min": -1, "max": 1}}, "parameters.a.min", "above 0"),
        ({"a": {"distribution": "logit_normal", "min": 0, "max": 0.5}}, "parameters.a.min", "above 0"),
        ({"a": {"distribution": "logit_normal", "min": 0.1, "max": 1}}, "parameters.a.max", "below 1"),
        ({"a": {"distribution": "uniform_pow2", "min": 0.5, "max": 8}}, "parameters.a.min", "at least 1"),
        ({"a": {"distribution": "uniform_pow2", "min": 5, "max": 8}}, "parameters.a.min", "power of two"),
        ({"a": {"distribution": "int_uniform", "min": 0.5, "max": 7}}, "parameters.a.min", "whole number"),
        ({"a": {"distribution": "int_uniform", "min": 0, "max": 7.5}}, "parameters.a.max", "whole number"),
        ({"a": U | {"mean": 2}}, "parameters.a.mean", "within [0, 1]"),
        ({"a": U | {"mean": "abc"}}, "parameters.a.mean", "number"),
        ({"a": U | {"scale": 0}}, "parameters.a.scale", "above 0"),
        ({"a": U | {"scale": -1.5}}, "parameters.a.scale", "above 0"),
        ({"a": U | {"scale": "big"}}, "parameters.a.scale", "'auto'"),
        ({"a": {"choices": []}}, "parameters.a.choices", "at least one"),
        ({"a": {"choices": ["x", "y", "x"]}}, "parameters.a.choices", "duplicate value 'x'"),
        ({"a": {"choices": [1, 1.0]}}, "parameters.a.choices", "duplicate"),
        ({"a": {"choices": [[1, 2]]}}, "parameters.a.choices", "scalar"),
        ({"a": {"choices": "ab"}}, "parameters.a.choices", "list"),
        ({"a": {"choices": ["x"], "min": 0}}, "parameters.a.min", "categorical"),
        ({"a": U | {"choices": [1]}}, "parameters.a.choices", "only categorical"),
        (
            {"trainer": {"lr": U | {"stepsize": 2}}},
            "parameters.trainer.lr.stepsize",
            "unknown field 'stepsize'",
        ),
        ({"a": U | {"min": "low"}}, "parameters.a.min", "must be a number"),
        ({"a": U | {"max": float("inf")}}, "parameters.a.max", "finite"),
        ({"a": 5}, "parameters.a", "parameter spec"),
        ({"a": {}}, "parameters.a", "parameter spec"),
        ({"a..b": U}, "parameters", "dot path"),
        ({"a.b": U, "a": {"b": U}}, "parameters.a.b", "twice"),
    ],
)
def test_bad_specs_raise_one_line_config_errors(mapping: dict[str, Any], field: str, needle: str) -> None:
    error = config_error(mapping)
    assert error.field == field
    assert needle in error.message


def test_empty_parameters_are_rejected() -> None:
    assert config_error({}).field == "parameters"


def test_field_prefix_can_be_changed() -> None:
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_dict({"a": {"distribution": "nope"}}, field="sweep.parameters")
    assert info.value.field == "sweep.parameters.a.distribution"


def test_numeric_strings_from_yaml_are_accepted() -> None:
    # PyYAML reads `1e-4` (no dot) as a string.
    spec = one({"distribution": "log_normal", "min": "1e-4", "max": "1e-1", "mean": "1e-2"}).specs["p"]
    assert spec.min == 1e-4 and spec.mean == 1e-2


def test_parameter_spec_direct_construction_validates() -> None:
    assert ParameterSpec(distribution=Distribution.UNIFORM, min=0, max=2).mean == 1.0
    with pytest.raises(ValueError, match="below max"):
        ParameterSpec(distribution=Distribution.UNIFORM, min=2, max=0)


def test_discrete_values_and_levels() -> None:
    pow2 = one({"distribution": "uniform_pow2", "min": 4, "max": 32}).specs["p"]
    assert pow2.discrete_values() == [4, 8, 16, 32] and pow2.levels == 4
    assert one(U).specs["p"].levels is None and one(U).specs["p"].discrete_values() is None
    big = one({"distribution": "int_uniform", "min": 0, "max": 10**12}).specs["p"]
    assert big.levels == 10**12 + 1


# -- ordinal and conditional parameters --------------------------------------------------------

LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
CONDITIONAL: dict[str, Any] = {
    "kernel": {"choices": ["rbf", "poly"]},
    "degree": {"distribution": "int_uniform", "min": 2, "max": 5, "when": {"kernel": "poly"}},
    "coef": {"distribution": "ordinal", "values": [0, 1, 2], "when": {"kernel": "poly"}},
    "scale": {"distribution": "uniform", "min": 0, "max": 1, "when": {"coef": 2}},
    "lr": {"distribution": "ordinal", "values": LRS, "log": True},
}


def test_ordinal_is_encoded_by_rank_by_default_and_by_log10_with_log() -> None:
    by_rank = one({"distribution": "ordinal", "values": [1, 2, 5, 100]})
    assert by_rank.specs["p"].unit_levels() == pytest.approx([-1.0, -1 / 3, 1 / 3, 1.0])
    assert [by_rank.normalize({"p": v})[0] for v in (1, 2, 5, 100)] == pytest.approx([-1, -1 / 3, 1 / 3, 1])
    by_log = one({"distribution": "ordinal", "values": [1, 10, 1000], "log": True})
    assert by_log.specs["p"].unit_levels() == pytest.approx([-1.0, -1 / 3, 1.0])
    for u, value in ((-0.7, 1), (-0.6, 10), (0.3, 10), (0.4, 1000)):
        assert by_log.denormalize([u]) == {"p": value}
    assert by_rank.center() == {"p": 5} and by_log.center() == {"p": 10}  # the middle rank, ties up
    assert by_rank.specs["p"].levels == 4 and by_rank.specs["p"].discrete_values() == [1, 2, 5, 100]


def test_ordinal_samples_are_members_and_round_trip() -> None:
    space = one({"distribution": "ordinal", "values": LRS, "log": True, "mean": 1e-3})
    drawn = [s["p"] for s in space.sample_uniform(np.random.default_rng(0), 200)]
    assert set(drawn) == set(LRS)
    for value in LRS:
        assert space.denormalize(space.normalize({"p": value})) == {"p": value}
    assert SearchSpace.from_dict(space.to_dict()) == space
    with pytest.raises(ConfigError, match="not one of the values"):
        space.validate_suggestion({"p": 2e-3})


def test_conditional_parameters_exist_only_when_their_condition_holds() -> None:
    space = SearchSpace.from_dict(CONDITIONAL)
    assert space.order().index("kernel") < space.order().index("coef") < space.order().index("scale")
    rbf = {"kernel": "rbf", "lr": 1e-3}
    assert space.active(rbf) == {"kernel", "lr"}
    space.validate_suggestion(rbf)
    space.validate_suggestion(rbf | {"degree": 3})  # an inactive value is accepted, not required
    assert space.prune(rbf | {"degree": 3, "coef": 2}) == rbf
    poly = {"kernel": "poly", "lr": 1e-3, "degree": 3, "coef": 2, "scale": 0.5}
    assert space.active(poly) == set(poly)
    with pytest.raises(ConfigError, match="scale"):
        space.validate_suggestion({k: v for k, v in poly.items() if k != "scale"})
    # inactive parameters sit at 0 whatever value they hold
    assert np.array_equal(space.normalize(rbf), space.normalize(rbf | {"degree": 5}))
    for s in space.sample_uniform(np.random.default_rng(1), 100):
        assert set(s) == space.active(s)
        space.validate_suggestion(s)
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_a_condition_names_a_sibling_within_its_group() -> None:
    space = SearchSpace.from_dict(
        {"model": {"kernel": {"choices": ["rbf", "poly"]}, "degree": {**CONDITIONAL["degree"]}}}
    )
    assert space.specs["model.degree"].when == {"model.kernel": "poly"}


@pytest.mark.parametrize(
    ("spec", "field", "needle"),
    [
        ({"distribution": "ordinal"}, "p.values", "required"),
        ({"distribution": "ordinal", "values": []}, "p.values", "non-empty list"),
        ({"distribution": "ordinal", "values": "1,2"}, "p.values", "non-empty list"),
        ({"distribution": "ordinal", "values": [1, "a"]}, "p.values", "finite number"),
        ({"distribution": "ordinal", "values": [1, True]}, "p.values", "finite number"),
        ({"distribution": "ordinal", "values": [1, float("nan")]}, "p.values", "finite number"),
        ({"distribution": "ordinal", "values": [1, 3, 2]}, "p.values", "strictly increasing"),
        ({"distribution": "ordinal", "values": [1, 1]}, "p.values", "strictly increasing"),
        ({"distribution": "ordinal", "values": [0, 1], "log": True}, "p.values", "above 0"),
        ({"distribution": "ordinal", "values": [1, 2], "log": "yes"}, "p.log", "true or false"),
        ({"distribution": "ordinal", "values": [1, 2], "mean": 3}, "p.mean", "one of the values"),
        ({"distribution": "ordinal", "values": [1, 2], "min": 0}, "p.min", "take values"),
        ({"distribution": "ordinal", "values": [1, 2], "choices": [1]}, "p.choices", "take values"),
        ({"distribution": "logit_normal", "min": 0.1, "max": 0.9, "log": True}, "p.log", "only ordinal"),
        ({"choices": [1, 2], "values": [1, 2]}, "p.values", "only ordinal"),
        ({"distribution": "ordinal", "values": [1, 2], "when": "kernel=poly"}, "p.when", "mapping"),
        ({"distribution": "ordinal", "values": [1, 2], "when": {}}, "p.when", "mapping"),
        ({"distribution": "ordinal", "values": [1, 2], "when": {"k": [1]}}, "p.when.k", "one value"),
        ({"distribution": "ordinal", "values": [1, 2], "when": {"no": 1}}, "p.when.no", "not a parameter"),
        ({"distribution": "ordinal", "values": [1, 2], "when": {"p": 1}}, "p.when.p", "itself"),
        ({"choices": ["a"], "when": {"kernel": "linear"}}, "p.when.kernel", "not one of the values"),
        ({"choices": ["a"], "when": {"x": 1}}, "p.when.x", "categorical or ordinal"),
    ],
)
def test_bad_ordinal_and_when_specs_raise_one_line_config_errors(
    spec: dict[str, Any], field: str, needle: str
) -> None:
    others = {"kernel": {"choices": ["rbf", "poly"]}, "x": {"distribution": "uniform", "min": 0, "max": 1}}
    error = config_error({"p": spec, **others})
    assert error.field == f"parameters.{field}"
    assert needle in str(error)


def test_conditions_that_form_a_cycle_are_rejected() -> None:
    error = config_error(
        {
            "a": {"choices": [1, 2], "when": {"c": 1}},
            "b": {"choices": [1, 2], "when": {"a": 1}},
            "c": {"choices": [1, 2], "when": {"b": 1}},
        }
    )
    assert error.field == "parameters.a.when"
    assert "cycle (a -> c -> b -> a)" in str(error)
