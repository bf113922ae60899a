"""GPU assignment: the pool's logic with fake GPU ids, and how the local dispatcher uses it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweepwise.core.errors import DispatchError
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.dispatchers.gpus import GpuPool
from sweepwise.dispatchers.local import LocalDispatcher
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import process_alive

SHOW_GPUS = (
    "import os, time\n"
    "print('GPUS=' + os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>'), flush=True)\n"
    "go = os.path.join(os.environ['SWEEPWISE_RUN_DIR'], 'go')\n"
    "deadline = time.time() + 120\n"
    "while not os.path.exists(go) and time.time() < deadline:\n"
    "    time.sleep(0.01)\n"
)


def test_acquire_and_release() -> None:
    pool = GpuPool([0, 1, 2, 3])
    assert pool.ids == ["0", "1", "2", "3"] and len(pool) == 4
    assert pool.acquire("a", 2) == ["0", "1"]
    assert pool.free == ["2", "3"]
    assert pool.acquire("b", 3) is None
    assert pool.free == ["2", "3"]  # a refused request takes nothing
    assert pool.acquire("c", 1) == ["2"]
    assert pool.acquire("a", 2) == ["0", "1"]  # idempotent for the same owner
    with pytest.raises(ValueError):
        pool.acquire("a", 1)
    with pytest.raises(ValueError):
        pool.acquire("d", 0)
    pool.release("a")
    pool.release("never-held")
    assert pool.free == ["0", "1", "3"]
    assert pool.acquire("b", 3) == ["0", "1", "3"]
    assert pool.held_by("b") == ["0", "1", "3"] and pool.free == []


def test_reserve_after_a_restart() -> None:
    pool = GpuPool(["GPU-a", "GPU-b", "GPU-c"])
    pool.reserve("run1:train", ["GPU-b", "GPU-zzz"])
    assert pool.held_by("run1:train") == ["GPU-b"]
    assert pool.acquire("run2:train", 2) == ["GPU-a", "GPU-c"]


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError):
        GpuPool([0, "0"])


@pytest.mark.parametrize(
    ("visible", "ids"),
    [
        ("1,3", ["1", "3"]),
        (" 0 , 2 ", ["0", "2"]),
        ("", []),
        ("-1", []),
        ("NoDevFiles", []),
        ("0,-1,2", ["0"]),
        ("GPU-8d0c,MIG-1f2e", ["GPU-8d0c", "MIG-1f2e"]),
    ],
)
def test_detect_from_cuda_visible_devices(
    monkeypatch: pytest.MonkeyPatch, visible: str, ids: list[str]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert GpuPool.detect().ids == ids


def test_detect_with_nvidia_smi_or_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert GpuPool.detect().ids == []
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf '0\\n1\\n'\n")
    smi.chmod(0o755)
    assert GpuPool.detect().ids == ["0", "1"]
    smi.write_text("#!/bin/sh\nexit 9\n")
    assert GpuPool.detect().ids == []


# -- with the local dispatcher ----------------------------------------------------------------


def _job(run_id: str, gpus: int) -> JobDefinition:
    return JobDefinition(run_id=run_id, cmd=["python", "-c", SHOW_GPUS], gpus=gpus)


def _gpus_seen(runs_root: Path, run_id: str) -> str:
    log = runs_root / "exp" / run_id / "train.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and "GPUS=" in log.read_text():
            return log.read_text().split("GPUS=")[1].strip()
        time.sleep(0.02)
    raise AssertionError(f"{run_id} never printed its GPUs")


def _finish(dispatcher: LocalDispatcher, runs_root: Path, run_id: str) -> list[JobEvent]:
    (runs_root / "exp" / run_id / "go").touch()
    events: list[JobEvent] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dispatcher.wait(0.2)
        events += dispatcher.poll()
        if any(e.kind is EventKind.FINISHED and e.run_id == run_id for e in events):
            return events
    raise AssertionError(f"{run_id} did not finish")


@pytest.fixture
def runs_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "runs"
    yield root
    for status_path in root.glob("*/*/*.status.json"):
        status = read_status(status_path) or {}
        pid = status.get("pid")
        if isinstance(pid, int) and process_alive(pid, status.get("pid_start")):
            os.killpg(pid, 9)


def test_dispatcher_hands_out_and_releases_gpus(runs_root: Path) -> None:
    dispatcher = LocalDispatcher(runs_root, "exp", gpu_pool=GpuPool([0, 1]), heartbeat_interval=0.2)
    dispatcher.dispatch(_job("a", 1))
    assert _gpus_seen(runs_root, "a") == "0"
    with pytest.raises(DispatchError, match="not enough free GPUs: run b needs 2, 1 of 2 are free"):
        dispatcher.dispatch(_job("b", 2))
    with pytest.raises(DispatchError, match="asks for 3 GPUs but this machine has 2"):
        dispatcher.dispatch(_job("c", 3))
    assert dispatcher.find("b", JobTypes.LAUNCH_TRAINING) is None  # a refused job leaves no trace
    _finish(dispatcher, runs_root, "a")
    dispatcher.dispatch(_job("b", 2))
    assert _gpus_seen(runs_root, "b") == "0,1"
    # A new dispatcher that reattaches knows which GPUs the running job holds.
    pool = GpuPool([0, 1, 2])
    restarted = LocalDispatcher(runs_root, "exp", gpu_pool=pool)
    dispatch_id = restarted.find("b", JobTypes.LAUNCH_TRAINING)
    assert dispatch_id is not None
    restarted.reattach(dispatch_id, "b", JobTypes.LAUNCH_TRAINING)
    assert pool.free == ["2"]
    _finish(restarted, runs_root, "b")
    assert pool.free == ["0", "1", "2"]
    dispatcher.close()
    restarted.close()


def test_no_gpus_here_runs_without_and_warns_once(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    dispatcher = LocalDispatcher(runs_root, "exp", gpu_pool=GpuPool([]), heartbeat_interval=0.2)
    with caplog.at_level(logging.WARNING, logger="sweepwise.dispatchers.local"):
        dispatcher.dispatch(_job("x", 1))
        dispatcher.dispatch(_job("y", 2))
    assert [r.getMessage() for r in caplog.records].count(
        "jobs ask for GPUs but this machine has none; they run without GPUs"
    ) == 1
    assert _gpus_seen(runs_root, "x") == "<unset>"
    for run_id in ("x", "y"):
        assert any(e.succeeded for e in _finish(dispatcher, runs_root, run_id) if e.run_id == run_id)
    dispatcher.close()
