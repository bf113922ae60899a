"""The command line as a new user reads it: help screens, messages, exit codes (issue 15)."""

from __future__ import annotations

from pathlib import Path

from conftest import cli


def _line(text: str, start: str) -> str:
    """The first help line whose text (inside the panel's border) starts with `start`."""
    for line in text.splitlines():
        if line.strip("│ ").startswith(start):
            return line
    raise AssertionError(f"no line starting with {start!r} in:\n{text}")


def test_help_shows_placeholders_only_where_a_value_is_taken(tmp_path: Path) -> None:
    top = cli("--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert top.returncode == 0, top.stderr
    for command in ("exec", "run", "status", "best", "logs", "cancel"):
        _line(top.stdout, command + " ")
    assert "<" not in _line(top.stdout, "--help") and "<" not in _line(top.stdout, "--version")

    run = cli("run", "--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    assert "sweepwise run [OPTIONS] TARGET [WORDS]..." in run.stdout
    for flag in ("--quiet", "--help-recipe", "--help"):
        assert "<" not in _line(run.stdout, flag), flag
    assert "{" not in run.stdout and "<list[str]>" not in run.stdout and "<str>" not in run.stdout
    store = _line(run.stdout, "--store")
    assert "URL" in store and "[default: $SWEEPWISE_STORE or ./sweepwise.db]" in store

    logs = cli("logs", "--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert "[default: train]" in _line(logs.stdout, "--job")


def test_version(tmp_path: Path) -> None:
    result = cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "sweepwise 0.1.0\n"
