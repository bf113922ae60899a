"""Cancelling a local job: SIGTERM, then SIGKILL to the job's process group after a grace period.

A per-job supervisor is signalled when it runs (it forwards SIGTERM to the job's group
and marks the job cancelled); a job whose supervisor is gone is signalled directly. A
job under a job host gets a `<job>.cancel` file first (the host then records it as
cancelled, or never starts it), then its group is signalled directly.

A `Cancellation` never blocks: it takes each step once it is due, each time `advance` is
called, so a dispatcher stopping many jobs that ignore SIGTERM waits one grace period for
all of them, between its polls, not one after another (docs/design.md, "Cancelling a job");
`finish` drives one to its end, for callers that must know the job is gone.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from sweepwise.dispatchers._job_files import mark_cancelled
from sweepwise.dispatchers._local_watch import Watch
from sweepwise.runtime import STATUS
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import RunState, process_alive, signal_group

_SUPERVISOR_EXIT_WAIT = 5.0  # after the job is SIGKILLed, time for the final status
_STARTING_STEP = 0.02  # between reads of the status of a job that is being started
_ENDING_STEP = 0.05  # between checks of a signalled job

LearnPid = Callable[[Watch, dict[str, Any]], object]


def _job_identity(status: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """The job's (pid, start time) from its status, None where unknown."""
    if status is None:
        return None, None
    pid, start = status.get("pid"), status.get("pid_start")
    return (pid if isinstance(pid, int) else None), (start if isinstance(start, int) else None)


def _kill(pid: int, signum: int) -> None:
    if pid <= 0:  # never the caller's own process group
        return
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _exited(status: dict[str, Any] | None) -> bool:
    return status is not None and status.get("state") == RunState.EXITED


class Cancellation:
    """One job being stopped: SIGTERM now, SIGKILL once `grace_period` has passed.

    Args:
        watch: the job's watch.
        grace_period: seconds from the cancel to SIGKILL.
        learn_pid: called with the watch and the job's status, to take the supervisor's
            pid from the status when the watch has none.
    """

    def __init__(self, watch: Watch, grace_period: float, learn_pid: LearnPid) -> None:
        self.watch = watch
        self._learn_pid = learn_pid
        now = time.monotonic()
        self._deadline = now + grace_period  # SIGKILL from here on
        self._until = 0.0  # the supervisor's (or host's) last moment to record the end
        self._job: tuple[int | None, int | None] = (None, None)
        self._supervised = False
        self._step: Callable[[float], bool] = self._start_hosted if watch.hosted else self._start
        self.done = False

    def advance(self) -> bool:
        """Take the steps that are due; True once there is nothing left to do (the job is gone)."""
        while not self.done:
            step = self._step
            self.done = step(time.monotonic())
            if self._step is step:  # waiting: nothing more is due now
                break
        return self.done

    def next_step_in(self) -> float:
        """Seconds until `advance` must be called again (the job's end may come sooner)."""
        if self.done:
            return 0.0
        if self._step in (self._start, self._start_hosted, self._settle_hosted):
            return _STARTING_STEP
        if self._step in (self._terminating, self._terminating_hosted):
            return max(0.0, self._deadline - time.monotonic())
        return _ENDING_STEP

    def finish(self) -> None:
        """Advance until done, checking the job every few hundredths of a second: it is gone on return."""
        while not self.advance():
            time.sleep(min(self.next_step_in(), _ENDING_STEP))

    # -- a job under its own supervisor (or without one) ------------------------------

    def _start(self, now: float) -> bool:
        watch = self.watch
        status = read_status(watch.path(STATUS))
        if status is None and watch.running() and now < self._deadline:
            return False  # the supervisor is starting: SIGTERM once it can forward it
        if status is not None:
            if _exited(status):
                return True
            self._learn_pid(watch, status)
        self._job = _job_identity(status)
        self._supervised = watch.supervisor_alive()  # else it died, and its job is signalled directly
        if self._supervised:
            _kill(watch.pid, signal.SIGTERM)  # the supervisor is alone in its group
        elif process_alive(*self._job):
            signal_group(self._job[0] or 0, signal.SIGTERM)
        else:
            return True
        self._step = self._terminating
        return False

    def _alive(self) -> bool:
        return self.watch.running() if self._supervised else process_alive(*self._job)

    def _terminating(self, now: float) -> bool:
        if not self._alive():
            return True
        if now < self._deadline:
            return False
        if process_alive(*self._job):
            signal_group(self._job[0] or 0, signal.SIGKILL)
        if not self._supervised:
            return True
        self._until = now + _SUPERVISOR_EXIT_WAIT
        self._step = self._killed
        return False

    def _killed(self, now: float) -> bool:
        if not self.watch.running():
            return True
        if now < self._until:
            return False
        _kill(self.watch.pid, signal.SIGKILL)
        return True

    # -- a job under a job host -----------------------------------------------------------

    def _start_hosted(self, now: float) -> bool:
        if _exited(read_status(self.watch.path(STATUS))):
            return True
        mark_cancelled(self.watch.run_dir, self.watch.job)
        self._step = self._settle_hosted
        return False

    def _settle_hosted(self, now: float) -> bool:
        """Wait while the host has the job but has not started it; then signal its group."""
        status = read_status(self.watch.path(STATUS))
        settled = _exited(status) or _job_identity(status)[0] is not None
        if not settled and self.watch.running() and now < self._deadline:
            return False
        self._job = _job_identity(status)
        if process_alive(*self._job):
            signal_group(self._job[0] or 0, signal.SIGTERM)
        self._step = self._terminating_hosted
        return False

    def _terminating_hosted(self, now: float) -> bool:
        if process_alive(*self._job):
            if now < self._deadline:
                return False
            signal_group(self._job[0] or 0, signal.SIGKILL)
        self._until = now + _SUPERVISOR_EXIT_WAIT
        self._step = self._recorded_hosted
        return False

    def _recorded_hosted(self, now: float) -> bool:
        """Done once the host has written the final status (or is gone, or took too long)."""
        if not self.watch.running() or now >= self._until:
            return True
        return _exited(read_status(self.watch.path(STATUS)))


__all__ = ["Cancellation"]
