"""The SkyPilot dispatcher: each job a SkyPilot managed job, on whatever cloud SkyPilot picks.

A job becomes one `sky.Task` named `<experiment>.<run id>.<job>` (`train`, `eval`,
`train.2`: the job's file stem), launched with `sky.jobs.launch`; SkyPilot's jobs
controller provisions it, recovers it from preemptions and tears it down. The task runs
the job under sweepwise's job protocol (`sweepwise.runtime.remote`), which prints the
job's result as the log's last `SWEEPWISE_RESULT {json}` line.

Crash safety, as the local dispatcher's: before anything is launched, the job's claim
`<run dir>/<job>.dispatch.json` is created exclusively on this machine; the launch
request's id, then the managed job's id, are added to it. A restarted controller finds
the job by its claim and SkyPilot's managed-jobs queue, and never launches it twice; a
claim with no launch recorded (the controller stopped in between) is settled by asking
the queue for a job of that name submitted since the claim, then the API server for a
`jobs.launch` request of that name made since the claim (a launch on its way).

A job's life comes from the queue (`ManagedJobStatus`, `STATUS_PHASES`): queued and
running jobs give heartbeats (SkyPilot's controller is watching them), a finished one its
result from its log, a failed one SkyPilot's reason and its last output.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweepwise.core.errors import ConfigError, DispatchError, RunFilesError
from sweepwise.core.models import Check, EventKind, JobDefinition, JobEvent, JobTypes
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
from sweepwise.dispatchers._local_watch import number
from sweepwise.dispatchers._reported_metrics import metrics_event
from sweepwise.dispatchers._sky_client import LaunchState, SkyClient, import_sky, one_line, sky_client
from sweepwise.dispatchers._sky_task import build_resources, build_storage, build_task, parse_options
from sweepwise.dispatchers._sky_watch import (
    STATUS_PHASES,
    QueueRecord,
    SkyPhase,
    SkyWatch,
    clean_log,
    parse_task_name,
    pick,
    status_name,
)
from sweepwise.dispatchers.launch import run_dir_for
from sweepwise.runtime import DISPATCH, LOG, job_file, job_stem, parse_stem
from sweepwise.runtime.results import metrics_from_lines

logger = logging.getLogger(__name__)

_CLOCK_SKEW = 300.0  # seconds the API server's clock may be behind this machine's

_RESULT_TAIL = 2000  # log lines read for a finished job's result
_FAILURE_TAIL = 50  # log lines read for a failed job's last output
_METRICS_TAIL = 500  # log lines read of a running job for its newest metrics row (rewritten every 10 s)


@register_dispatcher("skypilot")
class SkyPilotDispatcher:
    """Runs each job as a SkyPilot managed job.

    Not thread-safe: one controller thread drives it. Options come from the spec's
    `dispatcher:` mapping.

    Args:
        runs_root: the root of the run directories (claims are kept there, on this machine).
        experiment: the experiment's name; jobs are named `<experiment>.<run id>.<job>`.
        incarnation: the experiment's incarnation id, written in every claim; a claim of
            another incarnation is never taken as this run's.
        cloud: the cloud to run on (`aws`, `gcp`, `kubernetes`, ...; default: SkyPilot picks).
        region: the region (with `cloud`, or alone for any cloud).
        zone: the zone (with `region`).
        infra: SkyPilot's `cloud/region/zone` in one string, instead of the three above.
        accelerator: the GPU type, e.g. `A100`; a job gets `gpus` of them (none when 0).
        cpus: vCPUs per node, e.g. `8` or `8+` (at least 8).
        memory: GiB of memory per node, e.g. `32+`.
        use_spot: run on spot instances (SkyPilot recovers preempted jobs).
        image_id: the machine or container image (`docker:...`).
        workdir: a local directory (relative to the current one) synced to each node; jobs
            run in it (default: none).
        setup: shell lines run on each node before the job (install sweepwise and the code).
        envs: variables for every job (values are shown by SkyPilot; a job's `env` goes
            in its secrets).
        file_mounts: `{remote path: local path or bucket URI}`, or a storage mapping
            (`{name, store, mode: MOUNT}`) for a bucket.
        remote_runs_dir: where jobs keep their run directories on the nodes (default
            `~/sweepwise-runs`; a mounted bucket keeps them).
        python: the interpreter on the nodes that has sweepwise (default `python`).
        poll_interval: seconds between reads of the managed-jobs queue.
        metrics_interval: seconds between reads of a running job's log for its newest
            `sweepwise.report` row (what a `stopper` judges; one `tail_logs` call per job);
            None never reads it.
        client: what talks to SkyPilot (default: its API server, through `sky`).

    Raises:
        ConfigError: SkyPilot is not installed, or an option is wrong (one line each).
    """

    @staticmethod
    def diagnose(runs_root: Path, options: Mapping[str, Any]) -> list[Check]:
        """`Diagnosable`: SkyPilot, its API server and an enabled cloud (`sweepwise doctor`)."""
        from sweepwise.dispatchers._sky_doctor import diagnose

        return diagnose(runs_root, options)

    def __init__(
        self,
        runs_root: Path,
        experiment: str,
        *,
        incarnation: str | None = None,
        cloud: str | None = None,
        region: str | None = None,
        zone: str | None = None,
        infra: str | None = None,
        accelerator: str | None = None,
        cpus: int | float | str | None = None,
        memory: int | float | str | None = None,
        use_spot: bool | None = None,
        image_id: str | None = None,
        workdir: str | None = None,
        setup: str | list[str] | None = None,
        envs: dict[str, str] | None = None,
        file_mounts: dict[str, Any] | None = None,
        remote_runs_dir: str | None = None,
        python: str | None = None,
        poll_interval: float = 10.0,
        metrics_interval: float | None = 60.0,
        client: SkyClient | None = None,
    ) -> None:
        for name, value in (("poll_interval", poll_interval), ("metrics_interval", metrics_interval)):
            if value is None and name == "metrics_interval":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"dispatcher.{name}", f"expected seconds >= 0, got {value!r}")
        run_dir_for(Path(runs_root), experiment, "x")  # validates the experiment name
        self._options = parse_options(
            cloud=cloud,
            region=region,
            zone=zone,
            infra=infra,
            accelerator=accelerator,
            cpus=cpus,
            memory=memory,
            use_spot=use_spot,
            image_id=image_id,
            workdir=workdir,
            setup=setup,
            envs=envs,
            file_mounts=file_mounts,
            remote_runs_dir=remote_runs_dir,
            python=python,
        )
        self._sky = import_sky()
        # What SkyPilot refuses is refused now, not at the first dispatch.
        build_resources(self._sky, self._options, 1 if self._options.accelerator else 0)
        build_storage(self._sky, self._options)
        self._client = client if client is not None else sky_client(self._sky)
        self._runs_root = Path(os.path.abspath(runs_root))
        self._experiment = experiment
        self._incarnation = incarnation
        self._poll_interval = float(poll_interval)
        self._metrics_interval = None if metrics_interval is None else float(metrics_interval)
        self._next_poll = 0.0
        self._watches: dict[tuple[str, str], SkyWatch] = {}
        self._finished: set[tuple[str, str]] = set()
        self._unreachable = False
        self._claimant = claimant()

    # -- names and files -----------------------------------------------------------------

    def task_name(self, run_id: str, stem: str) -> str:
        """The managed job's name (and dispatch id) of a run's job: `<experiment>.<run id>.<stem>`."""
        return f"{self._experiment}.{run_id}.{stem}"

    def _parse(self, dispatch_id: str) -> tuple[str, str]:
        """`(run id, stem)` of a dispatch id made by `task_name`."""
        parsed = parse_task_name(self._experiment, dispatch_id)
        if parsed is None:
            raise DispatchError(
                f"malformed SkyPilot dispatch id {dispatch_id!r}; expected {self._experiment}.RUN_ID.JOB"
            )
        return parsed

    def _claim_path(self, run_id: str, stem: str) -> Path:
        return Path(job_file(run_dir_for(self._runs_root, self._experiment, run_id), stem, DISPATCH))

    def _claim(self, run_id: str, stem: str) -> tuple[Path, dict[str, Any]]:
        """The job's claim file and its record (empty when there is none, or it is unreadable)."""
        path = self._claim_path(run_id, stem)
        return path, read_claim(path, self._incarnation) or {}

    def _save_claim(self, watch: SkyWatch) -> None:
        """Add what is now known of the launch (request id, job id) to the job's claim."""
        try:
            update_claim(watch.claim, self._incarnation, request_id=watch.request_id, job_id=watch.job_id)
        except OSError as exc:  # the claim still says a launch was asked for; the queue finds the job
            logger.warning("run %s: cannot update the %s claim: %s", watch.run_id, watch.stem, exc)

    # -- dispatching ---------------------------------------------------------------------

    def dispatch(self, job: JobDefinition) -> str:
        """Launch `job` as a managed job, unless it was ever launched (or claimed) before.

        Idempotent per (run id, job type, attempt): an existing claim is settled with
        `find` and its job watched; nothing is launched again.

        Returns:
            The dispatch id: the managed job's name.

        Raises:
            ConfigError: the job's name is not one SkyPilot accepts, or it asks for GPUs
                with no `accelerator` set.
            RunFilesError: the claim cannot be written.
            DispatchError: SkyPilot refused the launch.
        """
        stem = job_stem(job.type.short, job.attempt)
        key = (job.run_id, stem)
        name = self.task_name(job.run_id, stem)
        if key in self._watches:
            return name
        task = build_task(self._sky, job, name=name, experiment=self._experiment, options=self._options)
        claim = self._claim_path(job.run_id, stem)
        record = new_claim(
            job.run_id,
            stem,
            job.attempt,
            claimant=self._claimant,
            incarnation=self._incarnation,
            dispatcher="skypilot",
            task_name=name,
        )
        try:
            created = create_claim(claim, record)
        except OSError as exc:
            raise RunFilesError(f"run {job.run_id}: cannot write the {stem} job's claim", exc) from exc
        if not created:  # claimed before (the claim is the idempotency key)
            existing = self.find(job.run_id, job.type, job.attempt)
            if existing is None:  # a claim without a launch, set aside: launch now
                return self.dispatch(job)
            if key not in self._watches and key not in self._finished:
                self.reattach(existing, job.run_id, job.type)
            return existing
        try:
            request_id = self._client.launch(task, name)
        except Exception as exc:  # SkyPilot raises many types (its own, requests', ValueError...)
            claim.unlink(missing_ok=True)
            raise DispatchError(
                f"run {job.run_id}: sky.jobs.launch of {name} failed: {one_line(exc)}"
            ) from exc
        watch = SkyWatch(job.run_id, job.type, job.attempt, name, claim, record["claimed_at"], request_id)
        self._save_claim(watch)
        self._watch(key, watch)
        return name

    def _watch(self, key: tuple[str, str], watch: SkyWatch) -> None:
        self._watches[key] = watch
        self._finished.discard(key)
        self._next_poll = 0.0  # read the queue at the next poll

    # -- finding and watching ------------------------------------------------------------

    def find(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The dispatch id of the job if it was ever launched (or claimed), else None.

        A claim with no launch recorded is settled by SkyPilot: a managed job of the job's
        name submitted since the claim is the job (its id is recorded), and so is a
        `jobs.launch` request for that name the API server took since the claim (its id is
        recorded; the job may not be in the queue yet). With neither, the claim is set
        aside and None returned, for the job to be launched anew.

        Raises:
            DispatchError: the claim is of another experiment incarnation, or the queue
                cannot be read to settle a claim.
        """
        stem = job_stem(job_type.short, attempt)
        name = self.task_name(run_id, stem)
        if (run_id, stem) in self._watches:
            return name
        path, record = self._claim(run_id, stem)
        if not path.exists():
            return None
        if isinstance(record.get("job_id"), int) or isinstance(record.get("request_id"), str):
            return name
        claimed_at = number(record.get("claimed_at")) or path.stat().st_mtime
        try:
            records = [QueueRecord.read(raw) for raw in self._client.queue(f"{self._experiment}.")]
        except Exception as exc:  # SkyPilot raises many types; without the queue nothing is settled
            raise DispatchError(
                f"run {run_id}: cannot read SkyPilot's queue for {name}: {one_line(exc)}"
            ) from exc
        found = pick([r for r in records if r.name == name], None, claimed_at)
        if found is not None:
            update_claim(path, self._incarnation, job_id=found.job_id)
            return name
        # Not in the queue yet: a launch the API server accepted may still be on its way (its
        # jobs controller being provisioned), and launching again would run the job twice.
        try:
            requests = self._client.launch_requests(name, claimed_at - _CLOCK_SKEW)
        except Exception as exc:  # SkyPilot raises many types; without the requests nothing is settled
            raise DispatchError(
                f"run {run_id}: cannot ask SkyPilot's API server about {name}: {one_line(exc)}"
            ) from exc
        if requests:
            update_claim(path, self._incarnation, request_id=requests[0])
            return name
        logger.info(
            "run %s: the %s job was claimed but never launched; it will be launched now", run_id, stem
        )
        set_claim_aside(path)
        return None

    def reattach(self, dispatch_id: str, run_id: str, job_type: JobTypes) -> None:
        """Watch a managed job launched before (by this or an earlier controller process).

        Raises:
            DispatchError: the id is malformed or belongs to another run or job type.
        """
        id_run, stem = self._parse(dispatch_id)
        attempt = owned_attempt(dispatch_id, id_run, stem, run_id, job_type)
        key = (run_id, stem)
        if key in self._watches:
            return
        path, record = self._claim(run_id, stem)
        request_id, job_id = record.get("request_id"), record.get("job_id")
        watch = SkyWatch(
            run_id, job_type, attempt, dispatch_id, path, number(record.get("claimed_at")) or 0.0
        )
        watch.request_id = request_id if isinstance(request_id, str) else None
        watch.job_id = job_id if isinstance(job_id, int) else None
        self._watch(key, watch)

    # -- polling -------------------------------------------------------------------------

    def poll(self) -> list[JobEvent]:
        """Events of the watched jobs, from one read of the managed-jobs queue.

        The queue is read at most once per `poll_interval`. An API server that cannot be
        reached gives no events (and one warning): the jobs' silence then counts, as
        it should, since nothing says they are alive.
        """
        if not self._watches or time.monotonic() < self._next_poll:
            return []
        self._next_poll = time.monotonic() + self._poll_interval
        try:
            records = [QueueRecord.read(raw) for raw in self._client.queue(f"{self._experiment}.")]
        except Exception as exc:  # SkyPilot raises many types; an unreachable server is not fatal
            self._unreachable_now(exc)
            return []
        by_name: dict[str, list[QueueRecord]] = {}
        for record in records:
            by_name.setdefault(record.name, []).append(record)
        events: list[JobEvent] = []
        reached = True
        for key, watch in list(self._watches.items()):
            try:
                events.extend(self._poll_one(watch, by_name.get(watch.name, [])))
            except Exception as exc:  # as above: this job is read again at the next poll
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
                "cannot reach SkyPilot's API server (%s); its jobs are read again later", one_line(exc)
            )
        self._unreachable = True

    def _poll_one(self, watch: SkyWatch, records: list[QueueRecord]) -> list[JobEvent]:
        record = pick(records, watch.job_id, watch.claimed_at)
        if record is None:
            return self._not_in_queue(watch)
        watch.missing = 0
        if watch.job_id is None and record.job_id is not None:
            watch.job_id = record.job_id
            self._save_claim(watch)
        phase = STATUS_PHASES.get(record.status)
        if phase is None:  # a status newer than this sweepwise: SkyPilot still holds the job
            logger.warning(
                "run %s: unknown SkyPilot status %r of %s", watch.run_id, record.status, watch.name
            )
            return [watch.event(EventKind.HEARTBEAT)]
        if phase in (SkyPhase.SUCCEEDED, SkyPhase.FAILED, SkyPhase.CANCELLED):
            lines: list[str] = []
            if phase is not SkyPhase.CANCELLED:  # a result must be read; a last line may be missing
                lines = self._log_lines(watch, phase is SkyPhase.SUCCEEDED)
            return watch.ended(record, phase, lines)
        if watch.cancel_requested and watch.job_id != watch.cancelled_id:
            self._client.cancel(watch.name, watch.job_id)  # asked before SkyPilot's queue had the job
            watch.cancelled_id = watch.job_id
        if phase is SkyPhase.RECOVERING and not watch.recovering:
            logger.warning(
                "run %s: its %s job was preempted (or its cluster failed); SkyPilot is recovering it",
                watch.run_id,
                watch.stem,
            )
        events = watch.alive(record, phase)
        if phase is SkyPhase.RUNNING:
            events[-1:-1] = self._metrics(watch)  # before the heartbeat
        return events

    def _metrics(self, watch: SkyWatch) -> list[JobEvent]:
        """METRICS of a running job: the last `SWEEPWISE_METRICS` line at the end of its log.

        `sweepwise.runtime.remote` writes one after each row the job reports, so a stopper can
        judge it (docs/backends.md, "Early stopping on every backend"). The log is read at most
        once per `metrics_interval`; one that cannot be read now is read again at the next poll.
        """
        now = time.monotonic()
        interval = self._metrics_interval
        if interval is None or (watch.metrics_read_at is not None and now - watch.metrics_read_at < interval):
            return []
        try:
            text = self._client.logs(watch.name, watch.job_id, _METRICS_TAIL)
        except Exception:  # SkyPilot raises many types: the job's progress is read next time
            return []
        watch.metrics_read_at = now
        return metrics_event(watch, metrics_from_lines(clean_log(text)))

    def _not_in_queue(self, watch: SkyWatch) -> list[JobEvent]:
        """A watched job the queue does not show: its launch is on its way, failed, or it is lost."""
        if watch.job_id is None and watch.request_id is not None:
            outcome = self._client.launch_outcome(watch.request_id)
            if outcome.state is LaunchState.RUNNING:  # the API server holds the launch
                return [watch.event(EventKind.HEARTBEAT)]
            if outcome.state is LaunchState.FAILED:
                watch.done = True
                error = f"sky.jobs.launch of {watch.name} failed: {outcome.error}"
                return [watch.event(EventKind.FINISHED, error=error)]
            if outcome.job_id is not None:
                watch.job_id = outcome.job_id
                self._save_claim(watch)
        return watch.absent()

    def _log_lines(self, watch: SkyWatch, succeeded: bool) -> list[str]:
        """The end of a finished job's log, cleaned; also kept as `<run dir>/<job>.log` here.

        A succeeded job's log must be read (its result is there: an error is raised, and
        the job read again at the next poll); a failed one's may be missing.
        """
        try:
            text = self._client.logs(watch.name, watch.job_id, _RESULT_TAIL if succeeded else _FAILURE_TAIL)
        except Exception:  # SkyPilot raises many types
            if succeeded:
                raise
            return []
        try:
            Path(job_file(watch.claim.parent, watch.stem, LOG)).write_text(text)
        except OSError:
            pass  # a copy for `sweepwise logs`; `read_log` asks SkyPilot again
        return clean_log(text)

    # -- cancelling and logs -------------------------------------------------------------

    def cancel(self, dispatch_id: str) -> None:
        """Cancel the managed job (`sky.jobs.cancel`); no error if it has already ended.

        A job whose launch has not reached SkyPilot's queue yet is cancelled once it does.

        Raises:
            DispatchError: the id is malformed, or SkyPilot refused the cancel.
        """
        run_id, stem = self._parse(dispatch_id)
        watch = self._watches.get((run_id, stem))
        if watch is None:
            parsed = parse_stem(stem) or ("train", 1)
            path, record = self._claim(run_id, stem)
            job_id = record.get("job_id")
            watch = SkyWatch(run_id, JobTypes.from_short(parsed[0]), parsed[1], dispatch_id, path, 0.0)
            watch.job_id = job_id if isinstance(job_id, int) else None
        watch.cancel_requested = True
        try:
            self._client.cancel(watch.name, watch.job_id)
        except Exception as exc:  # SkyPilot raises many types
            raise DispatchError(f"cannot cancel SkyPilot job {watch.name}: {one_line(exc)}") from exc
        watch.cancelled_id = watch.job_id

    def read_log(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The job's log as SkyPilot keeps it (else the copy kept when it ended); None when it has none."""
        stem = job_stem(job_type.short, attempt)
        path, record = self._claim(run_id, stem)
        watch = self._watches.get((run_id, stem))
        job_id = watch.job_id if watch is not None else record.get("job_id")
        if watch is None and not path.exists():
            return None
        try:
            return self._client.logs(
                self.task_name(run_id, stem), job_id if isinstance(job_id, int) else None
            )
        except Exception:  # SkyPilot raises many types: fall back on the copy
            copy = Path(job_file(path.parent, stem, LOG))
            return copy.read_text(errors="replace") if copy.exists() else None


__all__ = ["STATUS_PHASES", "SkyPhase", "SkyPilotDispatcher", "status_name"]
