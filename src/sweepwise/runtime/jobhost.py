"""The job host: one long-lived process that starts and supervises the local dispatcher's jobs.

A supervisor per job costs a fork of a Python process, its copy-on-write faults and its
exit — more CPU than starting a small job itself. The host instead starts every job
with `posix_spawn` (no copy of its own memory) and watches them all with pidfds in one
loop, recording each job's life in its `<job>.status.json` exactly as a supervisor
does (`sweepwise.runtime.supervise`): "starting" before the job can start, "running"
with the job's pid, a heartbeat every interval, and the exit code when it ends.

Protocol: the controller writes one JSON request per line on the host's stdin (the
fields of `fork_supervisor`, plus `key`); the host answers nothing on start and writes
`key` on a line of its stdout once that job's final status is written, which wakes
the controller. The host runs in its own session and so does each job: killing the
controller leaves both running. When its stdin closes the host takes no new jobs and
exits once the running ones have ended.

Claims: a request names its claim token (`claim_token`, a "starting" status the
dispatcher wrote beside the job's claim). The host takes the job by renaming the token
to the job's status file; when the token is gone, a restarted controller has taken the
claim over, and the host starts nothing (docs/design.md, "No duplicate start").

A final status that cannot be written (a full disk) is retried every second; the job's
key is written to stdout only once its final status is on disk.

Cancelling: a canceller writes `<job>.cancel` in the run dir, then signals the job's
process group; the host records a job that ends with that file present as cancelled
(and does not start a job whose file exists). The dispatcher that started the host
also sends it `{"cancelled": key}`; the host then SIGKILLs the job's group `kill_grace`
seconds later, should the job outlive the SIGTERM and the dispatcher (a host that gets
no such request sees the file at the job's next heartbeat). SIGTERM / SIGHUP to the
host cancel all of its jobs. When a job's main process exits, what is left of its
process group is killed before it is reaped.

Timeouts: a request's `timeout` is the seconds its job may run; past it the job's group
gets SIGTERM, then SIGKILL `kill_grace` seconds later (default 10), and its final status
says `timed_out` (docs/design.md, "The crash-safety protocol": this holds while the
controller is down).

Run as `python -m sweepwise.runtime.jobhost`. Only the standard library is imported.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import sys
import time

from sweepwise.runtime import CANCEL, job_file
from sweepwise.runtime.slices import request_short_slices
from sweepwise.runtime.supervise import (
    RunState,
    TimeLimit,
    Waker,
    accept_claim,
    mark_exited,
    mark_running,
    note_pid_start,
    proc_start_time,
    set_aside_stale_result,
    signal_group,
    write_json_atomic,
)

TYPE_CHECKING = False  # not `from typing import ...`: typing costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import FrameType
    from typing import Any


_EX_SOFTWARE = 70  # the host failed to start or finish a job


def resolve_program(program: str, env: Mapping[str, str]) -> str:
    """The file `program` names: as given when it contains a slash, else found on env's PATH.

    Raises:
        FileNotFoundError: nothing executable of that name is on the PATH.
    """
    if "/" in program:
        return program
    for directory in os.get_exec_path(env):
        candidate = os.path.join(directory, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"{program!r} is not on the PATH")


class _Job:
    """One job the host started: its request, its status and its pidfd."""

    __slots__ = ("key", "request", "status", "pid", "pidfd", "next_beat", "cancelled", "final", "limit")

    def __init__(self, request: dict[str, Any], host_pid: int, host_start: int | None) -> None:
        self.key = str(request.get("key", ""))
        self.request = request
        self.status: dict[str, Any] = {
            "job": request["job_name"],
            "supervisor_pid": host_pid,
            "supervisor_start": host_start,
            "host": True,
            "pid": None,
        }
        self.pid = 0
        self.pidfd = -1
        self.next_beat = 0.0
        self.cancelled = False
        self.final = False  # the job has ended; its final status is still to be written
        # Counted from now: the job is spawned within moments, or never.
        self.limit = TimeLimit(request.get("timeout"), request.get("kill_grace", 10.0))

    def path(self, kind: str) -> str:
        return job_file(self.request["run_dir"], self.request["job_name"], kind)

    def cancel_requested(self) -> bool:
        return self.cancelled or os.path.exists(self.path(CANCEL))

    def write_status(self) -> bool:
        """Write the status file; False when it could not be written (a full disk)."""
        try:
            write_json_atomic(self.request["status_path"], self.status)
        except OSError:
            return False  # a full disk must not end the job; the next heartbeat retries
        return True

    def accept(self) -> bool:
        """Take the job's claim (see `accept_claim`); False if it was taken over."""
        return accept_claim(self.request.get("claim_token"), self.request["status_path"], self.status)


