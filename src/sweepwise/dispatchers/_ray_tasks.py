"""Jobs as Ray tasks, owned by one detached supervisor actor per cluster (docs/backends.md, "Ray").

A Ray job costs a driver process and a second of the Jobs API's bookkeeping; a Ray task
starts in milliseconds on a worker Ray keeps warm. But a task dies with the process that
submitted it, and the controller must be free to die. So the controller never submits
tasks itself: it asks `TaskSupervisor`, a named, detached actor (`get_if_exists`, so every
controller finds the same one), which submits each job as a task and keeps what became
of it. A restarted controller asks the same actor again. One actor serves every
experiment on the cluster (its records are keyed by submission id, which names the
experiment and its incarnation), so the workers its tasks ran on stay warm from one
sweep to the next: Ray's workers belong to whoever leased them, and a new actor per
sweep would start a new set of worker processes, seconds each on a small machine.

`run_task` is the task: it makes the job's run directory and files on its node, runs the
job under sweepwise's supervisor (`sweepwise.runtime.supervise`) in a thread, and returns
the job's end as the fields of its FINISHED event, judged from the job's files as the local
dispatcher judges them. A cancelled task (`ray.cancel`, which raises KeyboardInterrupt in
it, or the supervisor's `stopping` answer when that interrupt never comes) stops its job's
process group, SIGKILL after the grace period, and still returns.

`RayTasks` is the controller's side: the same calls as `RayJobs` (submit, info, stop,
logs) plus `wait`, which returns as soon as any job changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from sweepwise.dispatchers._ray_client import SubmissionTaken, one_line

logger = logging.getLogger(__name__)

NAMESPACE = "sweepwise"
"""The Ray namespace of the supervisor actors."""

_LOG_TAIL = 16 * 1024  # bytes of a finished job's log kept for `sweepwise logs` off the node
_CALL_TIMEOUT = 60.0  # seconds to wait for the supervisor's answer before the cluster counts as unreachable
_METRICS_KEPT = 256  # metrics rows of a running job the supervisor keeps for the controller's next poll
_BATCHES_AHEAD = 8  # metrics batches waiting for an earlier one before it counts as lost
_KILL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL of a cancelled job
_ASK_EVERY = 1.0  # seconds between a task's questions to its supervisor whether its job was stopped
_REAP_TIMEOUT = 120.0  # seconds to wait for the job of a dead worker to be killed
_KEEPER_TIMEOUT = 120.0  # seconds to wait for the Ray job that keeps the supervisor to make it


SUPERVISOR = "sweepwise-supervisor-1"
"""The supervisor actor's name; its number changes when the methods a controller calls do, so an
older one is left alone. `metrics`, which only tasks call and only when their supervisor has it,
came later without a new number: a new number would leave the tasks a sweep has running under the
older actor unknown to an upgraded controller, which would run their jobs again."""


class TaskSupervisor:
    """The actor that submits an experiment's jobs as tasks and keeps their records.

    Records are in memory: when the actor dies, the tasks it owned die with it, and a
    restarted controller finds a new, empty actor and reports each submitted job lost.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, dict[str, Any]] = {}
        self._logs: dict[str, str] = {}
        self._refs: dict[str, Any] = {}
        self._where: dict[str, tuple[str, str]] = {}  # running job: (its node's id, its status file there)
        self._stopping: set[str] = set()  # running jobs asked to stop (their tasks ask: `stopping`)
        self._batches: dict[str, dict[int, list[dict[str, Any]]]] = {}  # metrics batches ahead of their turn
        self._follows: set[asyncio.Task[None]] = set()
        self._version = 0
        self._changed: asyncio.Event | None = None
        self._task: Any = None

    def _bump(self) -> None:
        self._version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def submit(self, sid: str, payload: dict[str, str], options: dict[str, Any]) -> bool:
        """Submit the job `sid` as a task, unless it was submitted before; False then."""
        if sid in self._jobs:
            return False
        import ray

        if self._task is None:
            self._task = ray.remote(run_task)
        me = ray.get_runtime_context().current_actor
        # max_retries=0: Ray must never run a job a second time on its own (a crashed worker's
        # job is failed, and the lifecycle decides: docs/design.md, "The crash-safety protocol").
        ref = self._task.options(**options, max_retries=0, name=sid).remote(payload, sid, me)
        self._jobs[sid] = {"status": "PENDING", "submitted_at": time.time()}
        self._refs[sid] = ref
        follow = asyncio.get_running_loop().create_task(self._follow(sid, ref))
        self._follows.add(follow)
        follow.add_done_callback(self._follows.discard)
        self._bump()
        return True

    async def started(self, sid: str, at: float, node_id: str = "", status_path: str = "") -> None:
        """The task `sid` says its job starts, on node `node_id`, its life in `status_path` there."""
        record = self._jobs.get(sid)
        if node_id and status_path and sid in self._refs:
            self._where[sid] = (node_id, status_path)
        if record is not None and record["status"] == "PENDING":
            record.update(status="RUNNING", started_at=at)
            self._bump()

    async def metrics(self, sid: str, rows: list[dict[str, Any]] | dict[str, Any], batch: int = -1) -> None:
        """The task `sid` passes on the metrics rows its job wrote since its last call (batch
        number `batch`); the last `_METRICS_KEPT` rows, in the job's order, are read with the
        record at each poll.

        An async actor may run two calls out of order: a batch ahead of its turn waits for the
        ones before it (unless `_BATCHES_AHEAD` wait: one was lost on its way).
        """
        record = self._jobs.get(sid)
        if record is None or record["status"] != "RUNNING":
            return
        kept = record.setdefault("metrics", [])
        if isinstance(rows, dict) or batch < 0:  # one row, from a task of an earlier version
            kept.extend([rows] if isinstance(rows, dict) else rows)
        else:
            waiting = self._batches.setdefault(sid, {})
            waiting[batch] = rows
            turn = int(record.get("metrics_batch", 0))
            if turn not in waiting and len(waiting) > _BATCHES_AHEAD:
                turn = min(waiting)
            while turn in waiting:
                kept.extend(waiting.pop(turn))
                turn += 1
            record["metrics_batch"] = turn
        del kept[:-_METRICS_KEPT]

    async def _follow(self, sid: str, ref: Any) -> None:
        from ray import exceptions

        record = self._jobs[sid]
        try:
            outcome = dict(await ref)
            self._logs[sid] = str(outcome.pop("log", "") or "")
            record.update(status="FINISHED", outcome=outcome)
        except exceptions.TaskCancelledError:
            record.update(status="STOPPED")
        except exceptions.NodeDiedError as exc:
            record.update(status="LOST", message=one_line(exc))
        except Exception as exc:  # the task raised, its worker died (OOM...), or Ray failed
            message = f"{type(exc).__name__}: {one_line(exc)}"
            record.update(status="FAILED", message=message + await self._reap(sid))
        record["ended_at"] = time.time()
        self._refs.pop(sid, None)
        self._stopping.discard(sid)
        self._where.pop(sid, None)
        self._batches.pop(sid, None)
        self._bump()

    async def _reap(self, sid: str) -> str:
        """Kill what is left of the job of a task whose worker died; how that went, for the record.

        A worker killed outright (SIGKILL, the OOM killer) leaves its job's processes running,
        and a retry would run the job twice at once. A task pinned to the job's node kills the
        job's process group, found from the job's status file there.
        """
        where = self._where.get(sid)
        if where is None:
            return ""  # the job never started
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node_id, status_path = where
        strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
        reaper = ray.remote(reap_job).options(num_cpus=0, max_retries=3, scheduling_strategy=strategy)
        try:
            found = await asyncio.wait_for(reaper.remote(status_path), _REAP_TIMEOUT)
        except Exception as exc:  # the node is gone too, or Ray failed: say so
            return f"; its job's processes could not be checked ({type(exc).__name__})"
        return {"killed": "; its job's processes were killed", "stopped": "; its job stopped with it"}.get(
            found, ""
        )

    async def infos(self, sids: list[str]) -> tuple[int, dict[str, dict[str, Any] | None]]:
        """The version of the records, and the record of each job (None: never submitted here)."""
        return self._version, {sid: self._jobs.get(sid) for sid in sids}

    async def wait(self, version: int, timeout: float) -> int:
        """Return the records' version once it is past `version`, or after `timeout` seconds."""
        if self._version <= version:
            if self._changed is None:
                self._changed = asyncio.Event()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                pass
        return self._version

    async def stop(self, sid: str) -> bool:
        """Cancel the task of job `sid`; False when it has ended or is unknown.

        `ray.cancel` is best effort: a task may never see its KeyboardInterrupt. So the job
        is also marked, and its task, which asks every `_ASK_EVERY` s (`stopping`), stops it.
        """
        ref = self._refs.get(sid)
        if ref is None:
            return False
        import ray

        self._stopping.add(sid)
        ray.cancel(ref)
        return True

    async def stopping(self, sid: str) -> bool:
        """Whether job `sid` was asked to stop (its task asks)."""
        return sid in self._stopping

    async def logs(self, sid: str) -> str | None:
        """The end of a finished job's log; None while it runs or when it is unknown."""
        return self._logs.get(sid)

    async def ids(self) -> list[str]:
        """Every job submitted here and not forgotten, in order."""
        return list(self._jobs)

    async def forget(self, prefix: str) -> int:
        """Drop the records of the ended jobs whose submission ids start with `prefix`; how many."""
        ended = [
            sid for sid, record in self._jobs.items() if sid.startswith(prefix) and sid not in self._refs
        ]
        for sid in ended:
            del self._jobs[sid]
            self._logs.pop(sid, None)
        return len(ended)


