"""Public names: every module's `__all__` names what the module defines (ruff's RUF022 keeps it sorted)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import sweepwise

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(sweepwise.__path__, "sweepwise.")
    if ".migrations" not in name and not name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_all_resolves_without_duplicates(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    for member in exported:
        assert getattr(module, member, None) is not None, f"{name}.{member}"


def test_top_level_exports_load_lazily() -> None:
    assert sweepwise.JobStatus.COMPLETED.value == "COMPLETED"
    assert callable(sweepwise.report) and callable(sweepwise.report_result)