class JobHost:
    """Starts jobs on request and records their lives; see the module docstring."""

    def __init__(self, replies_fd: int) -> None:
        self._replies_fd = replies_fd
        self._pid = os.getpid()
        self._start = proc_start_time(self._pid)
        self._jobs: dict[int, _Job] = {}  # by pidfd
        self._poller = select.poll()
        self._waker = Waker()  # a SIGTERM to the host wakes its poll: the SIGKILLs it arms are due on time
        self._poller.register(self._waker.fd, select.POLLIN)
        self._devnull = os.open(os.devnull, os.O_RDONLY)
        self._cancel_all = False
        self._environ = dict(os.environ)  # copied once: `os.environ` decodes every item it hands out
        self._unwritten: list[_Job] = []  # ended jobs whose final status could not be written yet
        self._delay = float(os.environ.get("SWEEPWISE_TEST_HOST_DELAY") or 0)  # fault tests: a slow host

    # -- starting ----------------------------------------------------------------------

    def start(self, request: dict[str, Any]) -> None:
        """Start the job `request` describes (or record why it could not start)."""
        job = _Job(request, self._pid, self._start)
        if not job.accept():
            sys.stderr.write(f"sweepwise job host: {job.key}: its claim was taken over; not started\n")
            return
        set_aside_stale_result(request["run_dir"], request["job_name"])
        if self._cancel_all or job.cancel_requested():
            job.cancelled = True
            self._finish(job, -signal.SIGTERM, started_at=time.time())
            return
        # Recorded before the job can start (the accepted token says "starting" already): a job
        # whose status cannot be written is not started, so a status always tells.
        job.status["state"] = RunState.STARTING.value
        if not job.write_status() and not request.get("claim_token"):
            self._log(request, "sweepwise job host: cannot write the job's status; not started\n")
            return
        try:
            job.pid = self._spawn(request)
        except OSError as exc:
            self._log(request, f"sweepwise: cannot start {request['argv'][0]!r}: {exc}\n")
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            self._finish(job, code, started_at=time.time())
            return
        mark_running(job.status, job.pid)
        job.write_status()
        job.next_beat = time.monotonic() + float(request["heartbeat_interval"])
        try:
            job.pidfd = os.pidfd_open(job.pid)
        except ProcessLookupError:  # cannot happen for an unreaped child, but never hang on it
            self._end(job)
            return
        self._jobs[job.pidfd] = job
        self._poller.register(job.pidfd, select.POLLIN)

    def _spawn(self, request: dict[str, Any]) -> int:
        env = {**self._environ, **request["env"]}
        argv = list(request["argv"])
        os.chdir(request["cwd"])  # the host is single-threaded and uses absolute paths
        program = resolve_program(argv[0], env)
        log = os.open(request["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            return os.posix_spawn(
                program,
                argv,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, self._devnull, 0),
                    (os.POSIX_SPAWN_DUP2, log, 1),
                    (os.POSIX_SPAWN_DUP2, log, 2),
                ],
                setsid=True,  # its own session and process group: it outlives the host
            )
        finally:
            os.close(log)

    @staticmethod
    def _log(request: dict[str, Any], line: str) -> None:
        try:
            with open(request["log_path"], "ab") as log:
                log.write(line.encode())
        except OSError:
            pass

    # -- ending ------------------------------------------------------------------------

    def _end(self, job: _Job) -> None:
        """The job's main process has exited: kill what is left of its group, reap, record."""
        if job.pidfd >= 0:
            self._poller.unregister(job.pidfd)
            self._jobs.pop(job.pidfd, None)
            os.close(job.pidfd)
            job.pidfd = -1
        # Not reaped yet, so its pid (= its process group id) cannot have been reused.
        signal_group(job.pid, signal.SIGKILL)
        try:
            _, wait_status = os.waitpid(job.pid, 0)
            code = os.waitstatus_to_exitcode(wait_status)
        except ChildProcessError:
            code = -signal.SIGKILL
        self._finish(job, code, started_at=job.status.get("started_at") or time.time())

    def _finish(self, job: _Job, code: int, *, started_at: float) -> None:
        request = job.request
        mark_exited(
            job.status,
            request["run_dir"],
            request["job_name"],
            code,
            started_at=started_at,
            cancelled=job.cancel_requested(),
            limit=job.limit,
        )
        job.final = True
        if job.write_status():
            self._reply(job.key)
        else:
            self._unwritten.append(job)  # retried every second until the disk has room

    def _reply(self, key: str) -> None:
        try:
            os.write(self._replies_fd, f"{key}\n".encode())
        except OSError:
            pass  # the controller is gone; the status file says it all

    # -- the loop ----------------------------------------------------------------------

    def _retry_final_statuses(self) -> None:
        """Write the final statuses a full disk refused before; tell the controller of each."""
        unwritten, self._unwritten = self._unwritten, []
        for job in unwritten:
            if job.write_status():
                self._reply(job.key)
            else:
                self._unwritten.append(job)

    def _beat(self) -> float:
        """Refresh due heartbeats, stop jobs past their timeout or cancelled; seconds until the next is due.

        A job whose `<job>.cancel` marker is seen at a heartbeat gets SIGKILL `kill_grace` seconds
        later, should it outlive the canceller's SIGTERM and the canceller (docs/design.md,
        "Cancelling a job").
        """
        if self._unwritten:
            self._retry_final_statuses()
        now = time.monotonic()
        soonest = 1.0 if self._unwritten else 3600.0
        for job in self._jobs.values():
            if job.next_beat <= now:
                note_pid_start(job.status)
                job.status["heartbeat_at"] = time.time()
                job.write_status()
                job.next_beat = now + float(job.request["heartbeat_interval"])
                if job.cancel_requested():
                    job.limit.cancelled(now)
            job.limit.enforce(job.pid, now)
            soonest = min(soonest, job.next_beat - now, job.limit.remaining(now))
        return max(soonest, 0.0)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM / SIGHUP: cancel every job (forwarded to each job's group, SIGKILL after the grace)."""
        self._cancel_all = True
        now = time.monotonic()
        for job in list(self._jobs.values()):
            if not job.cancelled:
                job.cancelled = True
                signal_group(job.pid, signum)
                job.limit.cancelled(now)
        self._waker.wake()

    def _cancelled(self, key: str) -> None:
        """The dispatcher cancels job `key`: SIGKILL is due `kill_grace` seconds from now.

        The dispatcher writes the job's marker and sends the SIGTERM itself; this SIGKILL stops a
        job that outlives both the SIGTERM and the dispatcher (docs/design.md, "Cancelling a job").
        """
        now = time.monotonic()
        for job in self._jobs.values():
            if job.key == key:
                job.limit.cancelled(now)

    def serve(self, requests_fd: int) -> None:
        """Take requests from `requests_fd` until it ends; return when no job runs."""
        self._poller.register(requests_fd, select.POLLIN)
        reading = True
        pending = b""
        while True:
            timeout = self._beat()  # may write the last final status a full disk held back
            if not (reading or self._jobs or self._unwritten):
                return
            for fd, _ in self._poller.poll(max(1, math.ceil(timeout * 1000))):
                if fd == requests_fd:
                    chunk = os.read(requests_fd, 65536)
                    if not chunk:
                        reading = False
                        self._poller.unregister(requests_fd)
                        continue
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        self._take(line)
                elif fd == self._waker.fd:
                    self._waker.drain()
                elif (job := self._jobs.get(fd)) is not None:
                    self._end(job)

    def _take(self, line: bytes) -> None:
        if self._delay:
            time.sleep(self._delay)
        try:
            request = json.loads(line)
        except ValueError:
            sys.stderr.write(f"sweepwise job host: ignored a malformed request: {line[:200]!r}\n")
            return
        if isinstance(request, dict) and "cancelled" in request:
            self._cancelled(str(request["cancelled"]))
            return
        try:
            self.start(request)
        except Exception as exc:  # never end the host, which supervises other jobs
            if isinstance(request, dict) and "log_path" in request:
                self._log(request, f"sweepwise job host: cannot start the job: {type(exc).__name__}: {exc}\n")
                try:
                    job = _Job(request, self._pid, self._start)
                    self._finish(job, _EX_SOFTWARE, started_at=time.time())
                except Exception:
                    pass


def main() -> None:
    """Serve requests on stdin, replies on stdout."""
    request_short_slices()  # answer a job's end at once, even when the jobs keep every core busy
    host = JobHost(sys.stdout.fileno())
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, host.on_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the controller's to handle
    host.serve(sys.stdin.fileno())


__all__ = ["CANCEL", "JobHost", "resolve_program"]


if __name__ == "__main__":
    main()
