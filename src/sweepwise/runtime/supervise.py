"""The supervisor: runs one job, records its life in `<job>.status.json`, forwards signals.

The supervisor is the parent of the job process. It writes the status file atomically
(temp file + `os.replace`) when the job starts, refreshes `heartbeat_at` while it runs,
and writes the final status (exit code, end time, whether it was cancelled) when it
ends, so a controller that was down meanwhile can still tell what happened.

Process layout: the job runs in its own process group (pgid = job pid) inside the
supervisor's session. SIGTERM / SIGINT / SIGHUP sent to the supervisor are forwarded
once to the job's whole group and mark the job cancelled; a dispatcher can escalate
with SIGKILL to the job's group and still get a final status saying "cancelled". A job
that ends while its `<job>.cancel` file exists is recorded cancelled too, whoever signalled
it: an engine's cancel (`scancel`) may reach the job before its supervisor. When
the job's main process exits, what is left of its process group is killed, so a job's
background processes do not outlive it (a process that must, starts its own session).
A job with a timeout that runs longer gets SIGTERM on its group, SIGKILL after a grace
period, and a final status saying "timed_out" (`TimeLimit`).

Only the standard library is imported: this module is on every job's path.
"""

from __future__ import annotations

import enum
import errno
import json
import math
import os
import select
import signal
import subprocess
import sys
import time

from sweepwise.core.jsonsafe import loads_bounded
from sweepwise.runtime import CANCEL, RESULT, RESULT_FILE, job_file
from sweepwise.runtime._fork import fork_detached
from sweepwise.runtime.regular import open_regular

TYPE_CHECKING = False  # not `from typing import ...`: typing costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import FrameType
    from typing import Any

_FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_CLAIM_TAKEN_OVER = 75  # EX_TEMPFAIL: the claim was taken over by a restarted controller; nothing ran
_HAS_PROC = os.path.isdir("/proc/self")
_FALLOCATE = getattr(os, "posix_fallocate", None) if os.uname().sysname == "Linux" else None


class RunState(enum.StrEnum):
    """The `state` field of a status file."""

    STARTING = "starting"  # the supervisor runs; its job is being started
    RUNNING = "running"
    EXITED = "exited"


def preallocate(fd: int, size: int) -> None:
    """Allocate `size` bytes of the file `fd` on disk before it is written (Linux; best effort).

    ext4 flushes a file's delayed-allocation data when a rename replaces an older file
    with it (auto_da_alloc); with its blocks allocated up front there is nothing to
    flush, which halves the cost of replacing a status file.
    """
    if _FALLOCATE is not None and size > 0:
        try:
            _FALLOCATE(fd, 0, size)
        except OSError:
            pass  # not supported by this filesystem


