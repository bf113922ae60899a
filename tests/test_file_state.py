"""`FileStateStore` (seed 002; docs/stores.md, "FileStateStore"): atomic, loud about corruption, confined."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sweepwise.core.errors import StoreError
from sweepwise.core.protocols import StateStore
from sweepwise.stores import FileStateStore


def test_state_round_trips_per_experiment(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    assert isinstance(store, StateStore)
    assert store.load_state("exp") is None  # nothing saved: None, and no directory made
    store.save_state("exp", {"runs_completed": ["a", "b"], "batch": 2})
    store.save_state("other", {"batch": 7})
    assert store.load_state("exp") == {"runs_completed": ["a", "b"], "batch": 2}
    store.save_state("exp", {"batch": 3})
    assert store.load_state("exp") == {"batch": 3}
    assert FileStateStore(tmp_path / "state").load_state("other") == {"batch": 7}
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["exp.json", "other.json"]


@pytest.mark.parametrize(
    "name", ["../evil", "a/b", "..", ".", "/etc/passwd", "x\x00y", "..\\..\\w", ".hidden"]
)
def test_hostile_names_stay_inside_the_directory(tmp_path: Path, name: str) -> None:
    directory = tmp_path / "state"
    store = FileStateStore(directory)
    store.save_state(name, {"who": name})
    assert store.load_state(name) == {"who": name}
    assert store.path(name).parent == directory
    assert [p.parent for p in tmp_path.rglob("*") if p.is_file()] == [directory]
    assert not store.path(name).name.startswith(".")


def test_distinct_names_never_share_a_file(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    names = ["a/b", "a%2Fb", "a_b", "a.b", "a%2Eb"]
    assert len({store.path(n) for n in names}) == len(names)


def test_a_corrupt_or_partial_file_is_one_clear_error_naming_it(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.save_state("exp", {"batch": 1})
    path = store.path("exp")
    path.write_text('{"batch": ')  # cut short
    with pytest.raises(StoreError, match=rf"the state file {path} is corrupt .*delete it"):
        store.load_state("exp")
    path.write_text("[1, 2]")
    with pytest.raises(StoreError, match=rf"the state file {path} holds a list, not a JSON object"):
        store.load_state("exp")
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(StoreError, match=str(path)):
        store.load_state("exp")


def test_a_failed_rename_keeps_the_previous_state_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStateStore(tmp_path)
    store.save_state("exp", {"batch": 1})

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StoreError, match=r"could not save the state of 'exp' to .*exp.json: .*No space left"):
        store.save_state("exp", {"batch": 2})
    monkeypatch.undo()
    assert store.load_state("exp") == {"batch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["exp.json"]


def test_a_process_killed_between_write_and_rename_leaves_the_previous_state(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.save_state("exp", {"batch": 1})
    script = textwrap.dedent(
        f"""
        import os, signal
        from sweepwise.stores import FileStateStore
        def killed(src, dst):  # the new state is written and fsynced; the rename never happens
            assert open(src).read().startswith('{{"batch": 2')
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace = killed
        FileStateStore({str(tmp_path)!r}).save_state("exp", {{"batch": 2, "big": "x" * 100000}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert store.load_state("exp") == {"batch": 1}  # a leftover temporary is never read
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "exp.json"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".exp.json.") and leftovers[0].endswith(".tmp")
    store.save_state("exp", {"batch": 3})  # and the next save works
    assert json.loads(store.path("exp").read_text()) == {"batch": 3}


def test_values_json_cannot_hold_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    with pytest.raises(ValueError):
        store.save_state("exp", {"x": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_the_docs_example_runs(tmp_path: Path) -> None:
    """docs/stores.md, "FileStateStore": its Python block runs and prints what its comment says."""
    from conftest import REPO

    text = (REPO / "docs" / "stores.md").read_text()
    section = text[text.index("\n## FileStateStore\n") :]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "%2E%2E%2Felsewhere.json"
