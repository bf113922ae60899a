"""`EngineDispatcher`: the local dispatcher's crash-safe file protocol, the supervisor run by an engine.

See `sweepwise.dispatchers._engine` for the division of labour and the `Engine` interface.
Dispatch ids are `"{run_id}:{job}:{engine_id}"` (`job`: `train`, `eval`, `train.2`...).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sweepwise.core.errors import ConfigError, DispatchError
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.dispatchers._claims import (
    check_incarnation,
    make_claim,
    owned_attempt,
    settle_claim,
    token_path,
)
from sweepwise.dispatchers._engine import Engine, EngineJob, EngineState, Phase
from sweepwise.dispatchers._engine_watch import EngineWatch
from sweepwise.dispatchers._job_files import mark_cancelled, number
from sweepwise.dispatchers.launch import LaunchPlan, build_launch, run_dir_for
from sweepwise.runtime import DISPATCH, STATUS, job_file, job_stem, parse_stem
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import RunState, accept_claim, mark_exited, write_json_atomic

logger = logging.getLogger(__name__)

LAUNCH = "launch.json"
"""The kind of `<job>.launch.json`, what the supervisor on the node runs (`sweepwise.runtime.batch`)."""

_WAIT_STEP = 0.25  # seconds between looks at the watched jobs' status files while waiting


def parse_engine_dispatch_id(dispatch_id: str) -> tuple[str, str, str]:
    """Split `"{run_id}:{job}:{engine_id}"` into its parts.

    Raises:
        DispatchError: if the id is not of that form.
    """
    parts = dispatch_id.rsplit(":", 2)
    if len(parts) == 3 and parts[0] and parse_stem(parts[1]) is not None and parts[2]:
        return parts[0], parts[1], parts[2]
    raise DispatchError(f"malformed dispatch id {dispatch_id!r}; expected RUN_ID:train|eval:ENGINE_ID")


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class EngineDispatcher:
    """Runs jobs through an `Engine`, each under sweepwise's supervisor on a node, crash-safely.

    Not thread-safe: one controller thread drives it.

    Args:
        runs_root: the root of the run directories, on a filesystem the engine's nodes share.
        experiment: the experiment's name; runs live in `<runs_root>/<experiment>/`.
        engine: the engine's steps.
        incarnation: the experiment's incarnation id, written in every claim and status.
        heartbeat_interval: seconds between the supervisor's heartbeats.
        grace_period: seconds the supervisor gives a job past its `timeout` before SIGKILL.
        poll_interval: seconds between two questions to the engine (all jobs at once).
        python: the interpreter that runs the supervisor on the nodes (default: this one,
            which must then exist on the nodes at the same path).

    Raises:
        ConfigError: a bad experiment name, or intervals out of range.
    """

    def __init__(
        self,
        runs_root: Path,
        experiment: str,
        engine: Engine,
        *,
        incarnation: str | None = None,
        heartbeat_interval: float = 5.0,
        grace_period: float = 10.0,
        poll_interval: float = 10.0,
        python: str | None = None,
    ) -> None:
        if heartbeat_interval <= 0 or grace_period < 0 or poll_interval <= 0:
            raise ConfigError(
                "dispatcher",
                "heartbeat_interval and poll_interval must be > 0 and grace_period >= 0 seconds",
            )
        run_dir_for(Path(runs_root), experiment, "x")  # validates the experiment name
        self._runs_root = Path(os.path.abspath(runs_root))
        self._experiment = experiment
        self._engine = engine
        self._incarnation = incarnation
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period
        self._poll_interval = poll_interval
        self._python = python or sys.executable
        self._watches: dict[tuple[str, str], EngineWatch] = {}
        self._finished: set[tuple[str, str]] = set()
        self._next_ask = 0.0
        self._claimant = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def job_name(self, run_id: str, stem: str) -> str:
        """The engine's name for a job: `<experiment>.<run_id>.<job>`."""
        return f"{self._experiment}.{run_id}.{stem}"

    def _run_dir(self, run_id: str) -> Path:
        return run_dir_for(self._runs_root, self._experiment, run_id)

    # -- dispatching -------------------------------------------------------------------

    def dispatch(self, job: JobDefinition) -> str:
        """Submit `job` to the engine, unless it was ever claimed before.

        Idempotent per (run id, job type, attempt): if the job's claim exists, its dispatch
        id is returned and nothing is submitted (the job is watched again).

        Returns:
            The dispatch id `"{run_id}:{job}:{engine_id}"`.

        Raises:
            ConfigError: the job's command, cwd or run id is invalid.
            RunFilesError: the job's files cannot be written.
            DispatchError: the engine refused the job (nothing of it is left to start).
        """
        plan = build_launch(job, experiment=self._experiment, runs_root=self._runs_root)
        key = (job.run_id, plan.job_name)
        watched = self._watches.get(key)
        if watched is not None:
            return watched.dispatch_id
        name = self.job_name(job.run_id, plan.job_name)
        fields = {
            "claimant": self._claimant,
            "incarnation": self._incarnation,
            "engine": self._engine.name,
            "engine_name": name,
            "argv": plan.argv,
        }
        made = make_claim(plan, job, fields, self._token_status)
        if made is None:  # claimed before (the claim is the idempotency key): watch it
            existing = self.find(job.run_id, job.type, job.attempt)
            if existing is None:  # an unstarted claim was taken over and set aside: submit it now
                return self.dispatch(job)
            if key not in self._watches and key not in self._finished:
                self.reattach(existing, job.run_id, job.type)
            return existing
        launch_path = job_file(plan.run_dir, plan.job_name, LAUNCH)
        try:
            write_json_atomic(
                launch_path,
                {
                    "run_dir": str(plan.run_dir),
                    "job": job.type.short,
                    "attempt": job.attempt,
                    "argv": plan.argv,
                    "cwd": plan.cwd,
                    "heartbeat_interval": self._heartbeat_interval,
                    "timeout": job.timeout,
                    "kill_grace": self._grace_period,
                    "claim_token": str(made.token),
                    "status_env": dict(self._engine.status_env),
                },
            )
            engine_id = self._engine.submit(self.engine_job(plan, job, made.record["claim_id"]))
        except BaseException as exc:
            made.void()  # nothing may start from this claim (if a supervisor has it, it is found)
            if isinstance(exc, OSError):
                what = f"run {job.run_id}: cannot submit the {plan.job_name} job: {exc}"
                raise DispatchError(what) from exc
            raise
        try:
            write_json_atomic(made.path, {**made.record, "engine_id": engine_id})
        except OSError as exc:  # found by its name after a restart
            logger.warning("run %s: cannot record the %s job's id in its claim: %s", job.run_id, name, exc)
        watch = EngineWatch(
            job.run_id,
            job.type,
            plan.run_dir,
            made.record["claimed_at"],
            job.attempt,
            engine=self._engine.name,
            engine_id=engine_id,
            claim_id=made.record["claim_id"],
            incarnation=self._incarnation,
        )
        self._watches[key] = watch
        return watch.dispatch_id

    def engine_job(self, plan: LaunchPlan, job: JobDefinition, claim_id: str) -> EngineJob:
        """What the engine is asked to run for `job`: the supervisor, reading the job's launch file."""
        launch_path = job_file(plan.run_dir, plan.job_name, LAUNCH)
        command = [self._python, "-m", "sweepwise.runtime.batch", launch_path]
        name = self.job_name(job.run_id, plan.job_name)
        return EngineJob(name, claim_id, command, dict(plan.env), plan, job, self._grace_period)

    def _token_status(self, record: dict[str, Any]) -> dict[str, Any]:
        """The first status of a claimed job, as its supervisor will find it once it takes the claim."""
        return {
            "job": record["job"],
            "state": RunState.STARTING.value,
            "pid": None,
            "run_id": record["run_id"],
            "attempt": record["attempt"],
            "claim_id": record["claim_id"],
            "incarnation": self._incarnation,
        }

    # -- finding and watching ----------------------------------------------------------

    def find(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The dispatch id of the job if it was ever submitted (or claimed), else None.

        A claim without the engine's id (the controller stopped while submitting) is
        looked up in the engine by the job's name and claim id; a claim the engine does
        not know either is taken over (its token voided, the claim set aside) and None is
        returned for the job to be submitted anew (docs/design.md, "No duplicate start").

        Raises:
            DispatchError: the run directory holds this job of another experiment
                incarnation; or the engine could not be asked about a claim.
        """
        run_dir = self._run_dir(run_id)
        stem = job_stem(job_type.short, attempt)
        watched = self._watches.get((run_id, stem))
        if watched is not None:
            return watched.dispatch_id
        status = read_status(job_file(run_dir, stem, STATUS))
        claim = Path(job_file(run_dir, stem, DISPATCH))
        record = read_status(claim)
        for source in (status, record):
            check_incarnation(source, self._incarnation, run_id, stem, run_dir, self._experiment)
        for source in (record, status):
            engine_id = (source or {}).get("engine_id")
            if isinstance(engine_id, str) and engine_id:
                return f"{run_id}:{stem}:{engine_id}"
        if not claim.exists():
            return None
        claim_id = (record or {}).get("claim_id")
        if isinstance(claim_id, str):
            name = (record or {}).get("engine_name") or self.job_name(run_id, stem)
            engine_id = self._engine.lookup(str(name), claim_id)
            if engine_id is not None:
                try:
                    write_json_atomic(claim, {**(record or {}), "engine_id": engine_id})
                except OSError:
                    pass  # looked up again next time
                return f"{run_id}:{stem}:{engine_id}"

        def dispatch_id(found: dict[str, Any] | None) -> str | None:
            engine_id = (found or {}).get("engine_id")
            return f"{run_id}:{stem}:{engine_id}" if isinstance(engine_id, str) and engine_id else None

        return settle_claim(run_id, stem, claim, record, dispatch_id)

    def reattach(self, dispatch_id: str, run_id: str, job_type: JobTypes) -> None:
        """Watch a job submitted before (by this or an earlier controller process).

        Raises:
            DispatchError: the id is malformed or belongs to another run or job type.
        """
        id_run, stem, engine_id = parse_engine_dispatch_id(dispatch_id)
        attempt = owned_attempt(dispatch_id, id_run, stem, run_id, job_type)
        key = (run_id, stem)
        if key in self._watches:
            return
        self._finished.discard(key)
        run_dir = self._run_dir(run_id)
        record = read_status(job_file(run_dir, stem, DISPATCH)) or {}
        claim_id = record.get("claim_id")
        self._watches[key] = EngineWatch(
            run_id,
            job_type,
            run_dir,
            number(record.get("claimed_at")) or time.time(),
            attempt,
            engine=self._engine.name,
            engine_id=engine_id,
            claim_id=claim_id if isinstance(claim_id, str) else None,
            incarnation=self._incarnation,
        )

    # -- polling -----------------------------------------------------------------------

    def poll(self) -> list[JobEvent]:
        """Events of the watched, unfinished jobs since the last poll.

        Reads each job's status file and metrics; asks the engine about all of them in one
        question at most once per `poll_interval`.
        """
        if not self._watches:
            return []
        now = time.monotonic()
        states: dict[str, EngineState] | None = None
        if now >= self._next_ask:
            self._next_ask = now + self._poll_interval
            answer = self._engine.states([watch.engine_id for watch in self._watches.values()])
            states = dict(answer) if answer is not None else None
        events: list[JobEvent] = []
        for key, watch in list(self._watches.items()):
            word = states.get(watch.engine_id) if states is not None else None
            events.extend(self._poll_one(watch, word, asked=states is not None))
            if watch.done:
                del self._watches[key]
                self._finished.add(key)
        return events

    def _poll_one(self, watch: EngineWatch, state: EngineState | None, *, asked: bool) -> list[JobEvent]:
        status_path = watch.path(STATUS)
        watch.stamp = _stamp(status_path)
        status = read_status(status_path)
        verdict = (status or {}).get("verdict")
        if status is not None and isinstance(verdict, dict):  # judged before, from the engine's word
            watch.done = True
            started = status.get("started_at") is not None
            return [*(watch.progress_events(status) if started else []), watch.verdict_event(status, verdict)]
        events = watch.progress_events(status)
        events.extend(watch.new_metrics())
        final = status is not None and status.get("state") == RunState.EXITED
        if final and status is not None and watch.explained(status):
            events.append(watch.finished_event(status))
            watch.done = True
            return events
        if not asked:
            return events
        end = watch.judge(status, state, final, stop=lambda: self._stop(watch))
        if end is not None:
            events.append(end)
            watch.done = True
        elif state is not None and state.phase is not Phase.ENDED and watch.started_at is None:
            # Queued, or its supervisor not started yet: the engine's word is the sign of life.
            now = time.monotonic()
            if now >= watch.next_engine_beat:
                watch.next_engine_beat = now + self._heartbeat_interval
                events.append(watch.event(EventKind.HEARTBEAT, None))
        return events

    def _stop(self, watch: EngineWatch) -> None:
        """Cancel the engine's job (a requeued one, whose next run would start nothing)."""
        try:
            self._engine.cancel(watch.engine_id)
        except DispatchError as exc:
            engine = self._engine.name
            logger.warning("run %s: cannot cancel %s job %s: %s", watch.run_id, engine, watch.engine_id, exc)

    # -- waiting -----------------------------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds; return as soon as a watched job's status says it ended.

        Looks at the watched jobs' status files every quarter second (a `stat`, and a read
        when one changed), and returns when the engine is due to be asked again.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        while (remaining := deadline - time.monotonic()) > 0:
            if self._watches and time.monotonic() >= self._next_ask:
                return
            for watch in self._watches.values():
                stamp = _stamp(watch.path(STATUS))
                if stamp != watch.stamp:
                    watch.stamp = stamp
                    status = read_status(watch.path(STATUS)) or {}
                    if status.get("state") == RunState.EXITED:
                        return
            time.sleep(min(remaining, _WAIT_STEP))

    # -- cancelling --------------------------------------------------------------------

    def cancel(self, dispatch_id: str) -> None:
        """Stop a job: its `<job>.cancel` marker, then the engine's cancel.

        A job that has not started is taken from its supervisor-to-be (its claim token) and
        recorded as cancelled; a running one is stopped by the engine (its supervisor records
        it cancelled). Returns without waiting for it to end; no error if it has ended.

        Raises:
            DispatchError: the id is malformed, the engine refused, or the cancel of a job that
                never started could not be recorded (a full disk).
        """
        run_id, stem, engine_id = parse_engine_dispatch_id(dispatch_id)
        run_dir = self._run_dir(run_id)
        status_path = job_file(run_dir, stem, STATUS)
        status = read_status(status_path)
        if status is not None and status.get("state") == RunState.EXITED:
            return
        mark_cancelled(run_dir, stem)
        self._engine.cancel(engine_id)
        record = read_status(job_file(run_dir, stem, DISPATCH)) or {}
        claim_id = record.get("claim_id")
        if not isinstance(claim_id, str):
            return
        token = token_path(Path(job_file(run_dir, stem, DISPATCH)), claim_id)
        taken: dict[str, Any] = {"job": stem, "pid": None, "engine_id": engine_id}
        try:
            if accept_claim(str(token), status_path, taken):  # it never started, and now never will
                started_at = time.time()
                mark_exited(taken, str(run_dir), stem, -signal.SIGTERM, started_at=started_at, cancelled=True)
                write_json_atomic(status_path, taken)
        except OSError as exc:  # a full disk: the engine has the cancel, and a taken claim never starts
            raise DispatchError(f"cannot record the cancel of {dispatch_id}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        """Stop watching; submitted jobs run on."""
        self._watches.clear()


__all__ = ["LAUNCH", "EngineDispatcher", "parse_engine_dispatch_id"]