def write_json_atomic(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write `data` as JSON to `path` so readers see the old or the new file, never half.

    Args:
        path: the destination file; its directory must exist.
        data: a JSON-serialisable dict.
    """
    target = os.fspath(path)
    tmp = f"{target}.{os.getpid()}.tmp"
    payload = json.dumps(data, separators=(",", ":")).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        preallocate(fd, len(payload))
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, target)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) from /proc, or None.

    None too for the id of a thread that does not lead its process: /proc answers for any
    thread id (and `kill(tid, 0)` succeeds), so a job's pid now taken by some process's
    thread would otherwise look alive (docs/design.md, "Liveness from evidence").
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            data = stat_file.read()
        fields = data[data.rindex(b")") + 2 :].split()
        if not _leads_its_process(pid):
            return None
        return fields[0].decode(), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _leads_its_process(pid: int) -> bool:
    """Whether `pid` is a process id, not the id of another thread of some process."""
    with open(f"/proc/{pid}/status", "rb") as status_file:
        for line in status_file:
            if line.startswith(b"Tgid:"):
                return int(line.split()[1]) == pid
    return True


def proc_start_time(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks since boot), None when unknown.

    Together with the pid it identifies a process even after its pid is reused.
    """
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def process_stopped(pid: int) -> bool:
    """True if process `pid` is stopped (Ctrl-Z, SIGSTOP, a debugger); False when unknown."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] in ("T", "t")


def process_alive(pid: int | None, start_time: int | None = None) -> bool:
    """True if process `pid` exists, is not a zombie, and (if given) started at `start_time`.

    Args:
        pid: the process id (None or <= 0 is never alive).
        start_time: what `proc_start_time` returned for it when it was recorded; a
            different value means the pid was reused by another process.
    """
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if not _HAS_PROC:
        return True
    stat = _proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return start_time is None or stat[1] == start_time


def exit_status(code: int) -> int:
    """Map a returncode (negative = killed by that signal) to a process exit status."""
    if code < 0:
        return 128 - code
    return code if code <= 255 else 255


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to process group `pgid`; False if the group no longer exists.

    A `pgid` <= 0 is refused (`killpg(0)` would signal the caller's own group).
    """
    if pgid <= 0:
        return False
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def _exited(pid: int) -> bool:
    """Whether child `pid` has exited, leaving it unreaped."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def accept_claim(token: str | None, status_path: str, status: dict[str, Any]) -> bool:
    """Take a job's claim by renaming its token (a "starting" status) to the job's status file.

    The rename is the one atomic step a restarted controller races against when it
    takes an unstarted claim over (it unlinks the token): exactly one of the two wins
    (docs/design.md, "No duplicate start"). The token's fields (the experiment's
    incarnation, the attempt, the claim id) are kept in `status` for later writes.

    Returns:
        True when the job is ours to start (or there is no token); False when the
        claim was taken over and nothing may start.
    """
    if not token:
        return True
    try:
        os.rename(token, status_path)
    except FileNotFoundError:
        return False
    try:
        with open_regular(status_path) as handle:
            fields = loads_bounded(handle.read())  # the job can write this file too
    except (OSError, ValueError):
        return True
    if isinstance(fields, dict):
        for name in ("incarnation", "attempt", "claim_id", "run_id"):
            if name in fields:
                status[name] = fields[name]
    return True


def set_aside_stale_result(run_dir: str, job_name: str) -> None:
    """Rename a `result.json` left in the run dir by an earlier job whose supervisor died: not ours."""
    loose = os.path.join(run_dir, RESULT_FILE)
    if os.path.exists(loose):
        try:
            os.replace(loose, f"{loose}.before-{job_name}")
        except OSError:
            pass


def mark_running(status: dict[str, Any], pid: int) -> float:
    """Record in `status` that job `pid` runs from now; return the start time.

    The job's `pid_start` is left for `note_pid_start` at its first heartbeat: reading
    `/proc/<pid>/stat` while the job is still inside `execve` blocks until the new
    program is loaded (milliseconds), and the one process that supervises every job
    must not stall. Until then readers check the pid alone, which cannot have been
    reused within a heartbeat of the job starting.
    """
    started_at = time.time()
    status.update(
        pid=pid,
        pid_start=None,
        started_at=started_at,
        heartbeat_at=started_at,
        state=RunState.RUNNING.value,
    )
    return started_at


def note_pid_start(status: dict[str, Any]) -> None:
    """Fill in the running job's `pid_start` (see `mark_running`), once."""
    pid = status.get("pid")
    if status.get("pid_start") is None and isinstance(pid, int) and pid > 0:
        status["pid_start"] = proc_start_time(pid)


class TimeLimit:
    """A job's time limit: SIGTERM to its group once it runs out, SIGKILL `grace` seconds later.

    Its owner calls `enforce` whenever `remaining()` says an action is due, and looks
    at `expired` when the job has ended. Times are `time.monotonic()` seconds.

    Args:
        timeout: the seconds the job may run from now; None or <= 0: no limit.
        grace: seconds between SIGTERM and SIGKILL.
    """

    __slots__ = ("timeout", "grace", "expired", "_terminated", "_next")

    def __init__(self, timeout: float | None, grace: float = 10.0) -> None:
        number = (int, float)
        self.timeout = float(timeout) if isinstance(timeout, number) and timeout > 0 else None
        self.grace = max(0.0, float(grace)) if isinstance(grace, number) else 10.0
        self.expired = False
        self._terminated = False  # SIGTERM was sent (the limit's or a canceller's): SIGKILL is next
        self._next = time.monotonic() + self.timeout if self.timeout is not None else float("inf")

    def remaining(self, now: float) -> float:
        """Seconds from `now` until the next signal is due (inf when none is)."""
        return self._next - now

    def enforce(self, pgid: int, now: float) -> None:
        """Signal the job's process group `pgid` if a signal is due at `now`."""
        if now < self._next:
            return
        if not self._terminated:
            self.expired = self._terminated = True
            signal_group(pgid, signal.SIGTERM)
            self._next = now + self.grace
        else:
            signal_group(pgid, signal.SIGKILL)
            self._next = float("inf")

    def cancelled(self, now: float) -> None:
        """A canceller sent the job SIGTERM at `now`: SIGKILL is due `grace` seconds later.

        So a cancel is carried through even when the canceller (a controller) dies within the
        grace period (docs/design.md, "Cancelling a job"). Once SIGTERM was sent, nothing changes.
        """
        if not self._terminated:
            self._terminated = True
            self._next = now + self.grace


