"""Specs become experiments: defaults, the stored optimizer seed, overrides."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import cli
from sweepwise.app.experiment import Experiment
from sweepwise.core.errors import ConfigError

SPEC: dict[str, Any] = {
    "name": "demo",
    "train": {"cmd": ["python", "-c", "pass"]},
    "parameters": {"x": {"distribution": "uniform", "min": 0, "max": 1}},
}


def test_protein_is_the_default_and_a_seed_is_drawn_and_kept_on_resume(tmp_path: Path) -> None:
    first = Experiment.from_dict(dict(SPEC), base_dir=tmp_path)
    optimizer = first.scheduler_config.optimizer  # type: ignore[attr-defined]
    assert optimizer.type == "protein" and isinstance(optimizer.seed, int)
    stored = first.record()
    again = Experiment.from_dict(dict(SPEC), base_dir=tmp_path).resume(stored)
    assert again.scheduler_config.optimizer.seed == optimizer.seed  # type: ignore[attr-defined]
    pinned = Experiment.from_dict({**SPEC, "optimizer": {"type": "protein", "seed": 7}}, base_dir=tmp_path)
    assert pinned.resume(stored).scheduler_config.optimizer.seed == 7  # type: ignore[attr-defined]


def test_words_override_spec_and_scheduler_fields(tmp_path: Path) -> None:
    experiment = Experiment.from_dict(
        dict(SPEC),
        base_dir=tmp_path,
        words=["max_trials=5", "scheduler.batch_size=2", "max_parallel=3", "goal=minimize"],
    )
    assert experiment.scheduler_config.max_trials == 5  # type: ignore[attr-defined]
    assert experiment.scheduler_config.batch_size == 2  # type: ignore[attr-defined]
    assert experiment.spec.max_parallel == 3 and experiment.spec.goal == "minimize"


def test_optimizer_settings_are_validated_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="optimizer.acquisition_fn"):
        Experiment.from_dict(
            {**SPEC, "optimizer": {"type": "protein", "acquisition_fn": "magic"}}, base_dir=tmp_path
        )


@pytest.mark.parametrize(
    ("settings", "minimum"),
    [({"stale_after": 3}, "10"), ({"stale_after": 30, "dispatcher": {"heartbeat_interval": 20}}, "40")],
)
def test_stale_after_below_two_heartbeats_is_refused_before_anything_is_written(
    tmp_path: Path, make_sweep: Callable[..., Path], settings: dict[str, Any], minimum: str
) -> None:
    spec = make_sweep(**{key: value for key, value in settings.items() if key != "dispatcher"})
    words = [f"dispatcher.{key}={value}" for key, value in settings.get("dispatcher", {}).items()]
    result = cli("run", str(spec), *words, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: stale_after"), result.stderr
    assert f"set stale_after >= {minimum}" in lines[0]
    assert not (tmp_path / "sweepwise.db").exists() and not (tmp_path / "runs").exists()


def test_stale_after_of_two_heartbeats_runs_and_the_simulated_dispatcher_has_none(tmp_path: Path) -> None:
    Experiment.from_dict({**SPEC, "stale_after": 10}, base_dir=tmp_path)
    Experiment.from_dict({**SPEC, "stale_after": 1, "dispatcher": "simulated"}, base_dir=tmp_path)
