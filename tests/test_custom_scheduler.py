"""A scheduler registered from outside the package runs from a YAML spec (`imports:`) and from a recipe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import cli, status_json

PKG = Path(__file__).resolve().parent / "custom_scheduler_pkg"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(PKG, tmp_path / PKG.name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _spec(workdir: Path, **extra: object) -> Path:
    spec = {
        "name": "custom_yaml",
        "monitoring_interval": 1,
        "scheduler": {"type": "every_other", "max_trials": 4, "recipe_module": "custom_scheduler_pkg.jobs"},
        **extra,
    }
    path = workdir / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _xs_and_scores(workdir: Path, experiment: str) -> list[tuple[float, float]]:
    status = status_json(workdir, experiment)
    assert [row["status"] for row in status["runs"]] == ["completed"] * len(status["runs"])
    return [(row["suggestion"]["x"], row["score"]) for row in status["runs"]]


@pytest.mark.slow
def test_yaml_spec_imports_the_module_that_registers_the_scheduler(workdir: Path) -> None:
    spec = _spec(workdir, imports=["custom_scheduler_pkg.every_other"])
    result = cli("run", str(spec), "high=0.5", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert _xs_and_scores(workdir, "custom_yaml") == [(0.25, 2.5), (0.5, 5.0), (0.25, 2.5), (0.5, 5.0)]
    record = json.loads((workdir / "runs" / "custom_yaml" / "adaptive_config.json").read_text())
    assert record["spec"]["imports"] == ["custom_scheduler_pkg.every_other"]
    assert record["scheduler_config"]["high"] == 0.5


@pytest.mark.slow
def test_an_imports_word_imports_the_module_as_the_spec_key_does(workdir: Path) -> None:
    result = cli("run", str(_spec(workdir)), "imports=[custom_scheduler_pkg.every_other]", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert len(_xs_and_scores(workdir, "custom_yaml")) == 4
    record = json.loads((workdir / "runs" / "custom_yaml" / "adaptive_config.json").read_text())
    assert record["spec"]["imports"] == ["custom_scheduler_pkg.every_other"]


def test_without_imports_the_scheduler_is_unknown(workdir: Path) -> None:
    result = cli("run", str(_spec(workdir)), cwd=workdir)
    assert result.returncode == 2
    assert "scheduler.type: unknown scheduler 'every_other'" in result.stderr
    bad = cli("run", str(_spec(workdir, imports=["custom_scheduler_pkg.nope"])), cwd=workdir)
    assert bad.returncode == 2
    assert "imports[0]: cannot import module 'custom_scheduler_pkg.nope'" in bad.stderr
    assert not (workdir / "sweepwise.db").exists()


@pytest.mark.slow
def test_recipe_returns_a_tool_with_the_custom_scheduler(workdir: Path) -> None:
    target = "custom_scheduler_pkg.recipes.every_other"
    help_text = cli("run", target, "--help-recipe", cwd=workdir)
    assert help_text.returncode == 0, help_text.stderr
    assert "scheduler fields (EveryOtherConfig" in help_text.stdout and "  high " in help_text.stdout
    # `low` is a parameter of the recipe; `high` a field of its custom config
    result = cli("run", target, "max_trials=3", "low=0.1", "high=0.3", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert _xs_and_scores(workdir, "every_other_recipe") == [(0.1, 1.0), (0.3, 3.0), (0.1, 1.0)]