def mark_exited(
    status: dict[str, Any],
    run_dir: str,
    job_name: str,
    code: int,
    *,
    started_at: float,
    cancelled: bool,
    limit: TimeLimit | None = None,
) -> None:
    """Record in `status` that the job ended with `code`; its `result.json` becomes `<job>.result.json`.

    A job stopped by its `limit` is recorded with `timed_out` and its `timeout`.
    """
    loose = os.path.join(run_dir, RESULT_FILE)
    if os.path.exists(loose):
        try:
            os.replace(loose, job_file(run_dir, job_name, RESULT))
        except OSError:
            pass
    now = time.time()
    status.setdefault("started_at", started_at)
    status.setdefault("heartbeat_at", now)
    status.update(state=RunState.EXITED.value, exit_code=code, ended_at=now, cancelled=cancelled)
    timed_out = limit is not None and limit.expired
    status["timed_out"] = timed_out
    if timed_out and limit is not None:
        status["timeout"] = limit.timeout


class Waker:
    """A pipe that a signal handler (or another thread) writes to, so a `poll` on it wakes at once.

    Without it a `poll` that a signal interrupts resumes with its old timeout (PEP 475), and a
    deadline the handler set (a cancel's SIGKILL) would wait for that timeout to run out.
    """

    __slots__ = ("fd", "_write_fd")

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe()  # not inherited by the job (PEP 446)
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write_fd, False)

    def wake(self) -> None:
        """Make the next (or the current) `poll` on `fd` return; safe in a signal handler."""
        try:
            os.write(self._write_fd, b"\0")
        except OSError:
            pass  # the pipe is full (a wake-up is already waiting) or closed

    def drain(self) -> None:
        """Take the wake-ups written so far."""
        try:
            while os.read(self.fd, 512):
                pass
        except OSError:
            pass  # empty

    def __del__(self) -> None:
        # Closed with the last reference, never while a canceller's thread may still write to it
        for fd in (getattr(self, "fd", -1), getattr(self, "_write_fd", -1)):
            try:
                os.close(fd)
            except OSError:
                pass


