"""docs/recipes.md: every fenced block is run, in order, in a scratch copy of the examples.

- ```console blocks: each `$ sweepwise ...` / `$ python ...` line is run; the lines after it are
  expected in its output, and an expected line starting with `error:` means exit code 2;
- a block preceded by `<!-- file: NAME -->` is written to NAME (later blocks use it);
- other ```python blocks are run as scripts and must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, cli

DOC = REPO / "docs" / "recipes.md"
BLOCK = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)


def _blocks() -> list[tuple[str | None, str, str]]:
    return [(m["file"], m["lang"], m["body"]) for m in BLOCK.finditer(DOC.read_text())]


def _commands(body: str) -> list[tuple[list[str], list[str]]]:
    """`$ command` lines with the output lines expected after each."""
    commands: list[tuple[list[str], list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            commands.append((shlex.split(line[2:]), []))
        elif line.strip():
            assert commands, f"output before any command: {line!r}"
            commands[-1][1].append(line.strip())
    return commands


def _env(cwd: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    # cwd first (the doc's files), then the caller's path, so the code under test is what runs
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH")]))
    return env


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    if argv[0] == "sweepwise":
        return cli(*argv[1:], cwd=cwd)
    assert argv[0] == "python", f"docs commands run sweepwise or python, not {argv[0]!r}"
    return subprocess.run(
        [sys.executable, *argv[1:]], cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=300
    )


def test_every_block_is_of_a_kind_the_test_runs() -> None:
    blocks = _blocks()
    assert len(blocks) >= 10
    for file, lang, body in blocks:
        assert lang in ("console", "python", "yaml"), f"untested block kind {lang!r}: {body[:60]!r}"
        if lang == "yaml":
            assert file, "a yaml block needs a <!-- file: NAME --> line"
        if lang == "console":
            assert _commands(body), body


@pytest.mark.slow
def test_docs_recipes_run_in_order(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    for file, lang, body in _blocks():
        if file:
            (tmp_path / file).write_text(body)
        elif lang == "python":
            proc = subprocess.run(
                [sys.executable, "-c", body], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True
            )
            assert proc.returncode == 0, f"{body}\n{proc.stderr}"
        elif lang == "console":
            for argv, expected in _commands(body):
                proc = _run(argv, tmp_path)
                want = 2 if any(line.startswith("error:") for line in expected) else 0
                assert proc.returncode == want, f"{shlex.join(argv)}: exit {proc.returncode}\n{proc.stderr}"
                output = proc.stdout + proc.stderr
                for line in expected:  # a line ending in "..." stands for any line it begins
                    shown = line.removesuffix("...")
                    assert shown in output, f"{shlex.join(argv)}: {line!r} not in\n{output}"
