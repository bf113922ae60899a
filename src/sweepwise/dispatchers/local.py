"""The local dispatcher: jobs as processes on this machine, surviving a controller crash.

Each job runs in its own session under a supervisor — on Linux one job host
(`sweepwise.runtime.jobhost`) for all of a controller's jobs, elsewhere a supervisor
per job (`sweepwise.runtime.supervise`) — so killing the controller (even with
SIGKILL) leaves the jobs running; the supervisor records each job's life in
`<run_dir>/<job>.status.json`, from which a new controller learns what happened while
it was down.

Files per job (see `sweepwise.runtime`): `<job>.dispatch.json` is claimed with
`O_EXCL` before anything starts, so a crash at any point never leads to a second start
of the same (run id, job type). Before the job can start, its supervisor's pid (and
start time, to survive pid reuse) is recorded: the job host writes it in the job's
status; a per-job supervisor's is added to the claim before `dispatch` returns.

Process layout: the job host and each job lead their own sessions; a per-job
supervisor leads its session and runs its job in a process group of its own. `cancel`
marks the job cancelled (a `<job>.cancel` file for the host; SIGTERM to a per-job
supervisor, which forwards it) and sends SIGTERM to the job's group; a job still alive
after `grace_period` gets SIGKILL on its group, and the final status says "cancelled".
`cancel` returns at once: the SIGKILL is sent by a later `poll`, `wait`, `dispatch` of the
same run, or `close` (which returns once every cancelled job is gone).
A job's `timeout` is enforced by its supervisor the same way, controller or not.

POSIX only (Linux first: `/proc` start times and pidfds; elsewhere liveness falls
back to `kill(pid, 0)` and polling).
"""

from __future__ import annotations

import atexit
import enum
import logging
import os
import sys
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sweepwise.core.errors import ConfigError, DispatchError
from sweepwise.core.models import JobDefinition, JobEvent, JobTypes
from sweepwise.dispatchers import register_dispatcher
from sweepwise.dispatchers._claims import check_incarnation, make_claim, owned_attempt, settle_claim
from sweepwise.dispatchers._local_cancel import Cancellation
from sweepwise.dispatchers._local_host import JobHostClient, reap_lingering_hosts
from sweepwise.dispatchers._local_watch import UNREAPED, ExitSelector, Watch, load_watch
from sweepwise.dispatchers.gpus import GpuPool
from sweepwise.dispatchers.launch import build_launch, run_dir_for
from sweepwise.runtime import DISPATCH, STATUS, job_file, job_stem, parse_stem
from sweepwise.runtime.exec import spawn_supervisor
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import RunState, fork_supervisor, proc_start_time, write_json_atomic

logger = logging.getLogger(__name__)


FIRST_STATUS_READ = 0.25  # seconds after a hosted job's dispatch its status is first read
_STARTING_READ_STEP = 0.05  # seconds between reads of a status that says the job is starting
_HOST_EXIT_WAIT = 5.0  # seconds to let a job host whose pipe broke finish exiting


class StartMethod(enum.StrEnum):
    """How the supervisor process is started."""

    AUTO = "auto"  # the job host on Linux, else spawn
    HOST = "host"  # one job host process starts and supervises every job (cheapest; Linux)
    FORK = "fork"  # this process forks a supervisor per job (copies the controller's page tables)
    SPAWN = "spawn"  # a new Python process supervises each job


def parse_dispatch_id(dispatch_id: str) -> tuple[str, str, int]:
    """Split `"{run_id}:{job}:{supervisor_pid}"` into its parts (`job`: `train`, `eval`, `train.2`...).

    Raises:
        DispatchError: if the id is not of that form.
    """
    parts = dispatch_id.rsplit(":", 2)
    if len(parts) == 3 and parse_stem(parts[1]) is not None and parts[2].isdigit() and parts[0]:
        return parts[0], parts[1], int(parts[2])
    raise DispatchError(f"malformed local dispatch id {dispatch_id!r}; expected RUN_ID:train|eval:PID")