class Supervisor:
    """One job's supervision: `run()` runs it to its end; `cancel(signum)` from another thread stops it.

    `supervise` runs one in the calling thread with signal handlers; a caller that cannot
    take signals (a Ray task, which is stopped by an exception instead) runs `run()` in a
    thread of its own and calls `cancel` (arguments: those of `supervise`).
    """

    def __init__(
        self,
        argv: Sequence[str],
        cwd: str,
        env: Mapping[str, str],
        log_path: str,
        status_path: str,
        run_dir: str,
        job_name: str,
        heartbeat_interval: float,
        claim_token: str | None = None,
        timeout: float | None = None,
        kill_grace: float = 10.0,
        status_extra: Mapping[str, Any] | None = None,
        guard_group: bool = False,
    ) -> None:
        self.claim_token = claim_token
        self.guard_group = guard_group
        self.argv = list(argv)
        self.cwd = cwd
        self.env = env
        self.log_path = log_path
        self.status_path = status_path
        self.run_dir = run_dir
        self.job_name = job_name
        self.heartbeat_interval = heartbeat_interval
        self.timeout = timeout
        self.kill_grace = kill_grace
        self.limit: TimeLimit | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self.cancel_signal: int | None = None
        self.done = False
        self._waker: Waker | None = None  # while `wait` polls: wakes it when a cancel arrives
        pid = os.getpid()
        self.status: dict[str, Any] = {
            "job": job_name,
            "supervisor_pid": pid,
            "supervisor_start": proc_start_time(pid),
            "pid": None,
            **(status_extra or {}),
        }

    def cancel(self, signum: int = signal.SIGTERM) -> None:
        """Stop the job: `signum` to its process group; its final status says "cancelled"."""
        self.on_signal(signum, None)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.done:
            return
        self.cancel_signal = signum
        if self.child is not None:
            signal_group(self.child.pid, signum)
            if self.limit is not None:
                self.limit.cancelled(time.monotonic())
            waker = self._waker
            if waker is not None:  # the wait loop takes the new SIGKILL deadline now
                waker.wake()

    def run(self) -> int:
        if not accept_claim(self.claim_token, self.status_path, self.status):
            return _CLAIM_TAKEN_OVER
        set_aside_stale_result(self.run_dir, self.job_name)
        if self.cancel_signal is not None:
            return self.finish(-self.cancel_signal, started_at=time.time())
        # Recorded before the job can start: a claim with no status at all then means the job
        # never started (the dispatcher may start it), never "it may be running".
        self.status["state"] = RunState.STARTING.value
        self.write_status()
        try:
            with open(self.log_path, "ab") as log:
                child = subprocess.Popen(
                    self.argv,
                    cwd=self.cwd,
                    env={**os.environ, **self.env},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    process_group=0,
                )
        except OSError as exc:
            with open(self.log_path, "ab") as log:
                log.write(f"sweepwise: cannot start {self.argv[0]!r}: {exc}\n".encode())
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            return self.finish(code, started_at=time.time())
        self.child = child
        guard = self._start_guard(child.pid) if self.guard_group else None
        self.limit = TimeLimit(self.timeout, self.kill_grace)
        if self.cancel_signal is not None:  # arrived while the job was being started
            signal_group(child.pid, self.cancel_signal)
            self.limit.cancelled(time.monotonic())
        started_at = mark_running(self.status, child.pid)
        self.write_status()
        self.wait(child)
        # The job's main process has exited but is not reaped yet, so its pid (= its process
        # group id) cannot be reused: kill what is left of the group, then reap.
        signal_group(child.pid, signal.SIGKILL)  # the guard too, before its pipe closes
        code = child.wait()
        self.child = None
        if guard is not None:
            guard.communicate()
        return self.finish(code, started_at=started_at)

    def _start_guard(self, pgid: int) -> subprocess.Popen[bytes] | None:
        """Start `sweepwise.runtime.group_guard` in the job's group `pgid`: it stops the group if we die.

        None when it cannot start (the job has already ended and left its group): the job
        then runs unguarded, as a local one does.
        """
        try:
            with open(self.log_path, "ab") as log:
                guard = [sys.executable, "-m", "sweepwise.runtime.group_guard"]
                return subprocess.Popen(
                    [*guard, "--grace", repr(float(self.kill_grace))],
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    process_group=pgid,
                )
        except OSError:
            return None

    def wait(self, child: subprocess.Popen[bytes]) -> None:
        """Return once the job has exited (without reaping it), heartbeating and enforcing its limit."""
        limit = self.limit or TimeLimit(None)
        poller: select.poll | None = None
        pidfd = -1
        try:
            pidfd = os.pidfd_open(child.pid)
            waker = Waker()
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.register(waker.fd, select.POLLIN)
            self._waker = waker
        except (AttributeError, OSError):
            poller = None
        try:
            next_beat = time.monotonic() + self.heartbeat_interval
            while not _exited(child.pid):
                now = time.monotonic()
                limit.enforce(child.pid, now)
                remaining = min(next_beat - now, limit.remaining(now))
                if next_beat <= now:
                    note_pid_start(self.status)
                    self.status["heartbeat_at"] = time.time()
                    self.write_status()
                    next_beat = time.monotonic() + self.heartbeat_interval
                elif poller is not None:
                    poller.poll(max(1, math.ceil(remaining * 1000)))
                    waker.drain()
                else:
                    time.sleep(min(remaining, 0.05))
        finally:
            if pidfd >= 0:
                os.close(pidfd)
            self._waker = None

    def finish(self, code: int, *, started_at: float) -> int:
        self.done = True
        mark_exited(
            self.status,
            self.run_dir,
            self.job_name,
            code,
            started_at=started_at,
            cancelled=self.cancel_signal is not None
            or os.path.exists(job_file(self.run_dir, self.job_name, CANCEL)),
            limit=self.limit,
        )
        self._write_final_status()
        return code

    def _write_final_status(self) -> None:
        """The final status, retried every second while the disk is full (as the job host does).

        Exiting without it would leave the job to be judged by its evidence alone, which a job
        that reported only `sweepwise.report` rows does not have (docs/design.md, "A full disk").
        Another error (the run directory deleted) is not waited out.
        """
        while True:
            try:
                write_json_atomic(self.status_path, self.status)
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    return
            time.sleep(1.0)

    def write_status(self) -> None:
        try:
            write_json_atomic(self.status_path, self.status)
        except OSError:
            pass  # a full disk must not kill the job; the next heartbeat retries


