"""tests/services.py: a missing machine service is brought up once by its script, or fails naming the fix.

The services here are stand-ins (a marker file and a script of the test's own), so these tests run
without touching the machine's SLURM, PostgreSQL or Chromium.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import services


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """A service `fake` that is there once its marker exists; its script counts its runs and makes it."""
    marker, runs, script = tmp_path / "up", tmp_path / "runs.txt", tmp_path / "bring-up"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\nsleep 0.5\ntouch {marker}\n")
    script.chmod(0o755)
    monkeypatch.setitem(services.SERVICES, "fake", (marker.exists, str(script), "the fake service is down"))
    return marker, runs, script


def test_a_missing_service_is_brought_up_once_by_its_script_across_parallel_callers(
    stand_in: tuple[Path, Path, Path], pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker, runs, _ = stand_in
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            services.ensure("fake", pytestconfig)
        except BaseException as exc:  # pytest.fail raises outside Exception
            errors.append(exc)

    callers = [threading.Thread(target=call) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert errors == []
    assert marker.exists()
    assert runs.read_text().split() == ["run"]  # one run of the script, not three


def test_a_service_already_there_runs_no_script(
    stand_in: tuple[Path, Path, Path], pytestconfig: pytest.Config
) -> None:
    marker, runs, _ = stand_in
    marker.touch()
    services.ensure("fake", pytestconfig)
    assert not runs.exists()


def _failure(uid: int, config: pytest.Config, monkeypatch: pytest.MonkeyPatch) -> str:
    """The message `ensure("fake")` fails the test with, run as user `uid`."""
    monkeypatch.setattr(os, "geteuid", lambda: uid)
    with pytest.raises(pytest.fail.Exception) as failed:
        services.ensure("fake", config)
    return str(failed.value)


def test_not_as_root_a_missing_service_fails_with_the_command_that_fixes_it(
    stand_in: tuple[Path, Path, Path], pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, runs, script = stand_in
    message = _failure(1000, pytestconfig, monkeypatch)
    assert (
        message
        == f"the fake service is down; run `sudo {script}` first (the tests run it themselves as root)"
    )
    assert not runs.exists()


def test_a_script_that_fails_fails_the_test_with_its_last_lines(
    stand_in: tuple[Path, Path, Path], pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, script = stand_in
    script.write_text("#!/bin/sh\necho 'E: Unable to locate package slurm-wlm' >&2\nexit 100\n")
    message = _failure(0, pytestconfig, monkeypatch)
    assert message == f"{script} failed (rc 100): E: Unable to locate package slurm-wlm"


def test_a_script_that_succeeds_without_the_service_fails_the_test_saying_so(
    stand_in: tuple[Path, Path, Path], pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, runs, script = stand_in
    script.write_text(f"#!/bin/sh\necho run >> {runs}\n")
    assert _failure(0, pytestconfig, monkeypatch) == f"{script} ran, but still: the fake service is down"
    assert runs.read_text().split() == ["run"]
