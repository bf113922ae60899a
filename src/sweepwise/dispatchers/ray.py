"""The Ray dispatcher: each job a Ray task, or a Ray job submitted through the cluster's Jobs API.

`mode` says which (`_ray_job.route`): `auto` (the default) runs Python callables (a
recipe's entrypoint, the Ax facade's function objective) as Ray tasks and commands as Ray
jobs; `task` runs every job on one node as a task; `job` every job as a Ray job. A job
on several nodes is always a Ray job. Tasks are owned by a detached supervisor actor
(`_ray_tasks`), so they outlive the controller; their life is read from that actor, and
their end was judged on their node from the job's files.

A job becomes one Ray job (or task) whose submission id is
`sweepwise-<experiment>-<incarnation>-<run id>-<job>` (`train`, `eval`, `train.2`: the
job's file stem). Its entrypoint is fixed, `python -m sweepwise.runtime.remote`, which
runs the job from `$SWEEPWISE_JOB` under sweepwise's supervisor and prints the job's
result as the log's last `SWEEPWISE_RESULT {json}` line; the job itself travels in the
runtime env's `env_vars`, so no hyperparameter value passes through a shell.

Crash safety: before anything is submitted, the job's claim `<run dir>/<job>.dispatch.json`
is created exclusively on this machine; and Ray refuses a second job with a submission
id it knows. A restarted controller finds the job by its claim and asks the cluster
for its submission id: known, it is watched again; unknown and never submitted (the
controller stopped in between), it is submitted now; unknown but submitted, it is lost
(the cluster was restarted) and retried as any lost job.

A job's life comes from `get_job_info` (`STATUS_PHASES`): a pending or running job
gives heartbeats, a succeeded one its result from its log, a failed one Ray's message
and its last output, a stopped one is cancelled.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from sweepwise.core.errors import ConfigError, DispatchError, RunFilesError
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.dispatchers import register_dispatcher
from sweepwise.dispatchers._claims import (
    claimant,
    create_claim,
    new_claim,
    owned_attempt,
    read_claim,
    set_claim_aside,
    update_claim,
)
from sweepwise.dispatchers._ray_client import RayJobs, SubmissionTaken, connect, one_line
from sweepwise.dispatchers._ray_job import (
    build_submission,
    id_prefix,
    parse_options,
    parse_submission_id,
    route,
    submission_id,
    task_request,
)
from sweepwise.dispatchers._ray_tasks import SUPERVISOR, RayTasks
from sweepwise.dispatchers._ray_watch import (
    STATUS_PHASES,
    JobRecord,
    RayPhase,
    RayWatch,
    clean_log,
    latest_heartbeats,
)
from sweepwise.dispatchers._reported_metrics import metrics_event
from sweepwise.dispatchers.launch import run_dir_for
from sweepwise.runtime import DISPATCH, LOG, METRICS, job_file, job_stem
from sweepwise.runtime.results import metrics_from_lines, read_new_metrics

logger = logging.getLogger(__name__)

_RESULT_TAIL = 2000  # log lines searched for a finished job's result
_FAILURE_TAIL = 50  # log lines searched for a failed job's last output
_LOG_METRICS_EVERY = 5.0  # seconds between reads of a running job's whole log for its new metrics rows


@register_dispatcher("ray")
class RayDispatcher:
    """Runs each job as a Ray task or a Ray job (through the Jobs API) on a Ray cluster.

    Not thread-safe: one controller thread drives it. Options come from the spec's
    `dispatcher:` mapping.

    Args:
        runs_root: the root of the run directories (claims are kept there, on this machine).
        experiment: the experiment's name.
        incarnation: the experiment's incarnation id, in every claim and submission id; a
            claim of another incarnation is never taken as this run's.
        address: the cluster: `auto` (the one `ray start` started on this machine), its
            GCS address `host:6379`, a Ray Client address `ray://host:10001` or its
            dashboard's URL `http://host:8265`. Default: the cluster running on this
            machine, else a new one started in this process with `ray.init()` (it ends
            with the controller, and its jobs with it).
        dashboard_address: the dashboard's URL, when it cannot be found from `address`.
        num_cpus: CPUs each job reserves (per node), default 1.
        resources: custom resources each job reserves (per node), e.g. `{accelerator_type:A100: 1}`.
        runtime_env: Ray's runtime env for every job (`pip`, `working_dir`, `env_vars`...).
            With a `working_dir`, jobs run in Ray's copy of it; without, in their spec's
            directory, which must be on a filesystem the nodes share.
        remote_runs_dir: where jobs make their run directories on the nodes (default: this
            `runs_root`, for a cluster that shares this machine's filesystem).
        python: the interpreter on the nodes that has sweepwise (default `python`).
        placement_strategy: how a job on several nodes spreads its placement group
            (`STRICT_SPREAD`, one node each, by default; `SPREAD`, `PACK`, `STRICT_PACK`).
        poll_interval: seconds between reads of the watched jobs' statuses.
        mode: `auto` (Python callables as tasks, commands as Ray jobs), `task` or `job`.
            Tasks need `address` to be the cluster's (`auto`, `host:6379`, `ray://...`),
            not its dashboard's URL.

    Raises:
        ConfigError: Ray is not installed, the cluster cannot be reached, or an option
            is wrong (one line each).
    """

    def __init__(
        self,
        runs_root: Path,
        experiment: str,
        *,
        incarnation: str | None = None,
        address: str | None = None,
        dashboard_address: str | None = None,
        num_cpus: float = 1,
        resources: dict[str, float] | None = None,
        runtime_env: dict[str, Any] | None = None,
        remote_runs_dir: str | None = None,
        python: str | None = None,
        placement_strategy: str | None = None,
        poll_interval: float = 1.0,
        mode: str = "auto",
    ) -> None:
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float) or poll_interval < 0:
            raise ConfigError("dispatcher.poll_interval", f"expected seconds >= 0, got {poll_interval!r}")
        for name, value in (("address", address), ("dashboard_address", dashboard_address)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"dispatcher.{name}", f"expected an address string, got {value!r}")
        run_dir_for(Path(runs_root), experiment, "x")  # validates the experiment name
        self._options = parse_options(
            num_cpus=num_cpus,
            resources=resources,
            runtime_env=runtime_env,
            remote_runs_dir=remote_runs_dir,
            python=python,
            placement_strategy=placement_strategy,
            mode=mode,
        )
        self._runs_root = Path(os.path.abspath(runs_root))
        self._experiment = experiment
        self._incarnation = incarnation
        self._prefix = id_prefix(experiment, incarnation)
        submission_id(self._prefix, "x", "train")  # the ids are ones Ray takes
        self._address = address
        self._dashboard_address = dashboard_address
        self._jobs_client: RayJobs | None = None
        self._tasks_client: RayTasks | None = None
        self._task_version = -1
        if self._options.mode == "task":
            self._tasks_client = RayTasks(
                address, SUPERVISOR, jobs_address=dashboard_address, python=self._options.python
            )
        else:
            self._jobs_client = connect(address, dashboard_address)
        self._poll_interval = float(poll_interval)
        self._next_poll = 0.0
        self._watches: dict[tuple[str, str], RayWatch] = {}
        self._finished: set[tuple[str, str]] = set()
        self._pending: list[JobEvent] = []  # events read by `wait`, for the next `poll`
        self._unreachable = False
        self._claimant = claimant()

    @property
    def address(self) -> str:
        """The cluster: its Jobs API's URL (its dashboard), else the address tasks were sent to."""
        if self._jobs_client is not None:
            return self._jobs_client.address
        return self._tasks.address

    @property
    def _jobs(self) -> RayJobs:
        """The cluster's Jobs API, connected on first use."""
        if self._jobs_client is None:
            self._jobs_client = connect(self._address, self._dashboard_address)
        return self._jobs_client

    @property
    def _tasks(self) -> RayTasks:
        """The cluster's supervisor actor of tasks, joined on first use."""
        if self._tasks_client is None:
            self._tasks_client = RayTasks(
                self._address,
                SUPERVISOR,
                jobs_address=self._dashboard_address,
                python=self._options.python,
            )
        return self._tasks_client

    def end_sweep(self) -> None:
        """Drop the supervisor actor's records of this sweep's tasks: every job is settled."""
        if self._tasks_client is not None:
            try:
                self._tasks_client.forget(self._prefix)
            except Exception as exc:  # Ray raises many types: the records stay, no harm done
                logger.warning("cannot tidy the Ray supervisor's records of this sweep: %s", one_line(exc))

    # -- names and files -----------------------------------------------------------------

    def submission_id(self, run_id: str, stem: str) -> str:
        """The Ray submission id (and dispatch id) of a run's job."""
        return submission_id(self._prefix, run_id, stem)

    def _parse(self, dispatch_id: str) -> tuple[str, str]:
        """`(run id, stem)` of a dispatch id made by `submission_id`."""
        parsed = parse_submission_id(self._prefix, dispatch_id)
        if parsed is None:
            raise DispatchError(
                f"malformed Ray dispatch id {dispatch_id!r}; expected {self._prefix}RUN_ID-JOB"
            )
        return parsed

    def _claim_path(self, run_id: str, stem: str) -> Path:
        return Path(job_file(run_dir_for(self._runs_root, self._experiment, run_id), stem, DISPATCH))

    # -- dispatching ---------------------------------------------------------------------

    def dispatch(self, job: JobDefinition) -> str:
        """Submit `job` as a Ray job, unless it was ever submitted (or claimed) before.

        Idempotent per (run id, job type, attempt): an existing claim is settled with
        `find` and its job watched; Ray refuses a submission id it knows.

        Returns:
            The dispatch id: the job's submission id.

        Raises:
            ConfigError: the job's submission id is not one Ray takes.
            RunFilesError: the claim cannot be written.
            DispatchError: Ray refused the submission, or the cluster cannot be reached.
        """
        stem = job_stem(job.type.short, job.attempt)
        key = (job.run_id, stem)
        sid = self.submission_id(job.run_id, stem)
        if key in self._watches:
            return sid
        runs_root = self._options.remote_runs_dir or str(self._runs_root)
        job = job.model_copy(update={"cwd": os.path.abspath(job.cwd)}) if job.cwd else job
        submission = build_submission(
            job,
            submission_id=sid,
            experiment=self._experiment,
            runs_root=runs_root,
            incarnation=self._incarnation,
            options=self._options,
        )
        how = route(job, self._options.mode)
        claim = self._claim_path(job.run_id, stem)
        record = new_claim(
            job.run_id,
            stem,
            job.attempt,
            claimant=self._claimant,
            incarnation=self._incarnation,
            dispatcher="ray",
            submission_id=sid,
            route=how,
        )
        try:
            created = create_claim(claim, record)
        except OSError as exc:
            raise RunFilesError(f"run {job.run_id}: cannot write the {stem} job's claim", exc) from exc
        if not created:  # claimed before (the claim is the idempotency key)
            existing = self.find(job.run_id, job.type, job.attempt)
            if existing is None:  # a claim without a submission, set aside: submit now
                return self.dispatch(job)
            if key not in self._watches and key not in self._finished:
                self.reattach(existing, job.run_id, job.type)
            return existing
        try:
            if how == "task":
                env_vars = dict(submission.runtime_env["env_vars"])
                self._tasks.submit(sid, env_vars, task_request(submission, job, self._options))
            else:
                self._jobs.submit(sid, **submission.request())
        except SubmissionTaken:
            logger.info("run %s: Ray has the %s job %s already; watching it", job.run_id, stem, sid)
        except Exception as exc:  # Ray raises RuntimeError, requests' errors, ValueError...
            if not self._submitted_after_all(sid, how):
                claim.unlink(missing_ok=True)
                raise DispatchError(
                    f"run {job.run_id}: Ray refused the job {sid} at {self.address}: {one_line(exc)}"
                ) from exc
        try:
            update_claim(claim, self._incarnation, submitted_at=time.time())
        except OSError as exc:  # the cluster knows the job: `find` asks it first
            logger.warning("run %s: cannot update the %s claim: %s", job.run_id, stem, exc)
        self._watch(key, RayWatch(job.run_id, job.type, job.attempt, sid, claim, route=how))
        return sid

    def _known(self, sid: str, how: str) -> bool:
        """Whether the cluster (for a task: the supervisor actor) has the job `sid`."""
        if how == "task":
            return self._tasks.info(sid) is not None
        return self._jobs.info(sid) is not None

    def _submitted_after_all(self, sid: str, how: str) -> bool:
        """After a submission raised: does the cluster have the job anyway (the answer was lost)?"""
        try:
            return self._known(sid, how)
        except Exception:  # Ray raises many types: still unreachable, so it was not submitted
            return False

    def _route_of(self, run_id: str, stem: str) -> str:
        """How the claimed job runs, from its claim (`job` for a claim made before tasks existed)."""
        record = read_claim(self._claim_path(run_id, stem), self._incarnation) or {}
        return "task" if record.get("route") == "task" else "job"

    def _watch(self, key: tuple[str, str], watch: RayWatch) -> None:
        self._watches[key] = watch
        self._finished.discard(key)
        self._next_poll = 0.0  # read its status at the next poll

    # -- finding and watching ------------------------------------------------------------

    def find(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The dispatch id of the job if it was ever submitted (or claimed), else None.

        A claimed job is looked up on the cluster by its submission id. One the cluster
        does not know is lost when the claim says it was submitted (the cluster was
        restarted; `poll` reports it), else never submitted: the claim is set aside and
        None returned, for the job to be submitted anew.

        Raises:
            DispatchError: the claim is of another experiment incarnation, or the cluster
                cannot be asked about a claimed job.
        """
        stem = job_stem(job_type.short, attempt)
        sid = self.submission_id(run_id, stem)
        if (run_id, stem) in self._watches:
            return sid
        path = self._claim_path(run_id, stem)
        record = read_claim(path, self._incarnation) or {}
        if not path.exists():
            return None
        how = "task" if record.get("route") == "task" else "job"
        try:
            known = self._known(sid, how)
        except Exception as exc:  # Ray raises many types; without the cluster nothing is settled
            raise DispatchError(
                f"run {run_id}: cannot ask the Ray cluster at {self.address} for {sid}: {one_line(exc)}"
            ) from exc
        if known or record.get("submitted_at") is not None:
            return sid
        logger.info(
            "run %s: the %s job was claimed but never submitted; it will be submitted now", run_id, stem
        )
        set_claim_aside(path)
        return None

    def reattach(self, dispatch_id: str, run_id: str, job_type: JobTypes) -> None:
        """Watch a Ray job submitted before (by this or an earlier controller process).

        Raises:
            DispatchError: the id is malformed or belongs to another run or job type.
        """
        id_run, stem = self._parse(dispatch_id)
        attempt = owned_attempt(dispatch_id, id_run, stem, run_id, job_type)
        key = (run_id, stem)
        if key not in self._watches:
            claim = self._claim_path(run_id, stem)
            how = self._route_of(run_id, stem)
            self._watch(key, RayWatch(run_id, job_type, attempt, dispatch_id, claim, route=how))

    # -- polling -------------------------------------------------------------------------

    def poll(self) -> list[JobEvent]:
        """Events of the watched jobs: those `wait` read, then one read of their statuses.

        Statuses are read at most once per `poll_interval`. A cluster that cannot be
        reached gives no events (and one warning): the jobs' silence then counts, as it
        should, since nothing says they are alive.
        """
        events, self._pending = self._pending, []
        if self._watches and time.monotonic() >= self._next_poll:
            events.extend(self._read())
        return latest_heartbeats(events)

    def wait(self, timeout: float) -> None:
        """Return after `timeout` seconds, or as soon as a watched job starts or ends.

        Tasks are waited for in the supervisor actor, which answers as soon as one changes;
        Ray jobs' statuses are read every `poll_interval` (at least every 0.2 s). What is
        read is kept for the next `poll`.
        """
        deadline = time.monotonic() + timeout
        step = max(self._poll_interval, 0.2)
        while self._watches:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            jobs = any(watch.route == "job" for watch in self._watches.values())
            tasks = not jobs or any(watch.route == "task" for watch in self._watches.values())
            if tasks and not self._unreachable:
                try:
                    span = min(step, remaining) if jobs else remaining
                    version = self._tasks.wait(self._task_version, span)
                except Exception as exc:  # Ray raises many types: read again at the next step
                    self._unreachable_now(exc)
                    time.sleep(min(step, max(0.0, deadline - time.monotonic())))
                else:
                    if version == self._task_version and not jobs:
                        continue  # the wait timed out with nothing new
            else:
                time.sleep(min(step, remaining))
            self._pending.extend(self._read())
            if any(event.kind is not EventKind.HEARTBEAT for event in self._pending):
                return
        time.sleep(max(0.0, deadline - time.monotonic()))

    def _read(self) -> list[JobEvent]:
        """One read of every watched job's status (the tasks' in one call to their supervisor)."""
        self._next_poll = time.monotonic() + self._poll_interval
        events: list[JobEvent] = []
        reached = True
        records: dict[str, dict[str, Any] | None] | None = None
        task_ids = [watch.submission_id for watch in self._watches.values() if watch.route == "task"]
        if task_ids:
            try:
                self._task_version, records = self._tasks.infos(task_ids)
            except Exception as exc:  # Ray raises many types: the tasks are read again next time
                self._unreachable_now(exc)
                reached = False
        for key, watch in list(self._watches.items()):
            if watch.route == "task":
                if records is None:
                    continue
                events.extend(watch.task_events(records.get(watch.submission_id), self.address))
            else:
                try:
                    events.extend(self._read_one(watch))
                    if not watch.done and watch.started_at is not None:
                        events.extend(self._job_metrics(watch))
                except Exception as exc:  # Ray raises many types: this job is read again next time
                    self._unreachable_now(exc)
                    reached = False
                    continue
            if watch.done:
                del self._watches[key]
                self._finished.add(key)
        self._unreachable = not reached
        return events

    def _unreachable_now(self, exc: Exception) -> None:
        if not self._unreachable:
            logger.warning(
                "cannot reach the Ray cluster at %s (%s); its jobs are read again later",
                self.address,
                one_line(exc),
            )
        self._unreachable = True

    def _read_one(self, watch: RayWatch) -> list[JobEvent]:
        details = self._jobs.info(watch.submission_id)
        if details is None:
            return watch.lost(self.address)
        record = JobRecord.read(details)
        phase = STATUS_PHASES.get(record.status)
        if phase is None:  # a status newer than this sweepwise: Ray still holds the job
            logger.warning(
                "run %s: unknown Ray job status %r of %s", watch.run_id, record.status, watch.submission_id
            )
            return [watch.event(EventKind.HEARTBEAT)]
        if phase in (RayPhase.QUEUED, RayPhase.RUNNING):
            return watch.alive(phase)
        lines: list[str] = []
        if phase is not RayPhase.STOPPED:  # a result must be read; a last line may be missing
            lines = self._log_lines(watch, phase is RayPhase.SUCCEEDED)
        return watch.ended(record, phase, lines)

    def _job_metrics(self, watch: RayWatch) -> list[JobEvent]:
        """METRICS of a running Ray job: the rows its job reported (`sweepwise.report`) since the last.

        Read from its metrics file when the nodes make run directories where this machine
        reads them (no `remote_runs_dir`); else from the `SWEEPWISE_METRICS` lines of its
        log, which `sweepwise.runtime.remote` writes, at most every 5 s (docs/backends.md,
        "Early stopping on every backend").
        """
        if self._options.remote_runs_dir is None:
            path = job_file(watch.claim.parent, watch.stem, METRICS)
            rows, watch.metrics_offset = read_new_metrics(path, watch.metrics_offset)
            return metrics_event(watch, rows)
        now = time.monotonic()
        if watch.metrics_read_at is not None and now - watch.metrics_read_at < _LOG_METRICS_EVERY:
            return []  # the whole log comes back each time: not at every poll
        text = self._jobs.logs(watch.submission_id) or ""
        watch.metrics_read_at = now
        return metrics_event(watch, metrics_from_lines(text.splitlines()))

    def _log_lines(self, watch: RayWatch, succeeded: bool) -> list[str]:
        """The end of a finished job's log, cleaned.

        When the job's own log is not in its run directory here (the nodes do not share
        this filesystem), Ray's log of it is kept there, for `sweepwise logs`. A
        succeeded job's log must be read (its result is there: an error is raised, and
        the job read again at the next poll); a failed one's may be missing.
        """
        try:
            text = self._jobs.logs(watch.submission_id) or ""
        except Exception:  # Ray raises many types
            if succeeded:
                raise
            return []
        copy = Path(job_file(watch.claim.parent, watch.stem, LOG))
        if not copy.exists():
            try:
                copy.write_text(text)
            except OSError:
                pass  # a copy for `sweepwise logs`; `read_log` asks Ray again
        lines = clean_log(text)
        return lines[-(_RESULT_TAIL if succeeded else _FAILURE_TAIL) :]

    # -- cancelling and logs -------------------------------------------------------------

    def cancel(self, dispatch_id: str) -> None:
        """Stop the job: cancel its task (KeyboardInterrupt in it: its job gets SIGTERM, SIGKILL
        10 s later), or stop its Ray job (`stop_job`: SIGTERM, SIGKILL 3 s later).

        No error when it has ended or the cluster does not know it.

        Raises:
            DispatchError: the id is malformed, or the cluster cannot be reached.
        """
        run_id, stem = self._parse(dispatch_id)
        watch = self._watches.get((run_id, stem))
        how = watch.route if watch is not None else self._route_of(run_id, stem)
        try:
            if how == "task":
                self._tasks.stop(dispatch_id)
            else:
                self._jobs.stop(dispatch_id)
        except ConfigError:
            raise
        except Exception as exc:  # Ray raises many types
            raise DispatchError(f"cannot stop Ray job {dispatch_id}: {one_line(exc)}") from exc

    def read_log(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The job's log: its file in the run dir here, else as Ray keeps it; None when it has none.

        A Ray job's log is asked of Ray first (it is complete there); a task's is its file,
        else the end of it that its node read when it finished.
        """
        stem = job_stem(job_type.short, attempt)
        path = self._claim_path(run_id, stem)
        if (run_id, stem) not in self._watches and not path.exists():
            return None
        copy = Path(job_file(path.parent, stem, LOG))
        sid = self.submission_id(run_id, stem)
        text: str | None = None
        if self._route_of(run_id, stem) == "task":
            if copy.exists():
                return copy.read_text(errors="replace")
            try:
                text = self._tasks.logs(sid)
            except Exception:  # Ray raises many types: no log to show
                text = None
            return text
        try:
            text = self._jobs.logs(sid)
        except Exception:  # Ray raises many types: fall back on the file
            text = None
        if text is not None:
            return text
        return copy.read_text(errors="replace") if copy.exists() else None


__all__ = ["STATUS_PHASES", "RayDispatcher", "RayPhase"]