def run_task(payload: Mapping[str, str], sid: str, supervisor: Any) -> dict[str, Any]:
    """The Ray task of one job: run it on this node and return its end (see the module docstring).

    Args:
        payload: the job protocol's variables (`sweepwise.runtime.remote`) and the job's env.
        sid: the job's submission id.
        supervisor: the `TaskSupervisor` actor's handle, told when the job starts.
    """
    from sweepwise.core.errors import ConfigError
    from sweepwise.runtime.remote import prepare_job
    from sweepwise.runtime.results import read_new_metrics
    from sweepwise.runtime.supervise import Supervisor

    try:
        job, plan = prepare_job({**os.environ, **payload})
    except (ConfigError, OSError) as exc:
        error = f"cannot prepare the job on its Ray node: {exc}"
        return {"exit_code": 2, "error": error, "ended_at": time.time()}
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    supervisor.started.remote(sid, time.time(), node_id, os.fspath(plan.status_path))
    supervision = Supervisor(
        plan.argv,
        os.fspath(plan.cwd),
        plan.env,
        os.fspath(plan.log_path),
        os.fspath(plan.status_path),
        os.fspath(plan.run_dir),
        plan.job_name,
        5.0,
        None,
        job.timeout,
        status_extra={
            # The supervisor is this Ray worker, which outlives the job: its pid says nothing
            # of the job's life, and signalling it would kill the worker, not the job.
            "supervisor_pid": None,
            "supervisor_start": None,
            "ray_worker_pid": os.getpid(),
        },
        guard_group=True,  # a worker killed outright takes its job with it
    )
    codes: list[int] = []
    done = threading.Event()

    def run() -> None:
        try:
            codes.append(supervision.run())
        finally:
            done.set()

    # Not `Thread.join`: a KeyboardInterrupt inside it can leave `is_alive()` False while the
    # thread still runs (a CPython race); an Event's wait survives the interruption.
    threading.Thread(target=run, daemon=True).start()
    cancelled_at: float | None = None
    metrics_offset, batch = 0, 0
    pass_on = getattr(supervisor, "metrics", None)  # None: an older supervisor (see `SUPERVISOR`)
    ask = getattr(supervisor, "stopping", None)  # likewise
    asked_at, answer = time.monotonic(), None
    while not done.is_set():
        try:
            done.wait(0.5)
            if pass_on is not None:  # the controller cannot read this node's files
                rows, metrics_offset = read_new_metrics(plan.metrics_path, metrics_offset)
                if rows:
                    try:
                        pass_on.remote(sid, rows, batch)
                    except Exception:  # Ray raises many types; lost rows must not end the task
                        logger.warning("job %s: %d metrics rows could not be passed on", sid, len(rows))
                    batch += 1
            if cancelled_at is None and ask is not None:
                if answer is None and time.monotonic() - asked_at >= _ASK_EVERY:
                    asked_at, answer = time.monotonic(), _ask(ask, sid)
                stop, answer = _answer(answer)
                if stop:  # the cancel's KeyboardInterrupt never came
                    cancelled_at = time.monotonic()
                    supervision.cancel(signal.SIGTERM)
            if cancelled_at is not None and time.monotonic() - cancelled_at > _KILL_GRACE:
                supervision.cancel(signal.SIGKILL)
        except KeyboardInterrupt:  # ray.cancel: stop the job, then return its end
            if cancelled_at is None:
                cancelled_at = time.monotonic()
                supervision.cancel(signal.SIGTERM)
    return _outcome(job.run_id, job.type, job.attempt, plan, sid, codes[0] if codes else -1)