def supervise(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str],
    log_path: str | os.PathLike[str],
    status_path: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    job_name: str,
    heartbeat_interval: float = 5.0,
    claim_token: str | None = None,
    timeout: float | None = None,
    kill_grace: float = 10.0,
    status_extra: Mapping[str, Any] | None = None,
    guard_group: bool = False,
) -> int:
    """Run one job to its end, recording its life in `status_path`.

    Args:
        argv: the job's command (never passed through a shell).
        cwd: the job's working directory.
        env: variables added to this process's environment for the job.
        log_path: the job's stdout and stderr are appended here.
        status_path: the status file (`{"supervisor_pid", "pid", "started_at",
            "heartbeat_at", "state"}`, plus `"exit_code"`, `"ended_at"`,
            `"cancelled"` and `"timed_out"` once the job has exited).
        run_dir: the run directory; a `result.json` the job left there is renamed to
            `<job_name>.result.json` when the job exits.
        job_name: `train` or `eval` (`train.2` for a second attempt): the files' name.
        heartbeat_interval: seconds between `heartbeat_at` refreshes.
        claim_token: the claim token to take before anything starts (see `accept_claim`).
        timeout: seconds the job may run before its group gets SIGTERM (None: no limit).
        kill_grace: seconds after that SIGTERM before SIGKILL.
        status_extra: more fields for every status written (a remote engine's job id).
        guard_group: run `sweepwise.runtime.group_guard` in the job's group, so that the
            job is stopped if this process dies (a remote runner, which its engine may
            SIGKILL); a local job is meant to outlive its supervisor's death instead.

    Returns:
        The job's exit code; negative (-N) when it was killed by signal N. 127 / 126
        when the command could not be started (the reason is in the log); 75 when
        the claim was taken over and nothing started.

    Raises:
        RuntimeError: on a system without POSIX process groups.
        ValueError: if `heartbeat_interval` is not positive or `argv` is empty.
    """
    if os.name != "posix":
        raise RuntimeError("sweepwise supervise / exec needs a POSIX system (Linux or macOS)")
    if heartbeat_interval <= 0:
        raise ValueError(f"heartbeat_interval must be > 0 seconds, got {heartbeat_interval}")
    if not argv:
        raise ValueError("the job's command is empty")
    supervisor = Supervisor(
        argv,
        os.fspath(cwd),
        env,
        os.fspath(log_path),
        os.fspath(status_path),
        os.fspath(run_dir),
        job_name,
        heartbeat_interval,
        claim_token,
        timeout,
        kill_grace,
        status_extra,
        guard_group,
    )
    previous: dict[int, Any] = {}
    for forwarded in _FORWARDED_SIGNALS:
        try:
            previous[forwarded] = signal.signal(forwarded, supervisor.on_signal)
        except ValueError:  # not the main thread: signals stay with the caller
            break
    # A dispatcher may fork us with these blocked, so none is lost before our handlers exist.
    old_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, previous) if previous else None
    try:
        return supervisor.run()
    finally:
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def fork_supervisor(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str],
    log_path: str | os.PathLike[str],
    status_path: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    job_name: str,
    heartbeat_interval: float = 5.0,
    claim_token: str | None = None,
    timeout: float | None = None,
    kill_grace: float = 10.0,
    child_setup: Callable[[], None] | None = None,
) -> int:
    """Fork a supervisor running `supervise(...)` in a new session; return its pid.

    The child never returns into the caller: it calls `os.setsid()`, points its
    stdin at /dev/null and stdout/stderr at the job's log, closes its copies of every
    other descriptor, runs `supervise` and leaves with `os._exit`. Nothing shared with
    the parent is closed or finalised, and nothing is logged. Fork only from a
    single-threaded process. The caller must reap the child (`os.waitpid`).
    Arguments are those of `supervise`, plus `child_setup`, run first in the child.
    """
    log = os.fspath(log_path)

    def main() -> int:
        if child_setup is not None:
            child_setup()
        return exit_status(
            supervise(
                argv,
                cwd=cwd,
                env=env,
                log_path=log,
                status_path=status_path,
                run_dir=run_dir,
                job_name=job_name,
                heartbeat_interval=heartbeat_interval,
                claim_token=claim_token,
                timeout=timeout,
                kill_grace=kill_grace,
            )
        )

    return fork_detached(main, log_path=log, blocked=_FORWARDED_SIGNALS)


__all__ = [
    "RunState",
    "Supervisor",
    "TimeLimit",
    "accept_claim",
    "exit_status",
    "fork_supervisor",
    "mark_exited",
    "mark_running",
    "note_pid_start",
    "preallocate",
    "proc_start_time",
    "process_alive",
    "process_stopped",
    "set_aside_stale_result",
    "signal_group",
    "supervise",
    "write_json_atomic",
]
