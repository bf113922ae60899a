"""Acceptance: every kind of bad input is refused in one line, and nothing is written first.

A refused `run` exits 2 with one line on stderr naming the field, writes no
`sweepwise.db*` and no `runs/`, and leaves a resumed experiment's database as it was.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import cli
from sweepwise.app.cli import validate_run
from sweepwise.app.experiment import Experiment
from sweepwise.core.errors import ConfigError

FAST: dict[str, Any] = {
    "monitoring_interval": 0.2,
    "scheduler": {"type": "batched_synced", "max_trials": 1, "batch_size": 1},
}
"""A first run that finishes quickly, for the resume cases."""


def _write(text: bytes) -> Callable[[Path, Path], None]:
    def prepare(_directory: Path, spec: Path) -> None:
        spec.write_bytes(text)

    return prepare


def _append(text: str) -> Callable[[Path, Path], None]:
    def prepare(_directory: Path, spec: Path) -> None:
        spec.write_text(spec.read_text() + text)

    return prepare


def _symlink_loop(directory: Path, _spec: Path) -> None:
    os.symlink("runs", directory / "runs")


def _random_bytes_store(directory: Path, _spec: Path) -> None:
    (directory / "sweepwise.db").write_bytes(random.Random(15).randbytes(8192))


def _param(name: str, **spec: Any) -> dict[str, Any]:
    return {"parameters": {"x": {"distribution": "uniform", "min": 0, "max": 1}, name: spec}}


@dataclass(frozen=True)
class Case:
    """A bad input: the spec's changed keys (or a prepared file), words, and what the user must see."""

    id: str
    names: str  # what the one stderr line must contain: the field
    spec: dict[str, Any] = field(default_factory=dict)
    words: tuple[str, ...] = ()
    prepare: Callable[[Path, Path], None] | None = None
    first: dict[str, Any] | None = None  # run to completion first with these keys; then resume
    command: str = "run"
    code: int = 2


