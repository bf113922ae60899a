"""The local dispatcher: jobs as processes on this machine, surviving a controller crash.

Each job runs under a supervisor (`sweepwise.runtime.supervise`) started in its own
session, so killing the controller (even with SIGKILL) leaves the job running; the
supervisor records the job's life in `<run_dir>/<job>.status.json`, from which a new
controller learns what happened while it was down.

Files per job (see `sweepwise.runtime`): `<job>.dispatch.json` is claimed with
`O_EXCL` before anything starts and holds the supervisor's pid (and start time, to
survive pid reuse) before `dispatch` returns, so a crash at any point never leads to a
second start of the same (run id, job type).

Process layout: supervisor = session and process-group leader, alone in its group;
the job = its own process group in that session. `cancel` sends SIGTERM to the
supervisor, which forwards it once to the job's group and marks the job cancelled; a
job still alive after `grace_period` gets SIGKILL on its group, and the supervisor
still writes a final status saying "cancelled".

POSIX only (Linux first: `/proc` start times and pidfds; elsewhere liveness falls
back to `kill(pid, 0)` and polling).
"""

from __future__ import annotations

import enum
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sweepwise.dispatchers import register_dispatcher
from sweepwise.dispatchers.gpus import GpuPool
from sweepwise.errors import ConfigError, DispatchError
from sweepwise.launch import build_launch, run_dir_for, write_job_files
from sweepwise.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.runtime import DISPATCH, JOB_NAMES, LOG, METRICS, STATUS, job_file
from sweepwise.runtime.exec import spawn_supervisor
from sweepwise.runtime.results import last_output, read_job_result, read_new_metrics, read_status
from sweepwise.runtime.supervise import (
    RunState,
    fork_supervisor,
    proc_start_time,
    process_alive,
    signal_group,
    write_json_atomic,
)

logger = logging.getLogger(__name__)

_CLAIM_TIMEOUT = 30.0  # a claim without a pid and without a status after this is LOST
_SUPERVISOR_EXIT_WAIT = 5.0  # after the job is SIGKILLed, time for the final status
_FALLBACK_STEP = 0.1


class StartMethod(enum.StrEnum):
    """How the supervisor process is started."""

    AUTO = "auto"  # fork on Linux when single-threaded, else spawn
    FORK = "fork"
    SPAWN = "spawn"


@dataclass(slots=True)
class _Watch:
    """What the dispatcher knows about one watched job."""

    run_id: str
    job_type: JobTypes
    run_dir: Path
    pid: int  # the supervisor's; 0 while unknown
    pid_start: int | None
    claimed_at: float
    proc: subprocess.Popen[bytes] | None = None  # spawned by us
    forked: bool = False  # os.fork()ed by us
    exited: bool = False
    pidfd: int | None = None
    started_at: float | None = None
    heartbeat_at: float | None = None
    next_status_read: float = 0.0
    metrics_offset: int = 0
    done: bool = False

    @property
    def job(self) -> str:
        return self.job_type.short

    @property
    def dispatch_id(self) -> str:
        return f"{self.run_id}:{self.job}:{self.pid}"

    def path(self, kind: str) -> Path:
        return Path(job_file(self.run_dir, self.job, kind))

    def event(self, kind: EventKind, at: float | None, **fields: Any) -> JobEvent:
        return JobEvent(
            run_id=self.run_id,
            job_type=self.job_type,
            kind=kind,
            at=time.time() if at is None else at,
            dispatch_id=self.dispatch_id,
            started_at=self.started_at,
            **fields,
        )


# Per process, not per dispatcher: a closed dispatcher's children must still be reaped.
_UNREAPED: list[_Watch] = []


def parse_dispatch_id(dispatch_id: str) -> tuple[str, str, int]:
    """Split `"{run_id}:{job}:{supervisor_pid}"` into its parts.

    Raises:
        DispatchError: if the id is not of that form.
    """
    parts = dispatch_id.rsplit(":", 2)
    if len(parts) == 3 and parts[1] in JOB_NAMES and parts[2].isdigit() and parts[0]:
        return parts[0], parts[1], int(parts[2])
    raise DispatchError(f"malformed local dispatch id {dispatch_id!r}; expected RUN_ID:train|eval:PID")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"exit code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"exit code {code} (killed by signal {-code})"
    return f"exit code {code}"


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


