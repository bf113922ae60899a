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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepwise.core.errors import ConfigError, DispatchError
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.dispatchers._claims import check_incarnation, make_claim, settle_claim, token_path
from sweepwise.dispatchers._engine import Engine, EngineEnd, EngineJob, EngineState, Phase
from sweepwise.dispatchers._job_files import JobFiles, number
from sweepwise.dispatchers.launch import LaunchPlan, build_launch, run_dir_for
from sweepwise.runtime import DISPATCH, STATUS, job_file, job_stem, parse_stem
from sweepwise.runtime.jobhost import CANCEL
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import RunState, accept_claim, mark_exited, write_json_atomic

logger = logging.getLogger(__name__)

LAUNCH = "launch.json"
"""The kind of `<job>.launch.json`, what the supervisor on the node runs (`sweepwise.runtime.batch`)."""

_EXPLAIN_WAIT = 120.0  # seconds to wait for the engine to say why it stopped a job it still lists
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


def _taken(status: dict[str, Any] | None) -> bool:
    """Whether a supervisor has taken the job (its token's "starting" status names no supervisor)."""
    return status is not None and "supervisor_pid" in status


def _restarts_at_start(status: dict[str, Any]) -> int:
    value = status.get("engine_run")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


@dataclass(slots=True)
class EngineWatch(JobFiles):
    """A watched job of an engine: its files, its engine id, and what the engine said lately."""

    engine_id: str = ""
    claim_id: str | None = None
    unexplained_since: float | None = None  # monotonic: its final status says "killed", the engine not why
    next_engine_beat: float = 0.0  # monotonic: the next HEARTBEAT the engine's word may give
    stamp: tuple[int, int, int] | None = None  # the status file's (inode, size, mtime) at the last read

    @property
    def dispatch_id(self) -> str:
        return f"{self.run_id}:{self.job}:{self.engine_id}"


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
            engine_id=engine_id,
            claim_id=made.record["claim_id"],
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
        parsed = parse_stem(stem)
        if id_run != run_id or parsed is None or parsed[0] != job_type.short:
            raise DispatchError(f"dispatch id {dispatch_id!r} is not of run {run_id}'s {job_type.short} job")
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
            parsed[1],
            engine_id=engine_id,
            claim_id=claim_id if isinstance(claim_id, str) else None,
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
            return [*(watch.progress_events(status) if started else []), self._verdict_event(watch, verdict)]
        events = watch.progress_events(status)
        events.extend(watch.new_metrics())
        final = status is not None and status.get("state") == RunState.EXITED
        if final and status is not None and self._explained(watch, status):
            events.append(watch.finished_event(status))
            watch.done = True
            return events
        if not asked:
            return events
        end = self._judge(watch, status, state, final)
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

    def _explained(self, watch: EngineWatch, status: dict[str, Any]) -> bool:
        """Whether a final status says all, or the engine may know more.

        A job killed by a signal sweepwise did not send (the engine's time limit, a requeue,
        its out-of-memory killer) is judged with the engine's word on why.
        """
        if status.get("timed_out") or status.get("exit_unobserved") or os.path.exists(watch.path(CANCEL)):
            return True
        code = status.get("exit_code")
        return not status.get("cancelled") and isinstance(code, int) and code >= 0

    def _judge(
        self, watch: EngineWatch, status: dict[str, Any] | None, state: EngineState | None, final: bool
    ) -> JobEvent | None:
        """The end of a job by the engine's word; None while there is none to draw."""
        taken = _taken(status)
        requeued = (
            taken and status is not None and state is not None and state.restarts > _restarts_at_start(status)
        )
        if final and status is not None:  # killed by a signal sweepwise did not send: ask why
            if state is None:
                return watch.finished_event(status)  # the engine forgot it: the status's word stands
            if not requeued and state.phase is not Phase.ENDED:
                now = time.monotonic()
                watch.unexplained_since = watch.unexplained_since or now
                if now - watch.unexplained_since < _EXPLAIN_WAIT:
                    return None  # the engine is still stopping it
                return watch.finished_event(status)
            if not requeued and state.end in (EngineEnd.DONE, EngineEnd.CANCELLED):
                return watch.finished_event(status)
        elif state is not None and state.phase is not Phase.ENDED and not requeued:
            return None  # queued or running
        elif not taken and not self._void_token(watch):
            return None  # a supervisor has just taken the job: judge it next time
        if requeued:
            assert state is not None
            self._stop(watch)  # its next run would start nothing: free the engine's queue
            return self._settle(
                watch,
                status,
                self._lost(watch, f"requeued by {self._engine.name} (restart {state.restarts})"),
            )
        if not final:
            finished = watch.result_end()  # a result on disk means it finished
            if finished is not None:
                return finished
        return self._settle(watch, status, self._engine_end(watch, state, taken))

    def _engine_end(self, watch: EngineWatch, state: EngineState | None, taken: bool) -> JobEvent:
        """The end of a job whose supervisor is gone without saying why, as the engine tells it."""
        engine = self._engine.name
        said = f"{engine} says {state.detail}" if state is not None else f"{engine} no longer knows it"
        end = state.end if state is not None else None
        if end is EngineEnd.TIMEOUT:
            error = f"timeout: {engine} stopped it at its time limit ({said})"
            return watch.event(EventKind.FINISHED, None, exit_code=-1, error=error, timed_out=True)
        if end is EngineEnd.LOST:
            return self._lost(watch, said)
        if end is EngineEnd.FAILED:
            return watch.event(EventKind.FINISHED, None, exit_code=-1, error=f"{engine} stopped it ({said})")
        if end is EngineEnd.CANCELLED:
            ours = os.path.exists(watch.path(CANCEL))
            error = "cancelled" if ours else f"cancelled outside sweepwise ({said})"
            return watch.event(EventKind.FINISHED, None, exit_code=-1, error=error)
        if taken:
            return self._lost(watch, f"its supervisor ended without an exit status ({said})")
        if state is None:
            return self._lost(watch, f"{said}, and its supervisor never started")
        error = f"the {engine} job ended before its supervisor started ({said}); see the job's log"
        return watch.event(EventKind.FINISHED, None, exit_code=-1, error=error)

    def _lost(self, watch: EngineWatch, why: str) -> JobEvent:
        return watch.lost_event(f"job lost: {why}")

    def _void_token(self, watch: EngineWatch) -> bool:
        """Take the claim back from a job the engine ended before its supervisor took it.

        Returns:
            False when a supervisor took the token meanwhile.
        """
        claim = Path(watch.path(DISPATCH))
        if watch.claim_id is None:  # an unreadable claim: void every token beside it
            for token in claim.parent.glob(f"{claim.name}.*.token"):
                token.unlink(missing_ok=True)
            return not _taken(read_status(watch.path(STATUS)))
        try:
            token_path(claim, watch.claim_id).unlink()
        except FileNotFoundError:
            return not _taken(read_status(watch.path(STATUS)))
        return True

    def _settle(self, watch: EngineWatch, status: dict[str, Any] | None, event: JobEvent) -> JobEvent:
        """Write the verdict `event` to the job's status, so every later reader sees the same."""
        first = {"job": watch.job, "pid": None, "run_id": watch.run_id, "attempt": watch.attempt}
        final = dict(status or first)
        final.update(
            state=RunState.EXITED.value,
            engine_id=watch.engine_id,
            incarnation=final.get("incarnation", self._incarnation),
            ended_at=event.at,
            verdict={
                "kind": event.kind.value,
                "error": event.error,
                "exit_code": event.exit_code,
                "timed_out": event.timed_out,
            },
        )
        try:
            write_json_atomic(watch.path(STATUS), final)
        except OSError:
            pass  # the same evidence is judged again next time
        return event

    def _verdict_event(self, watch: EngineWatch, verdict: dict[str, Any]) -> JobEvent:
        status = read_status(watch.path(STATUS)) or {}
        watch.started_at = watch.started_at or number(status.get("started_at"))
        kind = EventKind.LOST if verdict.get("kind") == EventKind.LOST.value else EventKind.FINISHED
        code = verdict.get("exit_code")
        error = verdict.get("error")
        return watch.event(
            kind,
            number(status.get("ended_at")),
            exit_code=code if isinstance(code, int) else None,
            error=str(error) if error is not None else None,
            timed_out=verdict.get("timed_out") is True,
        )

    def _stop(self, watch: EngineWatch) -> None:
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
            DispatchError: the id is malformed, or the engine refused.
        """
        run_id, stem, engine_id = parse_engine_dispatch_id(dispatch_id)
        run_dir = self._run_dir(run_id)
        status_path = job_file(run_dir, stem, STATUS)
        status = read_status(status_path)
        if status is not None and status.get("state") == RunState.EXITED:
            return
        write_json_atomic(job_file(run_dir, stem, CANCEL), {"cancelled_at": time.time()})
        self._engine.cancel(engine_id)
        record = read_status(job_file(run_dir, stem, DISPATCH)) or {}
        claim_id = record.get("claim_id")
        if not isinstance(claim_id, str):
            return
        token = token_path(Path(job_file(run_dir, stem, DISPATCH)), claim_id)
        taken: dict[str, Any] = {"job": stem, "pid": None, "engine_id": engine_id}
        if accept_claim(str(token), status_path, taken):  # it never started, and now never will
            started_at = time.time()
            mark_exited(taken, str(run_dir), stem, -signal.SIGTERM, started_at=started_at, cancelled=True)
            write_json_atomic(status_path, taken)

    def close(self) -> None:
        """Stop watching; submitted jobs run on."""
        self._watches.clear()


__all__ = ["LAUNCH", "EngineDispatcher", "EngineWatch", "parse_engine_dispatch_id"]
