"""The benchmarks run end to end (the orchestration one in its quick mode) and print their tables.

Only that it runs and what it prints are checked: its figures are the benchmark's to
report, not the tests' to assert (times vary with the machine).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _table(script: str, *args: str) -> list[str]:
    """Run `benchmarks/<script>` with `args`; the lines of the table it prints."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if line.startswith("| ")]


def test_orchestration_benchmark_prints_every_row() -> None:
    table = _table("orchestration.py", "--quick", "--no-ray")
    sections = [line.split(" | ")[0].removeprefix("| ") for line in table[2:]]
    assert table[0] == "| section | what | figure |"
    assert sections.count("overhead") >= 1 and sections.count("processes") == 3
    assert any("controller RSS" in line for line in table) and any(
        "status big --json" in line for line in table
    )


def test_cancel_benchmark_prints_its_row() -> None:
    table = _table("cancels.py", "--jobs", "2", "--grace", "0.5")
    assert table[0].startswith("| jobs ignoring SIGTERM |") and table[2].startswith("| 2 | 0.5 s |")
