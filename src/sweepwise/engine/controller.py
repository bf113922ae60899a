"""The controller: the only place that sequences poll -> hooks -> schedule -> dispatch.

One controller runs an experiment at a time (a lease in the store). Every state
change is committed before the action that depends on it (docs/design.md, crash safety), so the
controller can be killed at any point and a new one resumes without losing or
repeating a job.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sweepwise.core import keys
from sweepwise.core.clock import RealClock, elapsed_of
from sweepwise.core.errors import DispatchError, StoreUnavailableError
from sweepwise.core.faults import crash_point
from sweepwise.core.lifecycle import DEFAULT_RETRIES, RetryPolicy, no_eval_event, retry_due
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobStatus, JobTypes, RunInfo
from sweepwise.core.protocols import (
    Clock,
    Dispatcher,
    ExperimentScheduler,
    ExperimentStore,
    JobEnvironment,
    Reattachable,
    RunWriter,
    SchedulerWithState,
    Waitable,
)
from sweepwise.core.runs import UNFINISHED, RunList
from sweepwise.engine import first_failures
from sweepwise.engine.hook_runner import ControllerHooks, HookRunner
from sweepwise.engine.hooks import ObservationHook
from sweepwise.engine.lease import ExperimentLease
from sweepwise.engine.stopping import Decision, Stopper
from sweepwise.runtime.slices import short_slices

logger = logging.getLogger(__name__)

_TRAINING_SLOTS = (JobStatus.PENDING, JobStatus.IN_TRAINING)
_RUNNING = (JobStatus.PENDING, JobStatus.IN_TRAINING, JobStatus.IN_EVAL)
_CANCEL_CHECK_INTERVAL = 0.2  # real seconds between reads of the experiment's cancelled status
_STATE_SAVE_INTERVAL = 1.0  # real seconds between saves of a changing scheduler state
_CANCEL_RETRY_FIRST = 1.0  # real seconds before a stopped run's failed cancel is tried again
_CANCEL_RETRY_LAST = 60.0  # the wait doubles after each failure, up to this


class ControllerSettings(BaseModel):
    """How the controller paces itself."""

    model_config = ConfigDict(extra="forbid")

    max_parallel: int = Field(default=4, ge=1, description="training jobs running at once")
    monitoring_interval: float = Field(default=5.0, gt=0, description="longest wait between ticks (s)")
    stale_after: float = Field(
        default=3600.0,
        gt=0,
        description="a job silent this long (from its own start or heartbeat) is lost (s)",
    )
    lease_ttl: float = Field(default=60.0, gt=0, description="the experiment lease's lifetime (s)")
    hook_retries: int = Field(default=3, ge=1)
    retries: RetryPolicy = Field(default=DEFAULT_RETRIES, description="which lost or failed jobs run again")


@dataclass
class TickReport:
    """What one tick did (for progress displays and tests)."""

    events: int = 0
    dispatched: list[JobDefinition] = field(default_factory=list)
    complete: bool = False
    free_slots: int = 0  # training slots still free after this tick's dispatches


class AdaptiveController:
    """Runs one experiment to completion.

    Args:
        experiment: the experiment's name (the store's group).
        scheduler: the experiment logic.
        dispatcher: where jobs run.
        store: the single source of truth.
        settings: pacing and slots.
        hooks: post-training / post-eval / dispatch hooks; the post-eval default is
            `ObservationHook(metric)`.
        metric: the result key the default post-eval hook reads.
        clock: real time by default; a `VirtualClock` with the simulated dispatcher.
        on_tick: called after every tick with the controller and the tick's report.

    Attributes:
        on_start: called once `run()` holds the experiment's lease, before any job starts;
            what only the experiment's one controller may write goes there.
    """

    def __init__(
        self,
        experiment: str,
        scheduler: ExperimentScheduler,
        dispatcher: Dispatcher,
        store: ExperimentStore,
        *,
        settings: ControllerSettings | None = None,
        hooks: ControllerHooks | None = None,
        metric: str = "score",
        clock: Clock | None = None,
        on_tick: Callable[[AdaptiveController, TickReport], None] | None = None,
        stopper: Stopper | None = None,
    ) -> None:
        self.experiment = experiment
        self.scheduler = scheduler
        self.dispatcher = dispatcher
        self.store = store
        self.settings = settings or ControllerSettings()
        hooks = hooks or ControllerHooks()
        if hooks.on_eval_completed is None:
            hooks.on_eval_completed = ObservationHook(metric)
        self.clock: Clock = clock or RealClock()
        self._hook_runner = HookRunner(hooks, retries=self.settings.hook_retries, clock=self.clock)
        self.on_tick = on_tick
        self.stopper = stopper
        self.on_start: Callable[[], object] | None = None
        self.lease = ExperimentLease(store, experiment, self.settings.lease_ttl)
        self.runs = RunList(load=self._load_runs)
        self._seq = 0
        self._saved_state: Any = None
        self._stale_checked_at = 0.0
        self._cancel_checked_at = -_CANCEL_CHECK_INTERVAL
        self._is_cancelled = False
        self._unrecorded: list[tuple[str, JobTypes, str]] = []  # dispatch ids for the next commit
        self._just_recorded: list[tuple[str, JobTypes, str]] = []  # ids committed since the last read
        self._state_saved_at = -_STATE_SAVE_INTERVAL
        self._retries_due: dict[str, JobTypes] = {}  # runs whose lost or failed job runs again
        # Stopped runs whose cancel failed: (dispatch id, when to try again on `_elapsed`, the wait after)
        self._cancels_due: dict[str, tuple[str, float, float]] = {}
        # Per running job: the last heartbeat this controller saw, and when it saw it change (on
        # `_elapsed`): silence is measured from there, never from before this controller could see it.
        self._last_sign: dict[tuple[str, JobTypes, int], tuple[Any, float]] = {}
        self._elapsed: Callable[[], float] = elapsed_of(self.clock)
        self._checked_elapsed = self._elapsed()
        self._env_warned: set[tuple[JobTypes, str]] = set()  # env names missing from the spec, said once
        self.halted: str | None = None
        """Why the sweep stopped before its end (its first trials all failed one way), else None."""
        # some trial has scored, or the first failures were judged to be the jobs' own: from then
        # on failures never stop the sweep
        self._first_failures_settled = False
        # runs that had failed before this controller started: a rerun after the jobs were fixed
        # must not stop at once on the old failures
        self._failed_before: set[str] = set()

    # -- public --------------------------------------------------------------------------

    def run(self) -> RunList:
        """Run the experiment until the scheduler says it is complete; return every run.

        The runs come as the controller's `RunList`: runs finished long ago are read
        back from the store when the list is read, so keep the store open until then.

        Raises:
            LeaseHeldError: another live controller runs this experiment.
            StoreUnavailableError: the store's server could not be reached; the lease is kept,
                so that a controller built in this process with `resume_from` can go on.
            StoreError: the store failed otherwise (a full disk, its file deleted); the lease is
                released if the store still can.
        """
        self.lease.acquire(self.clock)
        try:
            if self.on_start is not None:
                self.on_start()
            with short_slices():  # start the next job soon after one ends, even on busy cores
                every_run = self._refresh()
                if self.stopper is not None:
                    self.stopper.learn(every_run)  # the values at rungs, from the runs' summaries
                self._failed_before = {run.run_id for run in every_run if run.status is JobStatus.FAILED}
                self._restore_state()
                self._recover()
                # hooks a dead controller left undone, on each run's latest snapshot
                left = [self.runs.get(run.run_id) for run in every_run if self._hook_runner.due(run)]
                del every_run
                self._run_hooks([run for run in left if run is not None])
                while True:
                    report = self.tick()
                    if self.on_tick is not None:
                        self.on_tick(self, report)
                    if report.complete:
                        break
                    if not (report.dispatched and report.free_slots > 0):
                        # Nothing more to do until a job changes: the wait returns at once if one has.
                        self._wait(self.settings.monitoring_interval)
                self._flush_dispatch_ids()
                if self.halted is None and not self._cancelled():
                    self.store.set_experiment_status(self.experiment, "complete")
                    end_sweep = getattr(self.dispatcher, "end_sweep", None)
                    if end_sweep is not None:  # what the dispatcher keeps on its engine for the sweep
                        end_sweep()
        except StoreUnavailableError:
            raise  # the lease stays ours, for the controller that resumes once the store answers
        except BaseException:
            self.lease.release(quiet=True)  # a release that fails too must not hide why we stopped
            raise
        self.lease.release()
        return self.runs

    def tick(self) -> TickReport:
        """One pass of the loop: poll, apply, hooks, schedule, dispatch, save state."""
        report = TickReport()
        now = self.clock.now()
        self.lease.renew(now, self._elapsed())
        events = self.dispatcher.poll()
        report.events = len(events)
        crash_point("after_poll")
        changed = self._apply(events, now)
        latest = list({run.run_id: run for run in changed}.values())  # each run's latest snapshot
        self._run_hooks(latest)
        self._stop_early(latest, now, _training_reports(events))
        self._cancel_stopped_again()
        self._check_silence(now)
        runs = self.runs
        if self.halted is None and not self._first_failures_settled:
            self._check_first_failures(runs)
        if self.halted is not None or self._cancelled():
            self._stop_unfinished()
            report.complete = not runs.how_many(*UNFINISHED)
            return report
        if self.scheduler.is_experiment_complete(runs):
            report.complete = not runs.how_many(*_RUNNING)
            self._save_state(self.store, force=True)
            return report
        retried = self._dispatch_retries()
        slots = self.settings.max_parallel - runs.how_many(*_TRAINING_SLOTS)
        jobs = self.scheduler.schedule(runs, max(0, slots))
        report.dispatched = retried + self._dispatch(jobs, slots)
        trainings = sum(job.type is JobTypes.LAUNCH_TRAINING for job in report.dispatched)
        report.free_slots = max(0, slots) - trainings
        if not report.dispatched:
            self._save_state(self.store)
        return report

    def resume_from(self, earlier: AdaptiveController) -> None:
        """Go on where `earlier`, stopped by a store outage in this process, left off.

        This controller takes `earlier`'s lease (still held in the store) and, when it runs,
        reads everything back from the store as any restarted controller does: what
        `earlier` had in memory, and whether its last write committed, do not matter.
        """
        self.lease = earlier.lease

    @property
    def hooks(self) -> ControllerHooks:
        """The hooks this controller runs (replace them, or their fields, between runs)."""
        return self._hook_runner.hooks

    @hooks.setter
    def hooks(self, hooks: ControllerHooks) -> None:
        self._hook_runner.hooks = hooks

    @property
    def owner(self) -> str:
        """Who holds the experiment's lease while this controller runs (host, pid, namespace, boot)."""
        return self.lease.owner

    @property
    def active_runs(self) -> list[RunInfo]:
        """Runs that have not finished yet."""
        return self.runs.in_status(*UNFINISHED)

    # -- reading the store -------------------------------------------------------------------

    def _refresh(self) -> list[RunInfo]:
        changed, seq = self.store.fetch_changed(self.experiment, self._seq)
        return self._absorb(changed, seq)

    def _load_runs(self, run_ids: list[str]) -> list[RunInfo]:
        """Runs read back from the store (finished ones without their job definitions)."""
        return [
            dataclasses.replace(run, train_job=None, eval_job=None) if run.status.is_finished() else run
            for run in self.store.fetch_runs({"run_id": run_ids})
        ]

    def _absorb(self, changed: list[RunInfo], seq: int) -> list[RunInfo]:
        """Take the runs changed up to update `seq` into `self.runs`; return them."""
        self._seq = seq
        cancelled = {run.run_id for run in changed if run.status is JobStatus.CANCELLED}
        if cancelled:
            self._cancel_checked_at = -_CANCEL_CHECK_INTERVAL  # `sweepwise cancel` may be at work
            for run_id, _, dispatch_id in self._unrecorded + self._just_recorded:
                if run_id in cancelled:  # `sweepwise cancel` read the run before its job's id
                    self.dispatcher.cancel(dispatch_id)
        self._just_recorded = []
        for run in changed:
            due = retry_due(run)
            if due is None:
                self._retries_due.pop(run.run_id, None)
            else:
                self._retries_due[run.run_id] = due
            if run.status.is_finished() and (run.train_job is not None or run.eval_job is not None):
                # a finished run's job definitions are never needed again: keep memory flat
                self.runs.upsert(dataclasses.replace(run, train_job=None, eval_job=None))
            else:
                self.runs.upsert(run)
        return changed

    def _cancelled(self) -> bool:
        """Whether `sweepwise cancel` cancelled the experiment (read at most every 0.2 s)."""
        if self._is_cancelled:
            return True
        now = time.monotonic()
        if now - self._cancel_checked_at < _CANCEL_CHECK_INTERVAL:
            return False
        self._cancel_checked_at = now
        record = self.store.get_experiment(self.experiment)
        self._is_cancelled = record is not None and record.status == "cancelled"
        return self._is_cancelled

    def _check_first_failures(self, runs: RunList) -> None:
        """Halt the sweep when its first trials all failed for one reason in the spec
        (`engine.first_failures`); once a trial has scored or they were judged, never again."""
        if runs.how_many(JobStatus.COMPLETED, JobStatus.STOPPED):
            self._first_failures_settled = True
            return
        if runs.how_many(JobStatus.FAILED) - len(self._failed_before) < first_failures.LIMIT:
            return
        fresh = [run for run in runs.in_status(JobStatus.FAILED) if run.run_id not in self._failed_before]
        reason = first_failures.misconfiguration(fresh)
        # a verdict of "their own reasons" on LIMIT or more failures stands: a later failure only
        # adds another reason or the same one (engine.first_failures), so no tick scans them again
        self._first_failures_settled = reason is None
        if reason is not None:
            self.halted = reason
            logger.debug("experiment %s: %s", self.experiment, reason)

    def _stop_unfinished(self) -> None:
        """Cancel the runs the experiment's cancellation did not reach (started meanwhile)."""
        unfinished = self.runs.in_status(*UNFINISHED)
        if not unfinished:
            return
        for run in unfinished:
            if self.store.cancel_run(run.run_id):
                for dispatch_id in (run.train_dispatch_id, run.eval_dispatch_id):
                    if dispatch_id:
                        self.dispatcher.cancel(dispatch_id)
        self._refresh()

    # -- hooks -------------------------------------------------------------------------------

    def _run_hooks(self, changed: list[RunInfo]) -> None:
        """Run due hooks; write every hook's update with its processed flag in one transaction."""
        results = self._hook_runner.run_due(changed)
        if not results.updates:
            return
        crash_point("in_hook")
        with self.store.transaction() as tx:
            for run_id, reason in results.failures:
                tx.mark_failed(run_id, reason)
            batch = getattr(tx, "update_run_summaries", None)  # a store that reads the runs together
            if batch is not None and len(results.updates) > 1:
                batch(results.updates)
            else:
                for run_id, update in results.updates.items():
                    tx.update_run_summary(run_id, update)
        self._refresh()

    @property
    def _evaluates(self) -> bool:
        """False when the scheduler declares that its runs need no eval (`needs_eval`)."""
        declared = getattr(self.scheduler, "needs_eval", None)
        if declared is None:  # the built-in schedulers declare it on their config
            declared = getattr(getattr(self.scheduler, "config", None), "needs_eval", True)
        return bool(declared)

    def _apply(self, events: list[JobEvent], now: float) -> list[RunInfo]:
        """Write the jobs' events, and complete the runs they leave with no eval to run, in one commit.

        Returns the runs changed since the last read of the store.
        """
        completing = not self._evaluates
        if not events and not (completing and self.runs.how_many(JobStatus.TRAINING_DONE_NO_EVAL)):
            return self._refresh()
        with self.store.transaction() as tx:
            self._record_dispatch_ids(tx)
            if events:
                tx.apply_events(events, policy=self.settings.retries)
            changed, seq = tx.fetch_changed(self.experiment, self._seq)
            if completing:
                latest = {run.run_id: run for run in self.runs.in_status(JobStatus.TRAINING_DONE_NO_EVAL)}
                latest.update((run.run_id, run) for run in changed)
                trained = [run for run in latest.values() if run.status is JobStatus.TRAINING_DONE_NO_EVAL]
                if trained:
                    self._complete_without_eval(trained, now, tx)
                    # a transaction's writes share one update number: read the completed runs by id
                    completed = tx.fetch_runs({"run_id": [run.run_id for run in trained]})
                    changed = list({run.run_id: run for run in (*changed, *completed)}.values())
        # read inside the transaction: exactly what it commits, without a second read after it
        return self._absorb(changed, seq)

    def _complete_without_eval(self, trained: list[RunInfo], now: float, tx: RunWriter) -> None:
        """Complete trained runs of a spec with no eval job, hooks included, inside `tx`.

        Each run gets an empty eval, finished at once, and its hooks' updates in one write:
        a restart sees the run trained (and completes it then) or completed, never between.
        """
        if not trained:
            return
        results = self._hook_runner.run_for_completion(trained)
        tx.apply_events([no_eval_event(run.run_id, now) for run in trained], results.updates)
        for run_id, reason in results.failures:
            tx.mark_failed(run_id, reason)

    # -- early stopping ------------------------------------------------------------------------

    def _stop_early(
        self, changed: list[RunInfo], now: float, reports: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Ask the stopper about each run's new reports (`reports`: run id -> rows, oldest first);
        commit its decisions, then cancel the stopped jobs.

        docs/optimizers.md, "Early stopping": a decision is committed (with the values at the
        rungs it judged) before its job is cancelled, so a restarted controller cancels a job
        whose stop was decided, and never decides it twice.
        """
        if self.stopper is None or not self.stopper.active:
            return
        updates: dict[str, dict[str, Any]] = {}
        stopped: list[tuple[RunInfo, int, float]] = []
        for run in changed:
            if run.status is not JobStatus.IN_TRAINING:
                warning = self.stopper.never_judged(run) if run.has_completed_training else None
                if warning:
                    logger.warning(warning)
                if run.has_completed_training and run.run_id in reports:  # read after its end: its
                    done = self.stopper.decide(run, reports[run.run_id], finished=True)  # values count
                    if done is not None:  # for the runs judged after it
                        updates[run.run_id] = self._rung_values(done)
                continue
            decision = self.stopper.decide(run, reports.get(run.run_id))
            if decision is None:
                continue
            update = self._rung_values(decision)
            if decision.stop:
                update[keys.STOP] = {"step": decision.step, "value": decision.value, "at": now}
                if decision.score is not None:  # else no observation: the report lacked the metric
                    update[keys.OBSERVATION_SCORE] = decision.score
                stopped.append((run, decision.step, decision.value))
            updates[run.run_id] = update
        if not updates:
            return
        with self.store.transaction() as tx:
            self._record_dispatch_ids(tx)
            batch = getattr(tx, "update_run_summaries", None)  # a store that reads the runs together
            if batch is not None and len(updates) > 1:
                batch(updates)
            else:
                for run_id, update in updates.items():
                    tx.update_run_summary(run_id, update)
        if stopped:  # a commit of rung values alone is no decision to crash after
            crash_point("after_stop_decision")
        for run, step, value in stopped:
            logger.info("run %s: stopped at step %d (%s %.6g)", run.run_id, step, self.stopper.metric, value)
            dispatch_id = self._dispatch_id(run, JobTypes.LAUNCH_TRAINING)
            if dispatch_id:
                self._cancel_stopped(run.run_id, dispatch_id)
        if stopped:
            crash_point("after_stop_cancel")
        self._refresh()

    def _rung_values(self, decision: Decision) -> dict[str, Any]:
        """A decision's summary update: the values at the rungs, and (when the stopper judges the
        experiment's metric) the same values as the run's scores there, for the optimizer."""
        update: dict[str, Any] = {keys.RUNGS: decision.rungs}
        if self.stopper is not None and self.stopper.metric == self.stopper.score_metric:
            update[keys.OBSERVATION_RUNGS] = decision.rungs
        return update

    def _cancel_stopped(self, run_id: str, dispatch_id: str, wait: float = _CANCEL_RETRY_FIRST) -> None:
        """Cancel the job of a run whose stop is decided; a cancel that fails is tried again later.

        The decision holds either way: however the job ends, the run is STOPPED. Until it ends,
        a failed cancel (a cluster that did not answer) is tried again after `wait` seconds,
        then twice as long each time, up to a minute (docs/optimizers.md, "Early stopping").
        """
        try:
            self.dispatcher.cancel(dispatch_id)
        except DispatchError as exc:
            if run_id not in self._cancels_due:
                logger.warning(
                    "run %s: could not stop its training job (%s); trying again, and it is STOPPED "
                    "when it ends",
                    run_id,
                    exc,
                )
            next_wait = min(2 * wait, _CANCEL_RETRY_LAST)
            self._cancels_due[run_id] = (dispatch_id, self._elapsed() + wait, next_wait)
        else:
            self._cancels_due.pop(run_id, None)

    def _cancel_stopped_again(self) -> None:
        """Try again the failed cancels that are due, of stopped runs whose job has not ended."""
        if not self._cancels_due:
            return
        elapsed = self._elapsed()
        for run_id, (dispatch_id, due, wait) in list(self._cancels_due.items()):
            run = self.runs.get(run_id)
            if run is None or run.status is not JobStatus.IN_TRAINING:
                del self._cancels_due[run_id]  # its job has ended: STOPPED
            elif due <= elapsed:
                self._cancel_stopped(run_id, dispatch_id, wait)

    def _dispatch_id(self, run: RunInfo, job_type: JobTypes) -> str | None:
        """Where `run`'s job of `job_type` runs, recorded or only just dispatched."""
        recorded = run.train_dispatch_id if job_type is JobTypes.LAUNCH_TRAINING else run.eval_dispatch_id
        if recorded:
            return recorded
        for run_id, kind, dispatch_id in reversed(self._just_recorded + self._unrecorded):
            if run_id == run.run_id and kind is job_type:
                return dispatch_id
        return None

    # -- silent jobs ---------------------------------------------------------------------------

    def _check_silence(self, now: float) -> None:
        """Stop and retry jobs silent for `stale_after` (docs/design.md, "Liveness from evidence").

        A job's silence runs from when this controller last saw it give a sign of life (a
        new heartbeat) or began watching it (its dispatch, or this controller's start), on
        a clock that does not run while the machine sleeps: a job waiting to start, an
        eval queued behind others, a controller that was away or a laptop that slept
        never counts against a job.
        """
        if now - self._stale_checked_at < self.settings.monitoring_interval:
            return
        self._stale_checked_at = now
        elapsed = self._elapsed()
        limit = self.settings.stale_after
        if elapsed - self._checked_elapsed > limit / 2:
            self._last_sign.clear()  # this controller was stopped or asleep: every job starts afresh
        self._checked_elapsed = elapsed
        lost: list[JobEvent] = []
        running = self.runs.in_status(JobStatus.IN_TRAINING, JobStatus.IN_EVAL)
        watched = {_job_key(run) for run in running}
        for key in [key for key in self._last_sign if key not in watched]:
            del self._last_sign[key]
        for run in running:
            key = _job_key(run)
            job_type = key[1]
            heartbeat = run.last_heartbeat_at
            sign = self._last_sign.get(key)
            if sign is None or sign[0] != heartbeat:
                self._last_sign[key] = (heartbeat, elapsed)
                continue
            if elapsed - sign[1] <= limit:
                continue
            dispatch_id = run.eval_dispatch_id if job_type is JobTypes.LAUNCH_EVAL else run.train_dispatch_id
            logger.warning(
                "run %s: its %s job gave no sign of life for %.0f s; stopping it",
                run.run_id,
                job_type.short,
                limit,
            )
            if dispatch_id:
                self.dispatcher.cancel(dispatch_id)
            del self._last_sign[key]
            error = f"job lost: no heartbeat for {limit:.0f} s (stopped)"
            attempt = run.attempt(job_type)
            lost.append(
                JobEvent(
                    run.run_id, job_type, EventKind.LOST, now, dispatch_id or "", error=error, attempt=attempt
                )
            )
        if lost:
            with self.store.transaction() as tx:
                self._record_dispatch_ids(tx)
                tx.apply_events(lost, policy=self.settings.retries)
            self._refresh()

    # -- dispatching ---------------------------------------------------------------------------

    def _dispatch(self, jobs: list[JobDefinition], slots: int) -> list[JobDefinition]:
        trainings = [job for job in jobs if job.type is JobTypes.LAUNCH_TRAINING]
        evals = [job for job in jobs if job.type is JobTypes.LAUNCH_EVAL]
        if len(trainings) > max(0, slots):
            logger.warning(
                "scheduler asked for %d trainings with %d free slots; starting %d",
                len(trainings),
                slots,
                max(0, slots),
            )
            trainings = trainings[: max(0, slots)]
        jobs = [*evals, *trainings]
        if not jobs:
            return []
        next_index = len(self.runs)
        with self.store.transaction() as tx:  # docs/design.md, crash safety: intent before dispatch
            self._record_dispatch_ids(tx)
            self._save_state(tx)
            batch = getattr(tx, "record_eval_intents", None)  # a store that reads the runs together
            if batch is not None and len(evals) > 1:
                batch(evals)
            else:
                for job in evals:
                    tx.record_eval_intent(job)
            for offset, job in enumerate(trainings):
                suggestion = job.metadata.get(keys.SUGGESTION_METADATA, job.overrides)
                tx.record_training_intent(self.experiment, job, suggestion, next_index + offset + 1)
        crash_point("after_intent")
        started: list[tuple[JobDefinition, str]] = []
        for job in jobs:
            dispatch_id = self._start(job)
            if dispatch_id is not None:
                started.append((job, dispatch_id))
            crash_point("mid_dispatch")
        # Then the dispatch id, committed with the next transaction (the job's first event at the
        # latest); until then a restarted controller finds the job with `find` (docs/design.md).
        self._unrecorded += [(job.run_id, job.type, dispatch_id) for job, dispatch_id in started]
        if self.hooks.on_job_dispatch is not None:
            for job, dispatch_id in started:
                self.hooks.on_job_dispatch(job, dispatch_id)
        return [job for job, _ in started]

    def _dispatch_retries(self) -> list[JobDefinition]:
        """Start the new attempt of every job the lifecycle put back to run again."""
        started: list[JobDefinition] = []
        for run_id, job_type in list(self._retries_due.items()):
            del self._retries_due[run_id]
            run = self.runs.get(run_id)
            if run is None or retry_due(run) is not job_type:
                continue
            job = run.train_job if job_type is JobTypes.LAUNCH_TRAINING else run.eval_job
            if job is None:
                continue
            job = self._with_env(job.model_copy(update={"attempt": run.attempt(job_type)}))
            logger.info("run %s: starting attempt %d of its %s job", run_id, job.attempt, job_type.short)
            dispatch_id = self._start(job)
            if dispatch_id is not None:
                self._unrecorded.append((run_id, job_type, dispatch_id))
                started.append(job)
        return started

    def _record_dispatch_ids(self, tx: RunWriter) -> None:
        batch = getattr(tx, "record_dispatch_ids", None)  # a store that reads the runs together
        if batch is not None and len(self._unrecorded) > 1:
            batch(self._unrecorded)
        else:
            for run_id, job_type, dispatch_id in self._unrecorded:
                tx.record_dispatch_id(run_id, job_type, dispatch_id)
        self._just_recorded += self._unrecorded
        self._unrecorded = []

    def _flush_dispatch_ids(self) -> None:
        if self._unrecorded:
            with self.store.transaction() as tx:
                self._record_dispatch_ids(tx)

    def _with_env(self, job: JobDefinition) -> JobDefinition:
        """A stored job with the env values the store does not keep, taken from the current spec.

        The store records env values by name only (README, `train`); a job started again from
        its stored definition gets them from the scheduler's `JobEnvironment`. A name the spec
        no longer gives is left out of the job's env, with one warning.
        """
        names = job.unrecorded_env
        if not names:
            return job
        current = self.scheduler.job_env(job.type) if isinstance(self.scheduler, JobEnvironment) else {}
        env = dict(job.env)
        for name in names:
            if name in current:
                env[name] = current[name]
                continue
            del env[name]
            if (job.type, name) not in self._env_warned:
                self._env_warned.add((job.type, name))
                logger.warning(
                    "the %s env variable %s was recorded by name only and the spec no longer gives it; "
                    "%s jobs started again run without it",
                    job.type.short,
                    name,
                    job.type.short,
                )
        return job.model_copy(update={"env": env})

    def _start(self, job: JobDefinition) -> str | None:
        try:
            return self.dispatcher.dispatch(job)
        except DispatchError as exc:
            logger.error("could not start %s job of run %s: %s", job.type.short, job.run_id, exc)
            self.store.mark_failed(job.run_id, f"dispatch failed: {exc}")
            return None

    def _recover(self) -> None:
        """docs/design.md, crash safety: reattach or (re)start every job an earlier controller left behind."""
        recorded: list[tuple[str, JobTypes, str]] = []
        lost: list[JobEvent] = []
        for run in self.runs.in_status(*UNFINISHED):
            run_id = run.run_id
            self._retries_due.pop(run_id, None)  # handled here
            stopping = keys.STOP in run.summary  # decided before the last controller could cancel
            for job, dispatch_id, wanted in (
                (run.train_job, run.train_dispatch_id, not run.has_completed_training),
                (run.eval_job, run.eval_dispatch_id, run.has_started_eval and not run.has_been_evaluated),
            ):
                if job is None or not wanted:
                    continue
                attempt = run.attempt(job.type)
                if attempt != job.attempt:
                    job = job.model_copy(update={"attempt": attempt})
                if isinstance(self.dispatcher, Reattachable):
                    found = dispatch_id or self.dispatcher.find(run_id, job.type, attempt)
                    if found is not None:
                        self.dispatcher.reattach(found, run_id, job.type)
                        if stopping and job.type is JobTypes.LAUNCH_TRAINING:
                            self._cancel_stopped(run_id, found)
                        if dispatch_id is None:
                            recorded.append((run_id, job.type, found))
                        continue
                elif dispatch_id is not None:
                    now = self.clock.now()
                    lost.append(JobEvent(run_id, job.type, EventKind.LOST, now, dispatch_id, attempt=attempt))
                    continue
                if stopping and job.type is JobTypes.LAUNCH_TRAINING:  # never started again: STOPPED
                    now = self.clock.now()
                    lost.append(JobEvent(run_id, job.type, EventKind.LOST, now, "", attempt=attempt))
                    continue
                new_id = self._start(self._with_env(job))
                if new_id is not None:
                    recorded.append((run_id, job.type, new_id))
        if recorded:
            with self.store.transaction() as tx:
                for run_id, job_type, dispatch_id in recorded:
                    tx.record_dispatch_id(run_id, job_type, dispatch_id)
        if lost:
            self.store.apply_events(lost, policy=self.settings.retries)
        self._refresh()

    # -- state and waiting ---------------------------------------------------------------------

    def _restore_state(self) -> None:
        if not isinstance(self.scheduler, SchedulerWithState):
            return
        data = self.store.load_state(self.experiment)
        if data is not None:
            self.scheduler.load_state(data)
            self._saved_state = data

    def _save_state(self, target: RunWriter, *, force: bool = False) -> None:
        """Save the scheduler's state if it changed, at most once per `_STATE_SAVE_INTERVAL`.

        A state that lists every run costs time in proportion to the runs to save, so it
        is not saved every tick; a stale saved state costs nothing on restart, because
        schedulers bring their state up to date from the runs' statuses (docs/design.md, crash safety).
        """
        state = getattr(self.scheduler, "state", None)
        if state is None or not hasattr(state, "model_dump"):
            return
        now = time.monotonic()
        if not force and now - self._state_saved_at < _STATE_SAVE_INTERVAL:
            return
        self._state_saved_at = now
        data = state.model_dump()
        if data != self._saved_state:
            target.save_state(self.experiment, data)
            self._saved_state = data

    def _wait(self, seconds: float) -> None:
        if isinstance(self.dispatcher, Waitable):
            self.dispatcher.wait(seconds)
        else:
            self.clock.sleep(seconds)


def _training_reports(events: list[JobEvent]) -> dict[str, list[dict[str, Any]]]:
    """Each run's training reports in `events` (METRICS events' rows), oldest first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event.kind is EventKind.METRICS and event.job_type is JobTypes.LAUNCH_TRAINING and event.metrics:
            out.setdefault(event.run_id, []).extend([*(event.earlier_metrics or []), event.metrics])
    return out


def _job_key(run: RunInfo) -> tuple[str, JobTypes, int]:
    """The job a running run waits on (its eval once the eval has started, else its training)."""
    job_type = JobTypes.LAUNCH_EVAL if run.status is JobStatus.IN_EVAL else JobTypes.LAUNCH_TRAINING
    return run.run_id, job_type, run.attempt(job_type)


__all__ = ["AdaptiveController", "ControllerHooks", "ControllerSettings", "TickReport"]