CASES = [
    Case("not utf-8", "UTF-8", prepare=_write(b"name: caf\xe9\nmax_parallel: 2\n")),
    Case("unclosed quote", "train.cmd", spec={"train": {"cmd": "python 'train.py"}}),
    Case(
        "int_uniform 1e23", "parameters.n.max", spec=_param("n", distribution="int_uniform", min=0, max=1e23)
    ),
    Case("monitoring_interval inf", "monitoring_interval", spec={"monitoring_interval": math.inf}),
    Case("stale_after inf", "stale_after", spec={"stale_after": math.inf}),
    Case("stale_after nan", "stale_after", spec={"stale_after": math.nan}),
    Case(
        "protein cost_penalty inf",
        "optimizer.cost_penalty",
        spec={"optimizer": {"type": "protein", "cost_penalty": math.inf}},
    ),
    Case("300-character name", "name", spec={"name": "e" * 300}),
    Case("runs_dir not creatable", "runs_dir", spec={"runs_dir": "/proc/nope"}),
    Case("dispatcher option", "dispatcher.bogus", spec={"dispatcher": {"type": "local", "bogus": 1}}),
    # pg8000: a PostgreSQL driver no dev dependency installs (SkyPilot's brings psycopg2)
    Case("missing driver", "pip install", spec={"store": "postgresql+pg8000://u@127.0.0.1:1/db"}),
    Case("runs is a symlink loop", "runs_dir", prepare=_symlink_loop),
    Case("corrupt store", "not a sweepwise store", prepare=_random_bytes_store, command="status", code=1),
    Case("not executable", "train.cmd", spec={"train": {"cmd": ["/etc/passwd"]}}),
    Case("unknown scheduler word", "scheduler.type", words=("scheduler.type=nope",)),
    Case("switched scheduler's fields", "scheduler.batch_size", words=("scheduler=async_capped",)),
    Case(
        "misspelt stopper key",
        "stopper.grace_perod: unknown field; did you mean grace_period?",
        spec={"stopper": {"type": "asha", "grace_perod": 3}},
    ),
    Case(
        "misspelt retries key",
        "retries.max_attempt: unknown field; did you mean max_attempts?",
        spec={"retries": {"max_attempt": 3}},
    ),
    Case("duplicate key", "max_parallel", prepare=_append("max_parallel: 2\n")),
    Case(
        "stopper as a list",
        "stopper: must be a name or a mapping such as {type: <name>, ...}",
        spec={"stopper": ["asha"]},
    ),
    Case(
        "min_samples on asha",
        "stopper: min_samples: only the median stopper takes it",
        spec={"stopper": {"type": "asha", "min_samples": 2}},
    ),
    Case("dispatcher as a number", "dispatcher: must be a name or a mapping", spec={"dispatcher": 3}),
    Case(
        "ordinal of ±1e308",
        "parameters.x.values: each value must lie within",
        spec=_param("x", distribution="ordinal", values=[-1e308, 1e308]),
    ),
    Case(
        "q of 5e-324",
        "parameters.x.q: gives countless values",
        spec=_param("x", distribution="uniform", min=0, max=1, q=5e-324),
    ),
    Case(
        "log int of 5000 values",
        "use a smaller max or a larger min",
        spec=_param("x", distribution="int_uniform", min=1, max=5000, log=True),
    ),
    Case(
        "bool min",
        "parameters.x.min: must be a number",
        spec=_param("x", distribution="uniform", min=True, max=3),
    ),
    Case(
        "range under 12 digits",
        "parameters.x.max: is too close to min",
        spec=_param("x", distribution="uniform", min=0.1, max=0.1000000000001),
    ),
    Case(
        "integer of 5000 digits",
        "an integer of more than 4300 digits",
        prepare=_append(f"stale_after: {'9' * 5000}\n"),
    ),
    Case("word of 5000 digits", "stopper.grace_period", words=(f"stopper.grace_period={'9' * 5000}",)),
    Case(
        "parameters of a scheduler that searches nothing", "parameters", words=("scheduler=train_and_eval",)
    ),
    Case(
        "ax categorical of 1001 choices",
        "parameters.c",
        spec={"optimizer": {"type": "ax"}, **_param("c", choices=list(range(1001)))},
    ),
    Case("bool max_parallel", "max_parallel", spec={"max_parallel": True}),
    Case(
        "bool max_trials",
        "scheduler.max_trials",
        spec={"scheduler": {"type": "async_capped", "max_trials": True}},
    ),
    Case("name with a space", "parameters", spec=_param("a b", choices=[1, 2])),
    Case("name with =", "parameters", spec=_param("a=b", choices=[1, 2])),
    Case("name like an option", "parameters", spec=_param("--evil", choices=[1, 2])),
    Case("pow2 min", "parameters.w.min", spec=_param("w", distribution="uniform_pow2", min=3, max=64)),
    Case("pow2 max", "parameters.w.max", spec=_param("w", distribution="uniform_pow2", min=4, max=100)),
    Case("huge range", "parameters.y.min", spec=_param("y", distribution="uniform", min=-1e16, max=1)),
    Case("NUL in a choice", "parameters.c.choices", spec=_param("c", choices=["a\x00b", "c"])),
    Case("newline in a choice", "parameters.c.choices", spec=_param("c", choices=["a\nb"])),
    Case(
        "resume: parameter added",
        "parameters",
        first={"optimizer": {"type": "protein"}},
        spec={"optimizer": {"type": "protein"}, **_param("y", distribution="uniform", min=0, max=1)},
    ),
    Case(
        "resume: parameter removed",
        "parameters",
        first=_param("y", distribution="uniform", min=0, max=1),
        spec={"parameters": {"x": {"distribution": "uniform", "min": 0, "max": 1}}},
    ),
    Case(
        "resume: parameter changed",
        "parameters",
        first={},
        spec={"parameters": {"x": {"distribution": "uniform", "min": 0, "max": 2}}},
    ),
    Case(
        "resume: scheduler type",
        "scheduler.type",
        first={},
        spec={"scheduler": {"type": "async_capped", "max_trials": 1}},
    ),
    Case("resume: train command", "train.cmd", first={}, spec={"train": {"cmd": ["python", "eval.py"]}}),
]


FAST_CASES = {
    "not utf-8",
    "unclosed quote",
    "monitoring_interval inf",
    "corrupt store",
    "unknown scheduler word",
    "name with a space",
}
"""One case of each kind (a prepared file, a spec field, a word, a store) for the fast subset, as each
runs `sweepwise`; the full suite runs them all. The resume cases run a sweep first: the fast subset
checks resuming in-process (`Experiment.check_resume`, tests/test_staged_dispatcher.py)."""


def _store_files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.glob("sweepwise.db*")}


