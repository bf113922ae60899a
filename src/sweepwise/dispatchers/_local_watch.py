"""The local dispatcher's bookkeeping for one job: its supervisor, its liveness, its events.

A `Watch` holds what the dispatcher knows about one job (the supervisor's pid and
start time, whether we started it, what was last read from its files) and turns what
the job's files say into `JobEvent`s. `ExitSelector` keeps one pidfd per watched
supervisor (or, for a job under another controller's job host, per job) and the job
host's reply pipe, so that waiting wakes as soon as a job has ended.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepwise.core.models import JobEvent, JobTypes
from sweepwise.dispatchers._job_files import JobFiles, number, timeout_error
from sweepwise.runtime import DISPATCH, STATUS
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import proc_start_time, process_alive

_CLAIM_TIMEOUT = 30.0  # a claim without a pid and without a status after this is LOST
_FALLBACK_STEP = 0.1
_ENDING_STEP = 0.01


@dataclass(slots=True)
class Watch(JobFiles):
    """What the dispatcher knows about one watched job: its files (`JobFiles`) and its processes."""

    pid: int = 0  # the supervisor's (or job host's); 0 while unknown
    pid_start: int | None = None
    proc: subprocess.Popen[bytes] | None = None  # the supervisor or job host we spawned
    forked: bool = False  # os.fork()ed by us
    hosted: bool = False  # supervised by a job host, which outlives the job
    job_pid: int | None = None  # the job's own pid, watched when another host runs it
    job_start: int | None = None
    ended: bool = False  # the job was seen to end: read its status at the next poll
    exited: bool = False
    pidfd: int | None = None

    @property
    def dispatch_id(self) -> str:
        return f"{self.run_id}:{self.job}:{self.pid}"

    def running(self) -> bool:
        """Whether the supervisor, or else the job's own process, still runs; reaps our children.

        A job outlives a supervisor or job host that dies (docs/design.md, "Liveness from
        evidence"): while its own process runs, it is running, and its files tell what it did.
        """
        if self.exited:
            return False
        if self.proc is None and not self.forked and self.pid <= 0:
            # claimed, pid never recorded: give the supervisor time to write its status
            return time.time() - self.claimed_at < _CLAIM_TIMEOUT
        if self.supervisor_alive():
            return True
        if not self.job_pid:
            status = read_status(self.path(STATUS)) or {}
            pid, start = status.get("pid"), status.get("pid_start")
            if isinstance(pid, int) and pid > 0 and status.get("state") == "running":
                self.job_pid, self.job_start = pid, (start if isinstance(start, int) else None)
        self.exited = not (self.job_pid and process_alive(self.job_pid, self.job_start))
        return not self.exited

    def supervisor_alive(self) -> bool:
        """Whether the supervisor (or job host) runs; reaps it if we started it. False while unknown."""
        if self.exited:
            return False
        if self.proc is not None:
            return self.proc.poll() is None
        if self.forked:
            try:
                return os.waitpid(self.pid, os.WNOHANG)[0] == 0
            except ChildProcessError:
                return False
        return self.pid > 0 and process_alive(self.pid, self.pid_start)

    def host_gone(self) -> None:
        """Our job host has died: watch the job's own process from now on."""
        self.proc = None
        self.exited = False
        self.ended = True

    def wake_target(self) -> tuple[int, int | None] | None:
        """The (pid, start time) whose exit means the job has ended; None if none to watch.

        A job under our own job host has none: the host's reply pipe tells when it ends.
        """
        if self.hosted:
            if self.proc is not None:
                return None
            if self.job_pid:
                return self.job_pid, self.job_start
        return (self.pid, self.pid_start) if self.pid > 0 else None

    def learn_job_pid(self, status: dict[str, Any]) -> bool:
        """Take the job's pid from its status, for a job under another process's host."""
        pid, start = status.get("pid"), status.get("pid_start")
        if not self.hosted or self.proc is not None or self.job_pid or not isinstance(pid, int) or pid <= 0:
            return False
        self.job_pid, self.job_start = pid, (start if isinstance(start, int) else None)
        return True

    def learn_pid(self, status: dict[str, Any]) -> bool:
        """Take the supervisor's pid from its status when the claim had none."""
        self.hosted = self.hosted or status.get("host") is True
        pid = status.get("supervisor_pid")
        if self.pid != 0 or not isinstance(pid, int) or pid <= 0:
            return False
        start = status.get("supervisor_start")
        self.pid, self.pid_start = pid, (start if isinstance(start, int) else None)
        return True

    def unobserved_end(self) -> JobEvent:
        """The event of a job whose supervisor and process are gone without a final status.

        Judged by the evidence it left (docs/design.md, "Liveness from evidence"): a
        result on disk means it finished; otherwise it is lost.
        """
        return self.result_end() or self.lost_event(
            f"job lost: its supervisor (pid {self.pid}) and its process ended without an exit status "
            "(killed, or the machine restarted?)"
        )


def load_watch(run_dir: Path, run_id: str, job_type: JobTypes, pid: int, attempt: int = 1) -> Watch:
    """A watch of a job started before, from its dispatch and status files."""
    watch = Watch(run_id, job_type, run_dir, time.time(), attempt, pid=pid)
    record = read_status(watch.path(DISPATCH)) or {}
    status = read_status(watch.path(STATUS)) or {}
    watch.claimed_at = number(record.get("claimed_at")) or watch.claimed_at
    watch.hosted = record.get("start_method") == "host" or status.get("host") is True
    watch.learn_job_pid(status)
    for source in (record, status):
        source_pid = source.get("supervisor_pid")
        if isinstance(source_pid, int) and source_pid > 0 and watch.pid in (0, source_pid):
            watch.pid = source_pid
            start = source.get("supervisor_start")
            watch.pid_start = start if isinstance(start, int) else watch.pid_start
    return watch


# Per process, not per dispatcher: a closed dispatcher's children must still be reaped.
UNREAPED: list[Watch] = []


class ExitSelector:
    """Pidfds of watched supervisors (or jobs) and the job host's pipe, in one epoll selector."""

    def __init__(self) -> None:
        self._selector: selectors.BaseSelector | None = None
        self._host_fd = -1

    def _ensure(self) -> selectors.BaseSelector:
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
        return self._selector

    def open(self, watch: Watch) -> None:
        """Register a pidfd for what the watch waits on, where pidfds exist and it still runs.

        A hosted job that has already ended (or whose pid was reused) is marked `ended`.
        """
        target = watch.wake_target()
        if target is None or watch.pidfd is not None or not hasattr(os, "pidfd_open"):
            return
        pid, start = target
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            watch.ended = watch.hosted  # already gone (else: liveness checks take over)
            return
        owned = watch.forked or watch.proc is not None
        if not owned and start is not None and proc_start_time(pid) != start:
            os.close(fd)  # the pid was reused: what we watched is gone
            watch.ended = watch.hosted
            return
        self._ensure().register(fd, selectors.EVENT_READ, watch)
        watch.pidfd = fd

    def close(self, watch: Watch) -> None:
        """Unregister and close the watch's pidfd, if it has one."""
        if watch.pidfd is not None:
            if self._selector is not None:
                self._selector.unregister(watch.pidfd)
            os.close(watch.pidfd)
            watch.pidfd = None

    def watch_host(self, fd: int, on_ready: Callable[[], None]) -> None:
        """Wake on the job host's pipe `fd` and call `on_ready` (replaces an earlier host's)."""
        if fd == self._host_fd:
            return
        self.unwatch_host()
        self._ensure().register(fd, selectors.EVENT_READ, on_ready)
        self._host_fd = fd

    def unwatch_host(self) -> None:
        """Stop waking on the job host's pipe (call before the pipe is closed)."""
        if self._host_fd >= 0 and self._selector is not None:
            self._selector.unregister(self._host_fd)
        self._host_fd = -1

    def wait(self, watches: Iterable[Watch], timeout: float) -> None:
        """Sleep up to `timeout` seconds; return as soon as one of `watches`' jobs has ended.

        A watch whose pidfd fires is marked `ended` (its pidfd closed); the host's
        callback marks the jobs it reports. Watches with nothing to wake on (no pidfds
        here) have their liveness checked every 0.1 s. While a job seen to end has no
        final status yet (its host is writing it), this returns within `_ENDING_STEP`.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        watches = list(watches)
        if any(watch.ended for watch in watches):
            time.sleep(min(max(0.0, timeout), _ENDING_STEP))
            return
        unobserved = [w for w in watches if w.pidfd is None and not (w.hosted and w.proc is not None)]
        while (remaining := deadline - time.monotonic()) > 0:
            if any(not watch.running() for watch in unobserved):
                return
            step = min(remaining, _FALLBACK_STEP) if unobserved else remaining
            if self._selector is not None and self._selector.get_map():
                ready = self._selector.select(step)
                for key, _ in ready:
                    if isinstance(key.data, Watch):
                        key.data.ended = True
                        self.close(key.data)
                    else:
                        key.data()
                if ready:
                    return
            else:
                time.sleep(step)

    def shutdown(self) -> None:
        """Close the selector (pidfds are closed by `close`); `open` makes a new one."""
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        self._host_fd = -1


__all__ = ["UNREAPED", "ExitSelector", "Watch", "load_watch", "number", "timeout_error"]