@register_dispatcher("local")
class LocalDispatcher:
    """Runs jobs as supervised processes on this machine.

    Not thread-safe: one controller thread drives it.

    Args:
        runs_root: the root of the run directories.
        experiment: the experiment's name; runs live in `<runs_root>/<experiment>/`.
        heartbeat_interval: seconds between a job's heartbeats (status file reads are
            throttled to one per interval per job).
        grace_period: seconds `cancel` waits after SIGTERM before SIGKILL.
        gpu_pool: the GPUs to hand out to jobs with `gpus > 0` (default: detected
            from `CUDA_VISIBLE_DEVICES` / `nvidia-smi` on first need).
        start_method: `fork`, `spawn` or `auto` (fork on Linux when this process has
            one thread, since forking a multi-threaded process is unsafe; else spawn).

    Raises:
        DispatchError: on a non-POSIX system.
        ConfigError: an unknown start method or a bad experiment name.
    """

    def __init__(
        self,
        runs_root: Path,
        experiment: str,
        *,
        heartbeat_interval: float = 5.0,
        grace_period: float = 10.0,
        gpu_pool: GpuPool | None = None,
        start_method: str = "auto",
    ) -> None:
        if os.name != "posix":
            raise DispatchError("the local dispatcher needs Linux (or another POSIX system)")
        try:
            self._start_method = StartMethod(start_method)
        except ValueError:
            raise ConfigError(
                "dispatcher.start_method", f"unknown start method {start_method!r}; use auto, fork or spawn"
            ) from None
        if heartbeat_interval <= 0 or grace_period < 0:
            raise ConfigError("dispatcher", "heartbeat_interval must be > 0 and grace_period >= 0 seconds")
        run_dir_for(Path(runs_root), experiment, "x")  # validates the experiment name
        self._runs_root = Path(os.path.abspath(runs_root))
        self._experiment = experiment
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period
        self._gpu_pool = gpu_pool
        self._warned_no_gpus = False
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._finished: set[tuple[str, str]] = set()
        self._unreaped = _UNREAPED  # supervisors we started and must reap once they exit
        self._selector: selectors.BaseSelector | None = None

    # -- dispatching -------------------------------------------------------------------

    def dispatch(self, job: JobDefinition) -> str:
        """Start `job` under a supervisor, unless it was ever started before.

        Idempotent per (run id, job type): if the job's dispatch or status file exists,
        its dispatch id is returned and nothing starts (the job is watched again if
        this dispatcher was not watching it).

        Returns:
            The dispatch id `"{run_id}:{job}:{supervisor_pid}"`.

        Raises:
            ConfigError: the job's command, cwd or run id is invalid.
            DispatchError: `nodes > 1`; not enough free GPUs (the controller should
                retry later); the supervisor could not be started.
        """
        key = (job.run_id, job.type.short)
        existing = self.find(job.run_id, job.type)
        if existing is not None:
            if key not in self._watches and key not in self._finished:
                self.reattach(existing, job.run_id, job.type)
            return existing
        if job.nodes != 1:
            raise DispatchError(f"run {job.run_id}: local jobs run on one node, not nodes={job.nodes}")
        plan = build_launch(job, experiment=self._experiment, runs_root=self._runs_root)
        owner = f"{job.run_id}:{plan.job_name}"
        gpus = self._assign_gpus(job, owner)
        if gpus:
            plan = replace(plan, env={**plan.env, "CUDA_VISIBLE_DEVICES": ",".join(gpus)})
        claim = Path(job_file(plan.run_dir, plan.job_name, DISPATCH))
        try:
            plan.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another dispatcher won the race
            self._release_gpus(owner)
            return self.find(job.run_id, job.type) or f"{job.run_id}:{plan.job_name}:0"
        claimed_at = time.time()
        with os.fdopen(fd, "w") as handle:
            json.dump({"run_id": job.run_id, "job": plan.job_name, "claimed_at": claimed_at}, handle)
        try:
            write_job_files(plan, job)
            watch = _Watch(job.run_id, job.type, plan.run_dir, 0, None, claimed_at)
            method = self._resolve_start_method()
            if method is StartMethod.FORK:
                watch.forked = True
                watch.pid = fork_supervisor(
                    plan.argv,
                    cwd=plan.cwd,
                    env=plan.env,
                    log_path=plan.log_path,
                    status_path=plan.status_path,
                    run_dir=plan.run_dir,
                    job_name=plan.job_name,
                    heartbeat_interval=self._heartbeat_interval,
                )
            else:
                watch.proc = spawn_supervisor(
                    plan.argv,
                    cwd=plan.cwd,
                    env=plan.env,
                    run_dir=plan.run_dir,
                    job_name=plan.job_name,
                    heartbeat_interval=self._heartbeat_interval,
                )
                watch.pid = watch.proc.pid
        except BaseException as exc:
            claim.unlink(missing_ok=True)
            self._release_gpus(owner)
            if isinstance(exc, OSError):
                raise DispatchError(f"run {job.run_id}: cannot start the {plan.job_name} job: {exc}") from exc
            raise
        watch.pid_start = proc_start_time(watch.pid)
        record = {
            "run_id": job.run_id,
            "job": plan.job_name,
            "supervisor_pid": watch.pid,
            "supervisor_start": watch.pid_start,
            "claimed_at": claimed_at,
            "start_method": method.value,
            "gpus": gpus,
            "argv": plan.argv,
        }
        write_json_atomic(claim, record)
        self._watch(key, watch)
        return watch.dispatch_id

    def _resolve_start_method(self) -> StartMethod:
        if self._start_method is not StartMethod.AUTO:
            return self._start_method
        if sys.platform.startswith("linux") and threading.active_count() == 1:
            return StartMethod.FORK
        return StartMethod.SPAWN

    # -- GPUs --------------------------------------------------------------------------

    def _assign_gpus(self, job: JobDefinition, owner: str) -> list[str]:
        if job.gpus <= 0:
            return []
        if self._gpu_pool is None:
            self._gpu_pool = GpuPool.detect()
        pool = self._gpu_pool
        if len(pool) == 0:
            if not self._warned_no_gpus:
                self._warned_no_gpus = True
                logger.warning("jobs ask for GPUs but this machine has none; they run without GPUs")
            return []
        if job.gpus > len(pool):
            raise DispatchError(f"run {job.run_id} asks for {job.gpus} GPUs but this machine has {len(pool)}")
        gpus = pool.acquire(owner, job.gpus)
        if gpus is None:
            raise DispatchError(
                f"not enough free GPUs: run {job.run_id} needs {job.gpus}, "
                f"{len(pool.free)} of {len(pool)} are free; dispatch it when a GPU job has finished"
            )
        return gpus

    def _release_gpus(self, owner: str) -> None:
        if self._gpu_pool is not None:
            self._gpu_pool.release(owner)

    # -- finding and watching ----------------------------------------------------------

    def _run_dir(self, run_id: str) -> Path:
        return run_dir_for(self._runs_root, self._experiment, run_id)

    def find(self, run_id: str, job_type: JobTypes) -> str | None:
        """The dispatch id of the job if it was ever started (or claimed), else None."""
        run_dir = self._run_dir(run_id)
        job = job_type.short
        status = read_status(Path(job_file(run_dir, job, STATUS)))
        if status is not None and isinstance(status.get("supervisor_pid"), int):
            return f"{run_id}:{job}:{status['supervisor_pid']}"
        claim = Path(job_file(run_dir, job, DISPATCH))
        record = read_status(claim)
        if record is not None and isinstance(record.get("supervisor_pid"), int):
            return f"{run_id}:{job}:{record['supervisor_pid']}"
        return f"{run_id}:{job}:0" if claim.exists() else None

    def reattach(self, dispatch_id: str, run_id: str, job_type: JobTypes) -> None:
        """Watch a job started before (by this or an earlier controller process).

        Raises:
            DispatchError: the id is malformed or belongs to another run or job type.
        """
        id_run, job, pid = parse_dispatch_id(dispatch_id)
        if (id_run, job) != (run_id, job_type.short):
            raise DispatchError(f"dispatch id {dispatch_id!r} is not of run {run_id}'s {job_type.short} job")
        key = (run_id, job)
        if key in self._watches:
            return
        self._finished.discard(key)
        watch = self._load_watch(run_id, job_type, pid)
        record = read_status(watch.path(DISPATCH)) or {}
        gpus = record.get("gpus")
        if gpus and isinstance(gpus, list):
            if self._gpu_pool is None:
                self._gpu_pool = GpuPool.detect()
            self._gpu_pool.reserve(f"{run_id}:{job}", gpus)
        self._watch(key, watch)

    def _load_watch(self, run_id: str, job_type: JobTypes, pid: int) -> _Watch:
        run_dir = self._run_dir(run_id)
        watch = _Watch(run_id, job_type, run_dir, pid, None, time.time())
        record = read_status(watch.path(DISPATCH)) or {}
        status = read_status(watch.path(STATUS)) or {}
        watch.claimed_at = _number(record.get("claimed_at")) or watch.claimed_at
        for source in (record, status):
            source_pid = source.get("supervisor_pid")
            if isinstance(source_pid, int) and source_pid > 0 and watch.pid in (0, source_pid):
                watch.pid = source_pid
                start = source.get("supervisor_start")
                watch.pid_start = start if isinstance(start, int) else watch.pid_start
        return watch

    def _watch(self, key: tuple[str, str], watch: _Watch) -> None:
        self._watches[key] = watch
        self._open_pidfd(watch)

    def _open_pidfd(self, watch: _Watch) -> None:
        if watch.pid <= 0 or watch.pidfd is not None or not hasattr(os, "pidfd_open"):
            return
        try:
            fd = os.pidfd_open(watch.pid)
        except OSError:
            return  # already gone, or no pidfds here: liveness checks take over
        owned = watch.forked or watch.proc is not None
        if not owned and watch.pid_start is not None and proc_start_time(watch.pid) != watch.pid_start:
            os.close(fd)  # the pid was reused: our supervisor is gone
            return
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
        self._selector.register(fd, selectors.EVENT_READ)
        watch.pidfd = fd

    def _learn_pid(self, watch: _Watch, status: dict[str, Any]) -> bool:
        """Take the supervisor's pid from its status when the claim had none."""
        pid = status.get("supervisor_pid")
        if watch.pid != 0 or not isinstance(pid, int) or pid <= 0:
            return False
        start = status.get("supervisor_start")
        watch.pid, watch.pid_start = pid, (start if isinstance(start, int) else None)
        self._open_pidfd(watch)
        return True

    def _close_pidfd(self, watch: _Watch) -> None:
        if watch.pidfd is not None:
            if self._selector is not None:
                self._selector.unregister(watch.pidfd)
            os.close(watch.pidfd)
            watch.pidfd = None

    def _running(self, watch: _Watch) -> bool:
        """Whether the supervisor still runs; reaps our own children."""
        if watch.exited:
            return False
        if watch.proc is not None:
            watch.exited = watch.proc.poll() is not None
        elif watch.forked:
            try:
                watch.exited = os.waitpid(watch.pid, os.WNOHANG)[0] != 0
            except ChildProcessError:
                watch.exited = True
        elif watch.pid > 0:
            watch.exited = not process_alive(watch.pid, watch.pid_start)
        else:  # claimed, pid never recorded: give the supervisor time to write its status
            return time.time() - watch.claimed_at < _CLAIM_TIMEOUT
        return not watch.exited

    # -- polling -----------------------------------------------------------------------

    def poll(self) -> list[JobEvent]:
        """Events of the watched, unfinished jobs since the last poll.

        Cost is proportional to the number of live jobs: per job a liveness check, a
        `stat` of its metrics file, and a read of its status file at most once per
        heartbeat interval (always once its supervisor has exited).
        """
        self._unreaped[:] = [watch for watch in self._unreaped if self._running(watch)]
        events: list[JobEvent] = []
        for key, watch in list(self._watches.items()):
            events.extend(self._poll_one(watch))
            if watch.done:
                del self._watches[key]
                self._finished.add(key)
                self._close_pidfd(watch)
                self._release_gpus(f"{watch.run_id}:{watch.job}")
                if self._running(watch):  # final status written, exit imminent: reap later
                    self._unreaped.append(watch)
        return events

    def _poll_one(self, watch: _Watch) -> list[JobEvent]:
        running = self._running(watch)
        now = time.monotonic()
        if running and watch.started_at is not None and now < watch.next_status_read:
            return self._new_metrics(watch)
        status = read_status(watch.path(STATUS))
        watch.next_status_read = now + self._heartbeat_interval
        if status is not None and self._learn_pid(watch, status):
            running = self._running(watch)
        events: list[JobEvent] = []
        if status is not None:
            heartbeat = _number(status.get("heartbeat_at"))
            if watch.started_at is None:
                watch.started_at = _number(status.get("started_at")) or time.time()
                watch.heartbeat_at = heartbeat
                events.append(watch.event(EventKind.STARTED, watch.started_at))
            elif heartbeat is not None and (watch.heartbeat_at is None or heartbeat > watch.heartbeat_at):
                watch.heartbeat_at = heartbeat
                if status.get("state") == RunState.RUNNING:
                    events.append(watch.event(EventKind.HEARTBEAT, heartbeat))
        events.extend(self._new_metrics(watch))
        if status is not None and status.get("state") == RunState.EXITED:
            events.append(self._finished_event(watch, status))
            watch.done = True
        elif not running:
            last = last_output(watch.path(LOG))
            error = (
                f"the supervisor (pid {watch.pid}) ended without writing a final status "
                f"(killed, or the machine restarted?)" + (f"; last output: {last}" if last else "")
            )
            events.append(watch.event(EventKind.LOST, None, error=error))
            watch.done = True
        return events

    def _finished_event(self, watch: _Watch, status: dict[str, Any]) -> JobEvent:
        code = status.get("exit_code")
        exit_code = code if isinstance(code, int) else -1
        result, error = read_job_result(watch.run_dir, watch.job)
        if exit_code != 0:
            last = last_output(watch.path(LOG))
            error = _describe_exit(exit_code) + (f"; last output: {last}" if last else " (no output)")
        if status.get("cancelled"):
            error = f"cancelled; {error}" if error else "cancelled"
        ended_at = _number(status.get("ended_at"))
        return watch.event(EventKind.FINISHED, ended_at, exit_code=exit_code, result=result, error=error)

    def _new_metrics(self, watch: _Watch) -> list[JobEvent]:
        row, watch.metrics_offset = read_new_metrics(watch.path(METRICS), watch.metrics_offset)
        if row is None:
            return []
        metrics = {name: value for name, value in row.items() if name != "time"}
        return [watch.event(EventKind.METRICS, _number(row.get("time")), metrics=metrics)]

    # -- waiting -----------------------------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds; return as soon as a watched supervisor exits.

        Uses one pidfd per watched supervisor in an epoll selector; where pidfds are
        unavailable, checks liveness every 0.1 s.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        watches = list(self._watches.values())
        unobserved = [watch for watch in watches if watch.pidfd is None]
        while (remaining := deadline - time.monotonic()) > 0:
            if any(not self._running(watch) for watch in unobserved):
                return
            step = min(remaining, _FALLBACK_STEP) if unobserved else remaining
            if self._selector is not None and self._selector.get_map():
                if self._selector.select(step):
                    return
            else:
                time.sleep(step)

    # -- cancelling --------------------------------------------------------------------

    def cancel(self, dispatch_id: str) -> None:
        """Stop a job: SIGTERM, then SIGKILL to its process group after `grace_period`.

        Blocks up to `grace_period` (plus a few seconds if SIGKILL was needed). No
        error if the job has already ended. The job's final status says cancelled; a
        job whose supervisor is gone (LOST) is signalled directly.

        Raises:
            DispatchError: the id is malformed.
        """
        run_id, job, pid = parse_dispatch_id(dispatch_id)
        watch = self._watches.get((run_id, job)) or self._load_watch(run_id, JobTypes.from_short(job), pid)
        deadline = time.monotonic() + self._grace_period
        status = read_status(watch.path(STATUS))
        while status is None and self._running(watch) and time.monotonic() < deadline:
            time.sleep(0.02)  # the supervisor is starting: SIGTERM once it can forward it
            status = read_status(watch.path(STATUS))
        if status is not None:
            if status.get("state") == RunState.EXITED:
                return
            self._learn_pid(watch, status)
        job_pid, job_start = _job_identity(status)
        supervised = watch.pid > 0 and self._running(watch)
        if supervised:
            _kill(watch.pid, signal.SIGTERM)  # the supervisor is alone in its group
        elif process_alive(job_pid, job_start):
            signal_group(job_pid or 0, signal.SIGTERM)
        else:
            return

        def alive() -> bool:
            return self._running(watch) if supervised else process_alive(job_pid, job_start)

        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive():
            return
        if process_alive(job_pid, job_start):
            signal_group(job_pid or 0, signal.SIGKILL)
        until = time.monotonic() + _SUPERVISOR_EXIT_WAIT
        while supervised and self._running(watch) and time.monotonic() < until:
            time.sleep(0.05)
        if supervised and self._running(watch):
            _kill(watch.pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop watching and release descriptors; running jobs are left running.

        Supervisors this process started stay referenced (and are reaped by any later
        `poll` of a dispatcher in this process), so closing never warns or leaves
        zombies behind while the process lives.
        """
        for watch in self._watches.values():
            self._close_pidfd(watch)
            if self._running(watch):
                self._unreaped.append(watch)
        self._watches.clear()
        if self._selector is not None:
            self._selector.close()
            self._selector = None


__all__ = ["LocalDispatcher", "StartMethod", "parse_dispatch_id"]