@register_dispatcher("local")
class LocalDispatcher:
    """Runs jobs as supervised processes on this machine.

    Not thread-safe: one controller thread drives it.

    Args:
        runs_root: the root of the run directories.
        experiment: the experiment's name; runs live in `<runs_root>/<experiment>/`.
        heartbeat_interval: seconds between a job's heartbeats (status file reads are
            throttled to one per interval per job).
        grace_period: seconds from a cancel's SIGTERM to its SIGKILL; also the grace a
            job past its `timeout` gets from its supervisor.
        gpu_pool: the GPUs to hand out to jobs with `gpus > 0` (default: detected
            from `CUDA_VISIBLE_DEVICES` / `nvidia-smi` on first need).
        start_method: `host`, `fork`, `spawn` or `auto` (the job host on Linux,
            else spawn).
        incarnation: the experiment's incarnation id, written in every claim and status;
            a job file of another incarnation is never taken as this run's.

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
        incarnation: str | None = None,
    ) -> None:
        if os.name != "posix":
            raise DispatchError("the local dispatcher needs Linux (or another POSIX system)")
        try:
            self._start_method = StartMethod(start_method)
        except ValueError:
            raise ConfigError(
                "dispatcher.start_method",
                f"unknown start method {start_method!r}; use auto, host, fork or spawn",
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
        self._watches: dict[tuple[str, str], Watch] = {}
        self._cancelling: dict[tuple[str, str], Cancellation] = {}  # cancelled jobs not yet gone
        self._finished: set[tuple[str, str]] = set()
        self._unreaped = UNREAPED  # supervisors we started and must reap once they exit
        self._exits = ExitSelector()  # wakes `wait` when a watched supervisor exits
        self._host: JobHostClient | None = None
        self._incarnation = incarnation
        self._claimant = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

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
        if job.nodes != 1:
            raise DispatchError(f"run {job.run_id}: local jobs run on one node, not nodes={job.nodes}")
        plan = build_launch(job, experiment=self._experiment, runs_root=self._runs_root)
        self._finish_cancels(job.run_id)  # a retry never runs beside its cancelled attempt
        key = (job.run_id, plan.job_name)
        watched = self._watches.get(key)
        if watched is not None:
            return watched.dispatch_id
        owner = f"{job.run_id}:{plan.job_name}"
        gpus = self._assign_gpus(job, owner)
        if gpus:
            plan = replace(plan, env={**plan.env, "CUDA_VISIBLE_DEVICES": ",".join(gpus)})
        method = self._resolve_start_method()
        fields = {
            "claimant": self._claimant,
            "incarnation": self._incarnation,
            "start_method": method.value,
            "gpus": gpus,
            "argv": plan.argv,
        }
        try:
            made = make_claim(plan, job, fields, lambda record: self._token_status(record, plan.job_name))
        except BaseException:
            self._release_gpus(owner)
            raise
        if made is None:  # started before (the claim is the idempotency key): watch it
            self._release_gpus(owner)
            existing = self.find(job.run_id, job.type, job.attempt)
            if existing is None:  # an unstarted claim was taken over and set aside: start it now
                return self.dispatch(job)
            if key not in self._watches and key not in self._finished:
                self.reattach(existing, job.run_id, job.type)
            return existing
        claim, record, token = made.path, made.record, made.token
        try:
            watch = Watch(job.run_id, job.type, plan.run_dir, record["claimed_at"], job.attempt)
            if method is StartMethod.HOST:
                host = self._submit(
                    {
                        "key": owner,
                        "argv": plan.argv,
                        "cwd": plan.cwd,
                        "env": plan.env,
                        "log_path": str(plan.log_path),
                        "status_path": str(plan.status_path),
                        "run_dir": str(plan.run_dir),
                        "job_name": plan.job_name,
                        "heartbeat_interval": self._heartbeat_interval,
                        "claim_token": str(token),
                        "timeout": job.timeout,
                        "kill_grace": self._grace_period,
                    }
                )
                watch.hosted, watch.proc = True, host.proc
                watch.pid, watch.pid_start = host.pid, host.pid_start
                # The host says when the job ends; a job that ends this soon is never read twice.
                watch.next_status_read = time.monotonic() + FIRST_STATUS_READ
            elif method is StartMethod.FORK:
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
                    claim_token=str(token),
                    timeout=job.timeout,
                    kill_grace=self._grace_period,
                )
            else:
                watch.proc = spawn_supervisor(
                    plan.argv,
                    cwd=plan.cwd,
                    env=plan.env,
                    run_dir=plan.run_dir,
                    job_name=job.type.short,
                    heartbeat_interval=self._heartbeat_interval,
                    attempt=job.attempt,
                    claim_token=str(token),
                    timeout=job.timeout,
                    kill_grace=self._grace_period,
                )
                watch.pid = watch.proc.pid
        except BaseException as exc:
            # Nothing may start from this claim (if a supervisor has it, the job is found by its status).
            made.void()
            self._release_gpus(owner)
            if isinstance(exc, OSError):
                raise DispatchError(f"run {job.run_id}: cannot start the {plan.job_name} job: {exc}") from exc
            raise
        if not watch.hosted:  # the host records itself in the job's status before it starts the job
            watch.pid_start = proc_start_time(watch.pid)
            write_json_atomic(
                claim, {**record, "supervisor_pid": watch.pid, "supervisor_start": watch.pid_start}
            )
        self._watch(key, watch)
        return watch.dispatch_id

    def _token_status(self, record: dict[str, Any], stem: str) -> dict[str, Any]:
        """The first status of a claimed job, as its supervisor will find it once it takes the claim."""
        status: dict[str, Any] = {
            "job": stem,
            "state": RunState.STARTING.value,
            "pid": None,
            "run_id": record["run_id"],
            "attempt": record["attempt"],
            "claim_id": record["claim_id"],
            "incarnation": self._incarnation,
        }
        if record["start_method"] == StartMethod.HOST.value:
            self._ensure_host()
            assert self._host is not None
            status.update(supervisor_pid=self._host.pid, supervisor_start=self._host.pid_start, host=True)
        return status

    def _resolve_start_method(self) -> StartMethod:
        if self._start_method is not StartMethod.AUTO:
            return self._start_method
        if sys.platform.startswith("linux") and hasattr(os, "pidfd_open"):
            return StartMethod.HOST
        return StartMethod.SPAWN

    def _ensure_host(self) -> bool:
        """Start the job host on first use, or a new one if it died; True when one was started.

        The jobs of a host that died run on in sessions of their own, watched by their pids.
        """
        if self._host is None:
            self._host = JobHostClient()
        if self._host.alive():
            return False
        self._exits.unwatch_host()
        old = self._host.proc
        for watch in self._watches.values():
            if watch.hosted and old is not None and watch.proc is old:
                watch.host_gone()
        self._host.start()
        return True

    def _submit(self, request: dict[str, Any]) -> JobHostClient:
        """Send a job to the job host (started on first use, restarted if it died).

        A host that dies after the check that it runs and before the job's line reaches it
        (a broken pipe) cannot have read the line, so the job goes to a new host, once
        (docs/design.md, "Faults").
        """
        for last in (False, True):
            if self._ensure_host():  # the host died since the token was written: the token names it
                status = read_status(request["claim_token"]) or {}
                assert self._host is not None
                status.update(supervisor_pid=self._host.pid, supervisor_start=self._host.pid_start)
                write_json_atomic(request["claim_token"], status)
            assert self._host is not None
            try:
                self._host.submit(request)
                break
            except OSError:
                if last:
                    raise
                self._host.wait_for_exit(_HOST_EXIT_WAIT)  # its end of the pipe is closed: it is exiting
        host = self._host
        assert host is not None
        self._exits.watch_host(host.fileno(), self._on_host_ready)
        return host

    def _on_host_ready(self) -> None:
        """The host reported ended jobs (or ended itself): read their statuses at the next poll."""
        assert self._host is not None
        keys, gone = self._host.ended_keys()
        for key in keys:
            run_id, _, job = key.rpartition(":")
            watch = self._watches.get((run_id, job))
            if watch is not None:
                watch.ended = True
        if gone:  # its jobs run on in sessions of their own: watch them by their own pids
            self._exits.unwatch_host()
            for watch in self._watches.values():
                if watch.hosted and watch.proc is self._host.proc:
                    watch.host_gone()

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

    def find(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The dispatch id of the job if it was ever started (or claimed), else None.

        An unstarted claim (its token still waiting) is taken over: its token is
        voided and the claim set aside, so it can never start, and None is returned
        for the job to be dispatched anew (docs/design.md, "No duplicate start").

        Raises:
            DispatchError: the run directory holds this job of another experiment
                incarnation (another store's, or an earlier experiment of this name).
        """
        run_dir = self._run_dir(run_id)
        stem = job_stem(job_type.short, attempt)
        watched = self._watches.get((run_id, stem))
        if watched is not None:  # ours, started or on its way
            return watched.dispatch_id
        status = read_status(Path(job_file(run_dir, stem, STATUS)))
        claim = Path(job_file(run_dir, stem, DISPATCH))
        record = read_status(claim)
        for source in (status, record):
            self._check_incarnation(source, run_id, stem)
        if status is not None and isinstance(status.get("supervisor_pid"), int):
            return f"{run_id}:{stem}:{status['supervisor_pid']}"
        if record is not None and isinstance(record.get("supervisor_pid"), int):
            return f"{run_id}:{stem}:{record['supervisor_pid']}"
        if not claim.exists():
            return None
        return settle_claim(run_id, stem, claim, record, self._supervised_id(run_id, stem))

    def _check_incarnation(self, source: dict[str, Any] | None, run_id: str, stem: str) -> None:
        check_incarnation(source, self._incarnation, run_id, stem, self._run_dir(run_id), self._experiment)

    @staticmethod
    def _supervised_id(run_id: str, stem: str) -> Callable[[dict[str, Any] | None], str | None]:
        """The dispatch id a job's status gives once a supervisor has the job."""

        def dispatch_id(status: dict[str, Any] | None) -> str | None:
            if status is not None and isinstance(status.get("supervisor_pid"), int):
                return f"{run_id}:{stem}:{status['supervisor_pid']}"
            return None

        return dispatch_id

    def reattach(self, dispatch_id: str, run_id: str, job_type: JobTypes) -> None:
        """Watch a job started before (by this or an earlier controller process).

        Raises:
            DispatchError: the id is malformed or belongs to another run or job type.
        """
        id_run, stem, pid = parse_dispatch_id(dispatch_id)
        attempt = owned_attempt(dispatch_id, id_run, stem, run_id, job_type)
        key = (run_id, stem)
        if key in self._watches:
            return
        self._finished.discard(key)
        watch = self._load_watch(run_id, job_type, pid, attempt)
        if not os.path.lexists(watch.path(DISPATCH)) and watch.supervisor_alive():
            # no claim, no start time: the pid alone cannot tell our job from another process
            logger.warning(
                "run %s: %s holds no record of its %s job; waiting on pid %d, which may be another "
                "process (was runs_dir moved?); the job is judged lost once that process is gone",
                run_id,
                watch.run_dir,
                stem,
                pid,
            )
        record = read_status(watch.path(DISPATCH)) or {}
        gpus = record.get("gpus")
        if gpus and isinstance(gpus, list):
            if self._gpu_pool is None:
                self._gpu_pool = GpuPool.detect()
            self._gpu_pool.reserve(f"{run_id}:{stem}", gpus)
        self._watch(key, watch)

    def _load_watch(self, run_id: str, job_type: JobTypes, pid: int, attempt: int = 1) -> Watch:
        return load_watch(self._run_dir(run_id), run_id, job_type, pid, attempt)

    def _watch(self, key: tuple[str, str], watch: Watch) -> None:
        self._watches[key] = watch
        self._exits.open(watch)

    def _learn_pid(self, watch: Watch, status: dict[str, Any]) -> bool:
        """Take the supervisor's pid from its status when the claim had none.

        For a job under another controller's job host, take the job's own pid to watch.
        """
        learnt = watch.learn_pid(status)
        job_learnt = watch.learn_job_pid(status)
        if job_learnt:
            self._exits.close(watch)  # it watched the host; the job's own exit is what counts
        if learnt or job_learnt:
            self._exits.open(watch)
        return learnt

    # -- polling -----------------------------------------------------------------------

    def poll(self) -> list[JobEvent]:
        """Events of the watched, unfinished jobs since the last poll.

        Cost is proportional to the number of live jobs: per job a liveness check, a
        `stat` of its metrics file, and a read of its status file at most once per
        heartbeat interval (always once its supervisor has exited).
        """
        self._advance_cancels()
        self._unreaped[:] = [watch for watch in self._unreaped if watch.running()]
        reap_lingering_hosts()
        events: list[JobEvent] = []
        for key, watch in list(self._watches.items()):
            events.extend(self._poll_one(watch))
            if watch.done:
                del self._watches[key]
                self._finished.add(key)
                self._exits.close(watch)
                self._release_gpus(f"{watch.run_id}:{watch.job}")
                if not watch.hosted and watch.running():  # final status written, exit imminent: reap later
                    self._unreaped.append(watch)
        return events

    def _poll_one(self, watch: Watch) -> list[JobEvent]:
        running = watch.running()
        now = time.monotonic()
        if not watch.ended and running and now < watch.next_status_read:
            return watch.new_metrics()
        status = read_status(watch.path(STATUS))
        starting = status is None or status.get("state") == RunState.STARTING
        # A job not started yet is read again soon; a running one once per heartbeat.
        watch.next_status_read = now + (_STARTING_READ_STEP if starting else self._heartbeat_interval)
        if status is not None and self._learn_pid(watch, status):
            running = watch.running()
        events = watch.progress_events(status)
        events.extend(watch.new_metrics())
        if status is not None and status.get("state") == RunState.EXITED:
            events.append(watch.finished_event(status))
            watch.done = True
        elif not running:
            events.append(watch.unobserved_end())
            watch.done = True
        return events

    # -- waiting -----------------------------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds; return as soon as a watched supervisor exits.

        Uses one pidfd per watched supervisor (and the job host's reply pipe) in an
        epoll selector; where pidfds are unavailable, checks liveness every 0.1 s. Returns
        in time for the first status read of a job that has not been seen to start, and
        for the next step of a cancel in progress.
        """
        watches = list(self._watches.values())
        first_reads = [watch.next_status_read for watch in watches if watch.started_at is None]
        if first_reads:
            timeout = min(timeout, max(0.0, min(first_reads) - time.monotonic()))
        if self._cancelling:  # back in time for a SIGKILL that falls due
            timeout = min(timeout, *(c.next_step_in() for c in self._cancelling.values()))
        self._exits.wait(watches, timeout)

    # -- cancelling --------------------------------------------------------------------

    def cancel(self, dispatch_id: str) -> None:
        """Stop a job: SIGTERM now, SIGKILL to its process group after `grace_period`.

        Returns at once; the SIGKILL, if the job is still alive by then, is sent by a later
        `poll`, `wait` or `close`, so stopping many jobs takes one grace period, not one
        each (docs/design.md, "Cancelling a job"). No error if the job has already ended. The
        job's final status says cancelled; a job whose supervisor is gone (LOST) is
        signalled directly.

        Raises:
            DispatchError: the id is malformed.
        """
        run_id, stem, pid = parse_dispatch_id(dispatch_id)
        job, attempt = parse_stem(stem) or (stem, 1)
        watch = self._watches.get((run_id, stem)) or self._load_watch(
            run_id, JobTypes.from_short(job), pid, attempt
        )
        if (run_id, watch.job) in self._cancelling:
            return  # already being cancelled
        cancellation = Cancellation(watch, self._grace_period, self._learn_pid)
        if not cancellation.advance():
            self._cancelling[run_id, watch.job] = cancellation
            _CANCELLING.add(self)
            self._tell_host_cancelled(watch)

    def _tell_host_cancelled(self, watch: Watch) -> None:
        """Tell our job host of a cancel, so it SIGKILLs the job after the grace period if we die first.

        A host this process did not start sees the job's marker at its next heartbeat instead
        (docs/design.md, "Cancelling a job").
        """
        host = self._host
        if watch.hosted and host is not None and watch.proc is host.proc and host.alive():
            try:
                host.submit({"cancelled": f"{watch.run_id}:{watch.job}"})
            except OSError:
                pass  # the host is gone: the cancel signals the job directly

    def _advance_cancels(self) -> None:
        """Take the due steps of the cancels in progress (a SIGKILL once a grace period ends)."""
        for key in [key for key, cancellation in self._cancelling.items() if cancellation.advance()]:
            del self._cancelling[key]

    def _finish_cancels(self, run_id: str | None = None) -> None:
        """Complete the cancels in progress (of `run_id`'s jobs only, if given): their jobs are gone."""
        for key in [key for key in self._cancelling if run_id is None or key[0] == run_id]:
            self._cancelling[key].finish()
            del self._cancelling[key]

    def close(self) -> None:
        """Stop watching and release descriptors; running jobs are left running, cancelled ones stopped.

        Returns once every job cancelled through this dispatcher is gone.

        Supervisors this process started stay referenced (and are reaped by any later
        `poll` of a dispatcher in this process), so closing never warns or leaves
        zombies behind while the process lives.
        """
        self._finish_cancels()
        for watch in self._watches.values():
            self._exits.close(watch)
            if not watch.hosted and watch.running():
                self._unreaped.append(watch)
        self._watches.clear()
        self._exits.unwatch_host()
        self._exits.shutdown()
        if self._host is not None:
            self._host.close()
            self._host = None


_CANCELLING: weakref.WeakSet[LocalDispatcher] = weakref.WeakSet()  # with cancels maybe in progress


@atexit.register
def _finish_cancels_at_exit() -> None:
    """A process that exits without closing its dispatcher still SIGKILLs the jobs it cancelled."""
    for dispatcher in list(_CANCELLING):
        dispatcher._finish_cancels()


__all__ = ["LocalDispatcher", "StartMethod", "parse_dispatch_id"]