def _ask(ask: Any, sid: str) -> Any:
    """Ask the supervisor whether job `sid` was stopped; the answer to come (None: not asked)."""
    try:
        return ask.remote(sid)
    except Exception:  # Ray raises many types: ask again next time
        return None


def _answer(answer: Any) -> tuple[bool, Any]:
    """Whether the supervisor's `answer` has come and says stop, and the answer still to come.

    Never waits: a task blocked in `ray.get` lends its CPU to another task meanwhile.
    """
    if answer is None:
        return False, None
    import ray

    try:
        ready, _ = ray.wait([answer], timeout=0)
        return (bool(ray.get(ready[0])), None) if ready else (False, answer)
    except Exception:  # Ray raises many types: ask again next time
        return False, None


def reap_job(status_path: str) -> str:
    """The Ray task that kills the process group of a job whose task's worker died; what it found.

    The job's status file names its pid (its process group's id) and start time; a process
    that is not that one (its pid reused) is left alone. The job's guard
    (`sweepwise.runtime.group_guard`) has usually stopped it already.

    Returns:
        "killed" (it was running), "stopped" (it had ended) or "exited" (it had
        ended before its worker, with a final status).
    """
    from sweepwise.runtime.results import read_status
    from sweepwise.runtime.supervise import process_alive, signal_group

    status = read_status(status_path) or {}
    pid, start = status.get("pid"), status.get("pid_start")
    if status.get("state") == "exited":
        return "exited"
    if not isinstance(pid, int) or not process_alive(pid, start if isinstance(start, int) else None):
        return "stopped"
    return "killed" if signal_group(pid, signal.SIGKILL) else "stopped"


