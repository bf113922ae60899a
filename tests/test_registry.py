"""The plug-in door: one registry style for dispatchers, schedulers, optimizers and stores.

Entry points are real: a distribution written into tmp_path (a `*.dist-info` with
`entry_points.txt`, and its modules) is put on `sys.path`, or on `PYTHONPATH` of a real
`sweepwise` process, exactly as an installed package would be.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import cli
from plugin_helpers import write_distribution
from sweepwise.core.errors import ConfigError
from sweepwise.core.registry import Registry
from sweepwise.dispatchers import DISPATCHERS, available_dispatchers, make_dispatcher, register_dispatcher
from sweepwise.optimizers import OPTIMIZERS, Goal, OptimizerSpec, make_optimizer, register_optimizer
from sweepwise.schedulers import SCHEDULERS, register_scheduler, scheduler_classes
from sweepwise.schedulers.base import TrainAndEvalConfig
from sweepwise.space import SearchSpace
from sweepwise.stores.location import STORES, open_store, register_store

DOOR_PLUGIN = textwrap.dedent(
    '''
    """A user's package adding one part of each kind through entry points."""

    from pathlib import Path

    from sweepwise.optimizers.random import RandomOptimizer
    from sweepwise.stores.sql import SQLStore


    class DoorDispatcher:
        def __init__(self, runs_root, experiment, *, incarnation=None, colour="blue"):
            self.built_with = (Path(runs_root), experiment, incarnation, colour)

        def dispatch(self, job):
            return job.run_id

        def poll(self):
            return []

        def cancel(self, dispatch_id):
            pass


    def door_optimizer(spec, space, *, goal):
        return RandomOptimizer(space, seed=0)


    def open_door_store(url):
        """`doorstore://NAME` is a SQLite file NAME.db in the directory of $DOOR_STORES."""
        import os

        directory = Path(os.environ["DOOR_STORES"])
        with open(directory / "opened.txt", "a") as handle:
            handle.write(url + "\\n")
        return SQLStore(f"sqlite:///{directory / url.split('://', 1)[1]}.db")
    '''
)

DOOR_SCHEDULER = textwrap.dedent(
    '''
    """A scheduler module: an entry point names the module, which registers it with its config."""

    from sweepwise.schedulers import register_scheduler
    from sweepwise.schedulers.base import TrainAndEvalConfig
    from sweepwise.schedulers.train_and_eval import TrainAndEvalScheduler


    class DoorConfig(TrainAndEvalConfig):
        pass


    @register_scheduler("door_sched", DoorConfig)
    class DoorScheduler(TrainAndEvalScheduler):
        pass
    '''
)

ENTRY_POINTS = {
    "sweepwise.dispatchers": {"door": "door_plugin:DoorDispatcher", "broken": "door_missing:Nope"},
    "sweepwise.optimizers": {"door_opt": "door_plugin:door_optimizer"},
    "sweepwise.schedulers": {"door_sched": "door_scheduler", "door_class": "door_plugin:DoorDispatcher"},
    "sweepwise.stores": {"doorstore": "door_plugin:open_door_store"},
}
_PLUGIN_NAMES = (
    (DISPATCHERS, ("door", "broken")),
    (OPTIMIZERS, ("door_opt",)),
    (SCHEDULERS, ("door_sched", "door_class")),
    (STORES, ("doorstore",)),
)


def _distribution(site: Path) -> Path:
    return write_distribution(
        site, "sweepwise-door", ENTRY_POINTS, {"door_plugin": DOOR_PLUGIN, "door_scheduler": DOOR_SCHEDULER}
    )


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The door distribution on `sys.path`; its modules and registrations are gone afterwards."""
    site = _distribution(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("DOOR_STORES", str(tmp_path))
    yield site
    for registry, names in _PLUGIN_NAMES:
        for name in names:
            registry.unregister(name)
    for module in ("door_plugin", "door_scheduler"):
        sys.modules.pop(module, None)


@pytest.fixture
def restore(request: pytest.FixtureRequest) -> Iterator[Callable[[Registry[Any], str], None]]:
    """`restore(registry, name)`: the part registered as `name` now is registered again at teardown."""
    saved: list[tuple[Registry[Any], str, Any]] = []

    def remember(registry: Registry[Any], name: str) -> None:
        saved.append((registry, name, registry.find(name)))

    yield remember
    for registry, name, part in saved:
        if part is None:
            registry.unregister(name)
        else:
            registry.register(name, part, replace=True)


def test_a_name_is_taken_once_unless_replaced(restore: Callable[[Registry[Any], str], None]) -> None:
    class Mine:
        def __init__(self, runs_root: Path, experiment: str, *, incarnation: str | None = None) -> None: ...

    with pytest.raises(ValueError, match=r"dispatcher 'local' is built in \(sweepwise.dispatchers.local\)"):
        register_dispatcher("local")(Mine)
    with pytest.raises(ValueError, match="scheduler 'train_and_eval' is built in"):
        register_scheduler("train_and_eval", TrainAndEvalConfig)(Mine)
    with pytest.raises(ValueError, match="optimizer 'random' is built in"):
        register_optimizer("random")(Mine)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="store 'sqlite' is built in"):
        register_store("sqlite")(Mine)
    restore(DISPATCHERS, "local")
    register_dispatcher("local", replace=True)(Mine)
    assert isinstance(make_dispatcher("local", runs_root=Path("runs"), experiment="e"), Mine)


def test_registered_names_are_refused_to_another_definition_but_not_to_the_same(
    restore: Callable[[Registry[Any], str], None],
) -> None:
    restore(DISPATCHERS, "door_twice")

    def first(runs_root: Path, experiment: str, *, incarnation: str | None = None) -> None: ...

    register_dispatcher("door_twice")(first)
    register_dispatcher("door_twice")(first)  # the same definition again: a module reload
    with pytest.raises(ValueError, match=r"already registered by .*first; choose another name, or pass"):

        @register_dispatcher("door_twice")
        def second(runs_root: Path, experiment: str, *, incarnation: str | None = None) -> None: ...

    assert "door_twice" in available_dispatchers()


def test_unknown_names_list_the_choices_on_their_field() -> None:
    space = SearchSpace.from_dict({"x": {"distribution": "uniform", "min": 0, "max": 1}})
    checks: list[tuple[Callable[[], object], str, str]] = [
        (lambda: make_dispatcher("nope"), "dispatcher", "unknown dispatcher 'nope'; choose one of: local"),
        (lambda: scheduler_classes("nope"), "scheduler.type", "unknown scheduler 'nope'; choose one of: "),
        (
            lambda: make_optimizer(OptimizerSpec(type="nope"), space, goal=Goal.MAXIMIZE),
            "optimizer.type",
            "unknown optimizer 'nope'; choose one of: ax, grid",
        ),
        (
            lambda: STORES.get("nope"),
            "store",
            "unknown store 'nope'; choose one of: mysql, postgresql, sqlite, wandb",
        ),
    ]
    for call, field, message in checks:
        with pytest.raises(ConfigError) as info:
            call()
        assert info.value.field == field and message in info.value.message


def test_entry_points_are_listed_without_loading_and_loaded_on_lookup(installed: Path) -> None:
    assert {"door", "broken"} <= set(DISPATCHERS.names())
    assert "door_opt" in OPTIMIZERS.names() and "door_sched" in SCHEDULERS.names()
    assert "doorstore" in STORES.names()
    assert "door_plugin" not in sys.modules  # listing loads nothing
    dispatcher = make_dispatcher(
        "door", runs_root=Path("runs"), experiment="e", incarnation="i1", colour="red"
    )
    assert dispatcher.built_with == (Path("runs"), "e", "i1", "red")  # type: ignore[attr-defined]
    assert "door_plugin" in sys.modules
    space = SearchSpace.from_dict({"x": {"distribution": "uniform", "min": 0, "max": 1}})
    optimizer = make_optimizer(OptimizerSpec(type="door_opt"), space)
    assert type(optimizer).__name__ == "RandomOptimizer"
    config_cls, scheduler_cls = scheduler_classes("DOOR_SCHED")  # case-insensitive, as built-ins are
    assert (config_cls.__name__, scheduler_cls.__name__) == ("DoorConfig", "DoorScheduler")
    store = open_store("doorstore://plugged")
    assert store.url.endswith("plugged.db")
    assert (installed.parent / "opened.txt").read_text() == "doorstore://plugged\n"


def test_a_broken_entry_point_is_one_config_error_naming_it(installed: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_dispatcher("broken")
    assert info.value.field == "dispatcher"
    assert (
        "entry point 'door_missing:Nope' of group sweepwise.dispatchers failed to load" in info.value.message
    )
    with pytest.raises(ConfigError) as info:
        scheduler_classes("door_class")
    assert "point it at the module that registers the scheduler" in info.value.message


def _door_env(site: Path, stores: Path) -> dict[str, str]:
    return {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "DOOR_STORES": str(stores),
    }


def test_help_lists_the_parts_installed_plug_ins_add(tmp_path: Path) -> None:
    site = _distribution(tmp_path / "site")
    result = cli("--help", cwd=tmp_path, env={**_door_env(site, tmp_path), "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    built_in = ["local", "ray", "simulated", "skypilot", "slurm"]
    assert f"Dispatchers: {', '.join(sorted(['broken', 'door', *built_in]))}." in text
    assert (
        "Schedulers: async_capped, batched_synced, door_class, door_sched, grid_search, train_and_eval."
        in text
    )
    assert "Optimizers: ax, door_opt, grid, optuna, protein, random, sobol." in text
    assert "Stores (URL schemes): doorstore, mysql, postgresql, sqlite, wandb." in text


@pytest.mark.slow  # a whole sweep; the entry points themselves are checked above, in the fast subset
def test_a_store_url_reaches_a_plug_in_store(tmp_path: Path, make_sweep: Callable[..., Path]) -> None:
    site = _distribution(tmp_path / "site")
    env = _door_env(site, tmp_path)
    spec = make_sweep(
        name="plugged",
        dispatcher="simulated",
        scheduler={"type": "train_and_eval", "max_trials": 2},
        parameters={},
    )
    result = cli("run", str(spec), "--store", "doorstore://door", "-q", cwd=tmp_path, env=env)
    assert result.returncode in (0, 1), result.stderr  # virtual jobs report no score: the sweep still ends
    status = cli("status", "plugged", "--json", "--store", "doorstore://door", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert len(json.loads(status.stdout)["runs"]) == 2
    assert (tmp_path / "door.db").is_file() and not (tmp_path / "sweepwise.db").exists()
    opened = (tmp_path / "opened.txt").read_text().split()
    assert opened and set(opened) == {"doorstore://door"}
