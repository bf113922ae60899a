"""docs/backends.md, "Plug-in door": each fenced block of the section runs, in order, in a scratch directory.

The rules are docs/recipes.md's (tests/test_docs_recipes.py): a block preceded by
`<!-- file: NAME -->` is written to NAME, other ```python blocks run as scripts, and each
`$ ...` line of a ```console block runs with the lines after it expected in its output.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from test_docs_recipes import BLOCK, _commands, _env, _run

DOC = REPO / "docs" / "backends.md"


def _section_blocks() -> list[tuple[str | None, str, str]]:
    text = DOC.read_text()
    start = text.index("\n## Plug-in door\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return [(m["file"], m["lang"], m["body"]) for m in BLOCK.finditer(section)]


@pytest.mark.slow
def test_the_plug_in_door_examples_run(tmp_path: Path) -> None:
    blocks = _section_blocks()
    assert [lang for _, lang, _ in blocks].count("console") == 1 and len(blocks) >= 7
    for file, lang, body in blocks:
        assert lang in ("console", "python", "yaml"), f"untested block kind {lang!r}: {body[:60]!r}"
        if file:
            (tmp_path / file).write_text(body)
        elif lang == "python":
            proc = subprocess.run(
                [sys.executable, "-c", body], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True
            )
            assert proc.returncode == 0, f"{body}\n{proc.stderr}"
        else:
            assert lang == "console", "a yaml block needs a <!-- file: NAME --> line"
            for argv, expected in _commands(body):
                proc = _run(argv, tmp_path)
                assert proc.returncode == 0, f"{shlex.join(argv)}: exit {proc.returncode}\n{proc.stderr}"
                for line in expected:
                    assert line in proc.stdout + proc.stderr, f"{shlex.join(argv)}: {line!r} not in\n{proc}"