def _outcome(run_id: str, job_type: Any, attempt: int, plan: Any, sid: str, code: int) -> dict[str, Any]:
    """The fields of the job's FINISHED event, judged from its files, and the end of its log."""
    from sweepwise.dispatchers._job_files import JobFiles
    from sweepwise.runtime.results import read_status

    class _Files(JobFiles):
        @property
        def dispatch_id(self) -> str:
            return sid

    files = _Files(run_id, job_type, plan.run_dir, time.time(), attempt)
    status = read_status(os.fspath(plan.status_path))
    if status is None or status.get("state") != "exited":  # its final status could not be written
        status = {"exit_code": code, "ended_at": time.time()}
    event = files.finished_event(status)
    try:
        with open(plan.log_path, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - _LOG_TAIL))
            log = handle.read().decode(errors="replace")
    except OSError:
        log = ""
    return {
        "exit_code": event.exit_code,
        "result": event.result,
        "error": event.error,
        "timed_out": event.timed_out,
        "ended_at": event.at,
        "started_at": status.get("started_at"),
        "log": log,
    }


class RayTasks:
    """The controller's calls to the experiment's `TaskSupervisor` (made or found on connecting).

    Args:
        address: the cluster (`auto`, `host:6379`, `ray://host:10001`); None: the one
            running on this machine, else a new one started in this process.
        name: the supervisor actor's name (`SUPERVISOR`).
        jobs_address: the cluster's Jobs API, for the job that keeps the actor (default: `address`).
        python: the interpreter on the nodes that has sweepwise.

    Raises:
        ConfigError: Ray is not installed, or the cluster cannot be joined.
    """

    def __init__(
        self, address: str | None, name: str, *, jobs_address: str | None = None, python: str = "python"
    ) -> None:
        self._ray = _join(address)
        self._name = name
        self._jobs_address = jobs_address or address
        self._python = python
        self._actor = self._find_actor()
        self.address = address or "this machine's Ray cluster"
        if not hasattr(self._actor, "metrics"):
            logger.warning(
                "the Ray supervisor actor %s on %s predates early stopping of tasks: a stopper sees "
                "no reports from them until it is restarted, between sweeps (docs/backends.md, "
                '"Tasks or Ray jobs")',
                name,
                self.address,
            )

    def _find_actor(self) -> Any:
        """The supervisor actor: found by name, else made by a Ray job that keeps it (`keep_supervisor`).

        Ray reuses worker processes only for a job whose driver is alive, and an actor's tasks
        belong to the job that made the actor. Made by a controller, the actor would outlive that
        controller's job, and every later task would wait for a new worker process (seconds each
        on a small machine). Made by a Ray job that never ends, its tasks keep warm workers. A
        cluster whose Jobs API cannot be reached gets the actor from this process instead.
        """
        try:
            return self._ray.get_actor(self._name, namespace=NAMESPACE)
        except ValueError:  # no such actor yet
            pass
        if self._start_keeper():
            deadline = time.monotonic() + _KEEPER_TIMEOUT
            while time.monotonic() < deadline:
                try:
                    return self._ray.get_actor(self._name, namespace=NAMESPACE)
                except ValueError:
                    time.sleep(0.2)
            logger.warning("the Ray job %s made no supervisor actor; making it here", self._name)
        return make_supervisor(self._ray, self._name)

    def _start_keeper(self) -> bool:
        """Submit the Ray job that makes and keeps the supervisor actor; False if it cannot be."""
        try:
            from ray.job_submission import JobSubmissionClient

            client = JobSubmissionClient(self._jobs_address)
            client.submit_job(
                submission_id=f"{self._name}-{uuid.uuid4().hex[:8]}",
                entrypoint=f"{shlex.quote(self._python)} -m {__name__} {shlex.quote(self._name)}",
                entrypoint_num_cpus=0,
                metadata={"sweepwise": "the supervisor of sweepwise's Ray tasks"},
            )
        except Exception as exc:  # Ray raises many types
            logger.warning("cannot start the Ray job that keeps the supervisor actor: %s", one_line(exc))
            return False
        return True

    def _call(self, method: str, *args: Any, timeout: float = _CALL_TIMEOUT) -> Any:
        """Call the supervisor; one that died is replaced by a new (empty) one and called again."""
        from ray import exceptions

        try:
            return self._ray.get(getattr(self._actor, method).remote(*args), timeout=timeout)
        except exceptions.RayActorError:
            self._actor = self._find_actor()
            return self._ray.get(getattr(self._actor, method).remote(*args), timeout=timeout)

    def submit(self, sid: str, payload: dict[str, str], options: dict[str, Any]) -> None:
        """Submit the job `sid` as a task.

        Raises:
            SubmissionTaken: the supervisor has a job `sid` already.
        """
        if not self._call("submit", sid, payload, options):
            raise SubmissionTaken(sid)

    def infos(self, sids: list[str]) -> tuple[int, dict[str, dict[str, Any] | None]]:
        """The records' version and each job's record (None: the supervisor never had it)."""
        version, records = self._call("infos", list(sids))
        return int(version), dict(records)

    def info(self, sid: str) -> dict[str, Any] | None:
        """The job's record; None when the supervisor never had it."""
        return self.infos([sid])[1].get(sid)

    def wait(self, version: int, timeout: float) -> int:
        """The records' version, once past `version` or after `timeout` seconds."""
        return int(self._call("wait", version, timeout, timeout=timeout + _CALL_TIMEOUT))

    def stop(self, sid: str) -> bool:
        """Cancel the job's task; False when it had ended or is unknown."""
        return bool(self._call("stop", sid))

    def logs(self, sid: str) -> str | None:
        """The end of a finished job's log, as its node read it."""
        text = self._call("logs", sid)
        return None if text is None else str(text)

    def submission_ids(self) -> list[str]:
        """Every job the supervisor has, in order."""
        return [str(sid) for sid in self._call("ids")]

    def forget(self, prefix: str) -> None:
        """Drop the supervisor's records of the ended jobs whose ids start with `prefix` (a sweep's)."""
        self._call("forget", prefix)


