"""The live view as a person sees it in an 80x24 terminal: the quickstart run in a pseudo-terminal
of that size, its output drawn by a terminal emulator (pyte), the screen checked as it changes.

At every moment the progress line shows, every running run has its row, and no row wraps;
piped, the same sweep prints one line per event.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest
import yaml

from conftest import REPO, cli

pytestmark = pytest.mark.slow

COLUMNS, LINES = 80, 24
ROW = re.compile(r"^\s*quickstart_trial_\d{4}\b")
PROGRESS = re.compile(r"(\d+)/8 trials finished, (\d+) running")
RUNNING = ("IN TRAINING", "IN EVAL", "TRAINED")


def _screens(
    tmp_path: Path, spec: Path = REPO / "examples" / "quickstart" / "sweep.yaml"
) -> tuple[list[list[str]], int]:
    """Every distinct screen a sweep (the quickstart by default) drew in an 80x24 terminal; its exit code."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec)],
        cwd=tmp_path,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    screen = pyte.Screen(COLUMNS, LINES)
    stream = pyte.ByteStream(screen)
    screens: list[list[str]] = []
    drawing = False  # bytes fed since the last screen was taken
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.05)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            stream.feed(data)
            drawing = True
            continue
        # The terminal has been quiet for 50 ms: a whole frame is drawn. (A screen taken between
        # two reads of one frame would show it half redrawn, which no person sees.)
        if drawing:
            shown = list(screen.display)
            if not screens or shown != screens[-1]:
                screens.append(shown)
            drawing = False
        if proc.poll() is not None:
            break
    if drawing:
        screens.append(list(screen.display))
    os.close(leader)
    return screens, proc.wait(timeout=60)


def test_the_live_view_fits_an_80_by_24_terminal(tmp_path: Path) -> None:
    screens, code = _screens(tmp_path)
    assert code == 0
    live = [screen for screen in screens if any(PROGRESS.search(line) for line in screen)]
    assert len(live) >= 3, screens[-1]
    running_seen = 0
    for screen in live:
        (progress,) = [PROGRESS.search(line) for line in screen if PROGRESS.search(line)]
        assert progress is not None
        running = int(progress.group(2))
        rows = [line for line in screen if ROW.match(line)]
        # no row wraps: every line under the table's header rule is one run's whole row, each
        # run has one, and the parameters (the last column) end within the screen
        rule = next(i for i, line in enumerate(screen) if line.strip().startswith("───"))
        after = screen[rule + 1 + len(rows)] if rule + 1 + len(rows) < LINES else ""
        assert screen[rule + 1 : rule + 1 + len(rows)] == rows and not after.strip(), screen
        assert len({line.split()[0] for line in rows}) == len(rows), screen
        shown_running = sum(
            ("IN TRAINING" in line or "IN EVAL" in line or "TRAINED" in line) for line in rows
        )
        assert shown_running >= min(running, LINES - 6), screen
        running_seen = max(running_seen, running)
    assert running_seen > 0  # the checks above saw runs running
    assert "best trial: quickstart_trial_" in "\n".join(screens[-1])


def test_piped_output_is_one_line_per_event(tmp_path: Path) -> None:
    result = cli("run", str(REPO / "examples" / "quickstart" / "sweep.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = [line for line in result.stderr.splitlines() if line.startswith("quickstart_trial_")]
    completed = [line for line in events if " COMPLETED score=" in line]
    assert len(completed) == 8, result.stderr
    assert all(re.search(r"\(\d/8 trials finished\)$", line) for line in events), events
    assert "━" not in result.stderr and "┃" not in result.stderr  # no table, no bar


def test_parameter_values_are_drawn_as_written(tmp_path: Path) -> None:
    """A value that reads as rich markup (`[/]`) is text: it once crashed the live view."""
    spec = yaml.safe_load((REPO / "examples" / "quickstart" / "sweep.yaml").read_text())
    for name in ("train.py", "eval.py", "data.py"):
        (tmp_path / name).write_text((REPO / "examples" / "quickstart" / name).read_text())
    spec["parameters"]["note"] = {"distribution": "categorical", "choices": ["[/]", "[bold]x[/bold]"]}
    spec["scheduler"]["max_trials"] = 4
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    screens, code = _screens(tmp_path, tmp_path / "sweep.yaml")
    assert code == 0, screens[-1] if screens else "nothing drawn"
    drawn = "\n".join("\n".join(screen) for screen in screens)
    assert "note=[/]" in drawn or "note=[bold]x[/bold]" in drawn, screens[-1]
    assert re.search(r"note = (\[/\]|\[bold\]x\[/bold\])", "\n".join(screens[-1])), screens[-1]
