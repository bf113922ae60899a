"""The experiment lease: a live controller keeps it, one whose process is provably gone loses it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import cli, markers, status_json
from sweepwise.core.clock import VirtualClock
from sweepwise.core.errors import LeaseHeldError
from sweepwise.engine.lease import ExperimentLease, _owner_id, _this_process
from sweepwise.runtime.supervise import proc_start_time
from sweepwise.stores.sql import SQLStore

# Started as PID 1 of a new PID namespace: it makes the next pid there `pid`, then runs the
# controller, so the controller's pid is one that no process has on the host.
IN_CONTAINER = """
import subprocess, sys
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(int(sys.argv[1]) - 1))
sys.exit(subprocess.call(sys.argv[2:]))
"""


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = ["unshare", "--pid", "--fork", "--mount-proc", "true"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def _pid_free_on_host() -> int:
    """A pid near the top of the range that no process on this host has."""
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    return next(pid for pid in range(pid_max - 50, 300, -1) if not Path(f"/proc/{pid}").exists())


def _wait_for_training(cwd: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not markers(cwd, "train") and proc.poll() is None:
        time.sleep(0.05)
    assert markers(cwd, "train"), "the first controller started no job"


def _start_controller(cwd: Path, spec: Path, *, train_sleep: float) -> subprocess.Popen[bytes]:
    """`sweepwise run SPEC` as a real process, returned once its first training job has started."""
    controller = subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=cwd,
        env={**os.environ, "TRAIN_SLEEP": str(train_sleep)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _wait_for_training(cwd, controller)
    return controller


@pytest.mark.slow
def test_a_controller_in_another_pid_namespace_keeps_the_lease(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    assert _can_unshare(), "this test needs root and `unshare --pid` (as .ci/run has): it must not be skipped"
    spec = make_sweep("contained", scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2})
    controller = [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"]
    contained = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
        + [sys.executable, "-c", IN_CONTAINER, str(_pid_free_on_host()), *controller],
        cwd=tmp_path,
        env={**os.environ, "TRAIN_SLEEP": "600"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_training(tmp_path, contained)
        outside = cli("run", str(spec), "--quiet", cwd=tmp_path)
        assert outside.returncode == 3, outside.stderr
        assert "'contained' is already being run by" in outside.stderr
        assert contained.poll() is None  # the contained controller still runs its sweep
    finally:
        contained.kill()  # unshare's --kill-child ends the namespace, its jobs with it
        contained.wait()


def test_a_controller_whose_process_is_gone_is_taken_over_at_once(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    spec = make_sweep("orphaned", scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2})
    first = _start_controller(tmp_path, spec, train_sleep=1)
    first.send_signal(signal.SIGKILL)
    first.wait()

    again = cli("run", str(spec), "--quiet", cwd=tmp_path)  # long before the 60 s lease expires
    assert again.returncode == 0, again.stderr
    rows = status_json(tmp_path, "orphaned")["runs"]
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert sorted(Counter(markers(tmp_path, "train")).values()) == [1, 1]


def test_an_owner_in_an_older_format_keeps_the_lease_until_it_expires_and_stops_changing(
    tmp_path: Path,
) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    gone = _pid_free_on_host()
    old_owner = f"{os.uname().nodename}:{gone}:0123abcd"  # host:pid:nonce, as older versions wrote it
    assert store.acquire_lease("exp", old_owner, 60.0, now=1000.0)
    lease = ExperimentLease(store, "exp", 60.0)
    with pytest.raises(LeaseHeldError, match=f"already being run by {old_owner}"):
        lease.acquire(VirtualClock(1030.0))
    clock = VirtualClock(1061.0)
    lease.acquire(clock)  # expired, then watched for a TTL without a change: taken over
    assert clock.now() >= 1061.0 + 60.0
    assert store.lease_holder("exp")[0] == lease.owner  # type: ignore[index]
    lease.renew(clock.now(), clock.elapsed())
    assert store.lease_holder("exp") == (lease.owner, clock.now() + 60.0)

    store.release_lease("exp", lease.owner)
    assert store.acquire_lease("exp", old_owner, 60.0, now=1000.0)
    clock = VirtualClock(1060.0 + 2 * 86400.0)
    ExperimentLease(store, "exp", 60.0).acquire(clock)  # expired two days ago: taken without watching
    assert clock.now() == 1060.0 + 2 * 86400.0


def test_a_controller_stopped_on_this_machine_keeps_its_lease_and_is_named(tmp_path: Path) -> None:
    """Ctrl-Z'd past its lease's end: taking over would race it when it resumes mid-tick."""
    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    stopped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        stopped.send_signal(signal.SIGSTOP)
        me = _this_process()
        holder = _owner_id(me._replace(pid=stopped.pid, start=proc_start_time(stopped.pid)))
        assert store.acquire_lease("exp", holder, 60.0, now=1000.0)
        with pytest.raises(
            LeaseHeldError, match=rf"process {stopped.pid} on this machine, stopped: resume it"
        ):
            ExperimentLease(store, "exp", 60.0).acquire(VirtualClock(5000.0))  # long expired
        assert store.lease_holder("exp") == (holder, 1060.0)
    finally:
        stopped.kill()
        stopped.wait()


class _AheadOfTheHolder(VirtualClock):
    """This machine's clock, two hours ahead of the holder's, which renews its lease every 20 s."""

    def __init__(self, store: SQLStore, holder: str) -> None:
        super().__init__(10_000.0 + 7200.0)
        self.store, self.holder, self.renewals = store, holder, 0

    def sleep(self, seconds: float) -> None:
        before = self.now()
        super().sleep(seconds)
        if int(self.now() // 20) > int(before // 20):
            self.renewals += 1
            assert self.store.renew_lease("exp", self.holder, 60.0, now=self.now() - 7200.0)


def test_a_lease_renewed_on_a_clock_behind_this_one_is_not_taken_over(tmp_path: Path) -> None:
    """A controller on another machine, whose clock is two hours behind, keeps renewing its lease."""
    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    holder = "elsewhere:pid=4242:start=1:pidns=1:boot=other-boot:0123abcd"
    assert store.acquire_lease("exp", holder, 60.0, now=10_000.0)
    clock = _AheadOfTheHolder(store, holder)
    with pytest.raises(LeaseHeldError, match="already being run by elsewhere"):
        ExperimentLease(store, "exp", 60.0).acquire(clock)
    assert clock.renewals >= 1 and store.lease_holder("exp")[0] == holder  # type: ignore[index]


def test_a_wall_clock_set_back_does_not_hold_off_the_renewals(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'sweepwise.db'}")
    lease = ExperimentLease(store, "exp", 60.0)
    clock = VirtualClock(10_000.0)
    lease.acquire(clock)
    clock.sleep(30.0)  # the controller's own clock runs on; the wall clock was set back an hour
    lease.renew(clock.now() - 3600.0, clock.elapsed())
    assert store.lease_holder("exp") == (lease.owner, clock.now() - 3600.0 + 60.0)


SHIFT_CLOCK = """
import os, time
_shift, _time = float(os.environ["TEST_SHIFT_CLOCK"]), time.time
time.time = lambda: _time() + _shift
"""


@pytest.mark.slow
def test_a_second_controller_whose_clock_is_hours_ahead_is_refused(
    tmp_path: Path, make_sweep: Callable[..., Path]
) -> None:
    """Same machine, wall clock set two hours forward for the second controller only (a jump, or skew)."""
    spec = make_sweep("ahead", scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2})
    first = _start_controller(tmp_path, spec, train_sleep=3)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SHIFT_CLOCK)
    path = os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))
    second = cli(
        "run", str(spec), "--quiet", cwd=tmp_path, env={"PYTHONPATH": path, "TEST_SHIFT_CLOCK": "7200"}
    )
    assert second.returncode == 3, second.stderr
    assert "'ahead' is already being run by" in second.stderr
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    rows = status_json(tmp_path, "ahead")["runs"]
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert sorted(Counter(markers(tmp_path, "train")).values()) == [1, 1]