def make_supervisor(ray: Any, name: str) -> Any:
    """Make (or find) the named, detached supervisor actor from this process."""
    actor = ray.remote(TaskSupervisor)
    return actor.options(
        name=name,
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        max_concurrency=1000,
        max_restarts=0,
    ).remote()


def keep_supervisor(name: str) -> None:
    """The Ray job that makes the supervisor actor and lives as long as the cluster, so its tasks'
    workers stay warm: `python -m sweepwise.dispatchers._ray_tasks NAME`."""
    import ray

    ray.init(address="auto", namespace=NAMESPACE, log_to_driver=False, configure_logging=False)
    try:
        ray.get_actor(name, namespace=NAMESPACE)
        return  # another controller's keeper made it first: that one keeps it
    except ValueError:
        make_supervisor(ray, name)
    while True:
        time.sleep(3600)


def _join(address: str | None) -> Any:
    """`ray`, with this process joined to the cluster at `address` as a driver.

    Raises:
        ConfigError: Ray is not installed, `address` is a dashboard URL, or the cluster
            cannot be joined.
    """
    from sweepwise.core.errors import ConfigError
    from sweepwise.dispatchers._ray_client import EXTRA

    try:
        import ray
    except ImportError:
        raise ConfigError("dispatcher", f"Ray is not installed: run {EXTRA}") from None
    if address is not None and address.startswith(("http://", "https://")):
        raise ConfigError(
            "dispatcher.address",
            f"{address!r} is the dashboard's URL; jobs run as Ray tasks need the cluster's address "
            "(auto, host:6379 or ray://host:10001): set it here and the URL as dashboard_address",
        )
    if ray.is_initialized():
        return ray
    settings: dict[str, Any] = {
        "namespace": NAMESPACE,
        "log_to_driver": False,
        "configure_logging": False,
    }
    try:
        try:
            ray.init(address=address or "auto", **settings)
        except ConnectionError:
            if address is not None:
                raise
            ray.init(include_dashboard=True, **settings)  # no cluster here: one in this process
    except Exception as exc:  # Ray raises ConnectionError, ValueError, RuntimeError...
        raise ConfigError(
            "dispatcher.address",
            f"cannot join the Ray cluster at {address or 'auto'!r} ({one_line(exc)}); start it "
            "(ray start --head) or fix the address",
        ) from None
    return ray


__all__ = [
    "NAMESPACE",
    "SUPERVISOR",
    "RayTasks",
    "TaskSupervisor",
    "keep_supervisor",
    "make_supervisor",
    "reap_job",
    "run_task",
]

if __name__ == "__main__":
    import sys

    keep_supervisor(sys.argv[1])
