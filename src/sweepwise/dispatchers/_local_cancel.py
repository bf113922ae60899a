"""Cancelling a local job: SIGTERM, then SIGKILL to the job's process group after a grace period.

A per-job supervisor is signalled when it runs (it forwards SIGTERM to the job's group
and marks the job cancelled); a job whose supervisor is gone is signalled directly. A
job under a job host gets a `<job>.cancel` file first (the host then records it as
cancelled, or never starts it), then its group is signalled directly.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from sweepwise.dispatchers._local_watch import Watch
from sweepwise.runtime import STATUS
from sweepwise.runtime.jobhost import CANCEL
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import RunState, process_alive, signal_group, write_json_atomic

_SUPERVISOR_EXIT_WAIT = 5.0  # after the job is SIGKILLed, time for the final status


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


def cancel_watch(
    watch: Watch, *, grace_period: float, learn_pid: Callable[[Watch, dict[str, Any]], object]
) -> None:
    """Stop the watched job: SIGTERM, then SIGKILL to its process group after `grace_period`.

    Blocks up to `grace_period` (plus a few seconds if SIGKILL was needed). Returns
    quietly if the job has already ended.

    Args:
        watch: the job's watch.
        grace_period: seconds to wait after SIGTERM before SIGKILL.
        learn_pid: called with the watch and the job's status, to take the
            supervisor's pid from the status when the watch has none.
    """
    if watch.hosted:
        _cancel_hosted(watch, grace_period)
        return
    deadline = time.monotonic() + grace_period
    status = read_status(watch.path(STATUS))
    while status is None and watch.running() and time.monotonic() < deadline:
        time.sleep(0.02)  # the supervisor is starting: SIGTERM once it can forward it
        status = read_status(watch.path(STATUS))
    if status is not None:
        if status.get("state") == RunState.EXITED:
            return
        learn_pid(watch, status)
    job_pid, job_start = _job_identity(status)
    supervised = watch.pid > 0 and watch.running()
    if supervised:
        _kill(watch.pid, signal.SIGTERM)  # the supervisor is alone in its group
    elif process_alive(job_pid, job_start):
        signal_group(job_pid or 0, signal.SIGTERM)
    else:
        return

    def alive() -> bool:
        return watch.running() if supervised else process_alive(job_pid, job_start)

    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not alive():
        return
    if process_alive(job_pid, job_start):
        signal_group(job_pid or 0, signal.SIGKILL)
    until = time.monotonic() + _SUPERVISOR_EXIT_WAIT
    while supervised and watch.running() and time.monotonic() < until:
        time.sleep(0.05)
    if supervised and watch.running():
        _kill(watch.pid, signal.SIGKILL)


def _cancel_hosted(watch: Watch, grace_period: float) -> None:
    """Cancel a job under a job host: mark it, then signal its group directly."""
    status = read_status(watch.path(STATUS))
    if status is not None and status.get("state") == RunState.EXITED:
        return
    write_json_atomic(watch.path(CANCEL), {"cancelled_at": time.time()})
    deadline = time.monotonic() + grace_period

    def settled(status: dict[str, Any] | None) -> bool:
        if status is None:
            return False
        return status.get("state") == RunState.EXITED or _job_identity(status)[0] is not None

    while not settled(status) and watch.running() and time.monotonic() < deadline:
        time.sleep(0.02)  # the host has the job but has not started it yet
        status = read_status(watch.path(STATUS))
    job_pid, job_start = _job_identity(status)
    if process_alive(job_pid, job_start):
        signal_group(job_pid or 0, signal.SIGTERM)
        while process_alive(job_pid, job_start) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_alive(job_pid, job_start):
            signal_group(job_pid or 0, signal.SIGKILL)
    until = time.monotonic() + _SUPERVISOR_EXIT_WAIT
    while watch.running() and time.monotonic() < until:  # the host writes the final status
        status = read_status(watch.path(STATUS))
        if status is not None and status.get("state") == RunState.EXITED:
            return
        time.sleep(0.02)


__all__ = ["cancel_watch"]
