"""The distribution names users bring from Optuna, Ray Tune and W&B (issue: a first real sweep).

A spec written with `log_uniform`, `int_log_uniform`, `log: true` or a quantised range
(`q`/`step`) becomes one of sweepwise's own distributions, the same one Optuna's
distributions for that space map to; bad input gets one line naming the field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sweepwise.core.errors import ConfigError
from sweepwise.optimizers import OptimizerSpec, make_optimizer
from sweepwise.space import SearchSpace

ALIASED = {
    "lr": {"distribution": "log_uniform", "min": 1e-4, "max": 1e-1},
    "wd": {"distribution": "uniform", "min": 1e-6, "max": 1e-2, "log": True},
    "layers": {"distribution": "int_log_uniform", "min": 1, "max": 64},
    "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5, "q": 0.1},
    "batch": {"distribution": "int_uniform", "min": 16, "max": 128, "step": 16},
    "act": {"choices": ["relu", "gelu"]},
}


def optuna_space() -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    return {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "wd": FloatDistribution(1e-6, 1e-2, log=True),
        "layers": IntDistribution(1, 64, log=True),
        "dropout": FloatDistribution(0.0, 0.5, step=0.1),
        "batch": IntDistribution(16, 128, step=16),
        "act": CategoricalDistribution(["relu", "gelu"]),
    }


def test_aliases_become_sweepwise_distributions() -> None:
    specs = SearchSpace.from_dict(ALIASED).to_dict()
    assert specs["lr"]["distribution"] == specs["wd"]["distribution"] == "log_normal"
    assert (specs["lr"]["min"], specs["lr"]["max"]) == (1e-4, 1e-1)
    assert specs["layers"]["distribution"] == "ordinal" and specs["layers"]["log"] is True
    assert specs["layers"]["values"] == list(range(1, 65))
    assert specs["dropout"]["values"] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert specs["batch"]["values"] == [16, 32, 48, 64, 80, 96, 112, 128]


def test_the_same_space_in_optunas_terms_gives_the_same_distributions() -> None:
    assert SearchSpace.from_optuna(optuna_space()).to_dict() == SearchSpace.from_dict(ALIASED).to_dict()


def test_an_aliased_spec_is_searched_on_the_scale_it_names() -> None:
    space = SearchSpace.from_dict(ALIASED)
    optimizer = make_optimizer(OptimizerSpec(type="random", seed=0), space, goal="maximize")
    draws = optimizer.suggest([], 400)
    lr = np.log10([d["lr"] for d in draws])
    assert 0.2 < float(np.mean(lr < -2.5)) < 0.8  # uniform in log10: half below the log midpoint
    layers = [d["layers"] for d in draws]
    assert all(isinstance(v, int) for v in layers) and sum(v <= 8 for v in layers) > 120  # log-spread
    assert {d["dropout"] for d in draws} <= {0.0, 0.1, 0.2, 0.3, 0.4, 0.5}
    assert {d["batch"] for d in draws} <= {16, 32, 48, 64, 80, 96, 112, 128}


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"distribution": "log_uniform", "min": -9.2, "max": -2.3}, "min", "log_uniform_values"),
        ({"distribution": "int_log_uniform", "min": 0, "max": 10}, "min", "at least 1"),
        ({"distribution": "int_log_uniform", "min": 1.5, "max": 10}, "min", "whole number"),
        ({"distribution": "uniform", "min": 0.0, "max": 1.0, "q": 0}, "q", "above 0"),
        ({"distribution": "uniform", "min": 0.0, "max": 1.0, "q": 0.1, "step": 0.1}, "step", "not both"),
        ({"distribution": "uniform", "min": 0.0, "max": 1e6, "q": 1e-3}, "q", "more than 4096"),
        ({"distribution": "quniform", "min": 0.0, "max": 1.0}, "q", "required"),
        ({"distribution": "log_uniform", "min": 1e-3, "max": 1.0, "step": 0.1}, "step", "no step"),
        ({"distribution": "lognormal", "min": 1e-3, "max": 1.0}, "distribution", "log_uniform"),
    ],
)
def test_bad_aliases_get_one_line_naming_the_field(spec: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_dict({"p": spec})
    message = str(info.value)
    assert f"parameters.p.{field}" in message and words in message and "\n" not in message, message


def test_random_search_over_a_small_integer_log_range_favours_small_values() -> None:
    # 128 points: random search enumerates them (each once before any repeats), log-weighted
    space = SearchSpace.from_dict(
        {"layers": {"distribution": "int_log_uniform", "min": 1, "max": 64}, "act": {"choices": ["a", "b"]}}
    )
    optimizer = make_optimizer(OptimizerSpec(type="random", seed=0), space, goal="maximize")
    first = optimizer.suggest([], 32)
    assert len({(d["layers"], d["act"]) for d in first}) == 32  # still no repeats
    assert sum(d["layers"] <= 8 for d in first) >= 10  # uniform over 1..64 would give about 4