@pytest.mark.parametrize(
    "case",
    [case if case.id in FAST_CASES else pytest.param(case, marks=pytest.mark.slow) for case in CASES],
    ids=[case.id for case in CASES],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, make_sweep: Callable[..., Path], case: Case
) -> None:
    before: dict[str, bytes] = {}
    if case.first is not None:
        first = cli("run", str(make_sweep(**{**FAST, **case.first})), "--quiet", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        before = _store_files(tmp_path)
        spec = make_sweep(**{**FAST, **case.first, **case.spec})
    else:
        spec = make_sweep(**case.spec)
    if case.prepare is not None:
        case.prepare(tmp_path, spec)
        before = _store_files(tmp_path)
    args = ["status"] if case.command == "status" else ["run", str(spec), *case.words]
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == case.code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert case.names in lines[0] and "Traceback" not in result.stderr
    if case.first is None:
        assert not (tmp_path / "runs").exists()
    assert _store_files(tmp_path).get("sweepwise.db") == before.get("sweepwise.db")
    if not before:
        assert not list(tmp_path.glob("sweepwise.db*"))


@pytest.mark.slow
def test_a_safe_change_on_resume_is_accepted_and_said(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    first = cli("run", str(make_sweep(**FAST)), "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = cli("run", str(make_sweep(**FAST, max_parallel=2)), "max_trials=2", "--quiet", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    notes = [line for line in again.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "max_parallel (3 -> 2)" in notes[0] and "max_trials (1 -> 2)" in notes[0]


def test_a_scheduler_word_switches_the_type_and_keeps_the_fields(tmp_path: Path) -> None:
    spec = {
        "name": "switch",
        "scheduler": {"type": "batched_synced", "max_trials": 7},
        "optimizer": {"type": "random", "seed": 1},
        "train": {"cmd": ["python", "-c", "pass"]},
        "parameters": {"x": {"distribution": "uniform", "min": 0, "max": 1}},
    }
    experiment = Experiment.from_dict(spec, base_dir=tmp_path, words=["scheduler=async_capped"])
    assert experiment.spec.scheduler.type == "async_capped"
    assert type(experiment.scheduler_config).__name__ == "AsyncCappedSchedulerConfig"
    assert experiment.scheduler_config.max_trials == 7  # type: ignore[attr-defined]


def test_a_stopper_word_switches_the_type_and_keeps_the_settings(tmp_path: Path) -> None:
    spec = {
        "name": "switch",
        "stopper": {"type": "asha", "grace_period": 2, "max_t": 9},
        "train": {"cmd": ["python", "-c", "pass"]},
        "parameters": {"x": {"distribution": "uniform", "min": 0, "max": 1}},
    }
    median = Experiment.from_dict(spec, base_dir=tmp_path, words=["stopper=median"]).spec.stopper
    assert (median.type, median.grace_period, median.max_t) == ("median", 2, 9)
    short = {**spec, "stopper": "asha"}  # the name alone, then a setting by a word
    asha = Experiment.from_dict(short, base_dir=tmp_path, words=["stopper.grace_period=3"]).spec.stopper
    assert (asha.type, asha.grace_period) == ("asha", 3)


# --- fuzz: random mutations of a good spec either validate or raise ConfigError ------------------

_ALPHABET = "abcxyz019 _-.=:'\"\x00\n$;"


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["int", "float", "str", "bool", "null", "list", "dict", "huge", "inf", "nan"])
    if kind in ("list", "dict") and depth > 1:
        kind = "str"
    match kind:
        case "int":
            return rng.randint(-5, 10)
        case "float":
            return rng.uniform(-10, 10)
        case "str":
            return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 8)))
        case "bool":
            return rng.random() < 0.5
        case "null":
            return None
        case "list":
            return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        case "dict":
            return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 3))}
        case "huge":
            return rng.choice([10**30, -(10**30), 1e300])
        case "inf":
            return rng.choice([math.inf, -math.inf])
    return math.nan


def _mappings(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for value in node.values():
        if isinstance(value, dict):
            found.extend(_mappings(value))
    return found


def _mutate(spec: dict[str, Any], rng: random.Random) -> None:
    target = rng.choice(_mappings(spec))
    keys = list(target)
    action = rng.choice(["delete", "set", "rename", "add"]) if keys else "add"
    if action == "delete":
        del target[rng.choice(keys)]
    elif action == "set":
        target[rng.choice(keys)] = _random_value(rng)
    elif action == "rename":
        key = rng.choice(keys)
        target[key + rng.choice(["_", "s", "x"])] = target.pop(key)
    else:
        target[rng.choice(["junk", "x", "type", "cmd", "min"]) + str(rng.randint(0, 2))] = _random_value(rng)


@pytest.mark.slow
def test_random_mutations_validate_or_raise_config_error_and_write_nothing(
    tmp_path: Path, make_sweep: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_sweep()
    good = yaml.safe_load(path.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWEEPWISE_STORE", raising=False)
    entries = set(tmp_path.iterdir())
    rng = random.Random(15)
    outcomes = {"valid": 0, "refused": 0}
    for i in range(1000):
        spec = yaml.safe_load(yaml.safe_dump(good))
        for _ in range(rng.randint(1, 3)):
            _mutate(spec, rng)
        path.write_text(yaml.safe_dump(spec))
        try:
            validate_run(str(path), [])
        except ConfigError:
            outcomes["refused"] += 1
        else:
            outcomes["valid"] += 1
        assert set(tmp_path.iterdir()) == entries, (i, spec)
    assert outcomes["valid"] > 0 and outcomes["refused"] > 0, outcomes
