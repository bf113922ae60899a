"""A dispatcher in virtual time: each job's duration and result come from a Python function.

It runs a whole sweep through the real controller in milliseconds, so scheduler
and controller tests never sleep, and the orchestration benchmark measures the
controller and store alone. A job whose duration exceeds its `timeout` ends at its
timeout, timed out, as a local job's supervisor would stop it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweepwise.core.clock import VirtualClock
from sweepwise.core.models import Check, EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.dispatchers import register_dispatcher
from sweepwise.dispatchers._local_watch import timeout_error


@dataclass(frozen=True, slots=True)
class SimOutcome:
    """What a simulated job does: how long it takes and how it ends."""

    duration: float = 0.0
    result: dict[str, Any] | None = None
    exit_code: int = 0
    error: str | None = None


JobBehaviour = Callable[[JobDefinition], SimOutcome]


def _zero_length(job: JobDefinition) -> SimOutcome:
    return SimOutcome()


@dataclass(slots=True)
class _SimJob:
    run_id: str
    job_type: JobTypes
    dispatch_id: str
    started_at: float
    ends_at: float
    outcome: SimOutcome
    watched: bool = True
    finished: bool = False
    started_reported: bool = False
    attempt: int = 1
    timed_out: bool = False


@dataclass(slots=True)
class DispatchRecord:
    """One call that really started a simulated job (for assertions)."""

    run_id: str
    job_type: JobTypes
    at: float
    params: dict[str, Any] = field(default_factory=dict)


@register_dispatcher("simulated")
class SimulatedDispatcher:
    """Runs jobs in virtual time.

    Args:
        clock: the virtual clock shared with the controller; `wait` advances it.
        behaviour: maps a job to its `SimOutcome`; default: zero-length, empty result.
        keep_history: record every dispatch in `started` and remember finished jobs (for
            `find` / `reattach` after a simulated crash); False keeps memory flat over long
            simulations that restart no controller.
    """

    @staticmethod
    def diagnose(runs_root: Path, options: Mapping[str, Any]) -> list[Check]:
        """`Diagnosable`: nothing to check; jobs run in virtual time, in the controller's process."""
        return [Check("virtual time", True, "runs no process and needs nothing of this machine")]

    def __init__(
        self, clock: VirtualClock, behaviour: JobBehaviour | None = None, *, keep_history: bool = True
    ) -> None:
        self.clock = clock
        self.behaviour = behaviour or _zero_length
        self.keep_history = keep_history
        self.started: list[DispatchRecord] = []
        self._jobs: dict[tuple[str, JobTypes, int], _SimJob] = {}
        self._by_id: dict[str, _SimJob] = {}
        self._unreported: dict[str, _SimJob] = {}  # watched jobs whose STARTED is not reported yet
        self._ends: list[tuple[float, int, str]] = []
        self._counter = 0

    def dispatch(self, job: JobDefinition) -> str:
        """Start `job` now; a second dispatch of the same run, type and attempt starts nothing."""
        key = (job.run_id, job.type, job.attempt)
        existing = self._jobs.get(key)
        if existing is not None:
            existing.watched = True
            self._track(existing)
            return existing.dispatch_id
        now = self.clock.now()
        outcome = self.behaviour(job)
        attempt = "" if job.attempt == 1 else f".{job.attempt}"
        timed_out = job.timeout is not None and outcome.duration > job.timeout
        if timed_out and job.timeout is not None:  # stopped by SIGTERM at its timeout
            outcome = SimOutcome(job.timeout, exit_code=-15, error=timeout_error(job.timeout))
        dispatch_id = f"sim:{job.run_id}:{job.type.short}{attempt}"
        sim = _SimJob(job.run_id, job.type, dispatch_id, now, now + max(0.0, outcome.duration), outcome)
        sim.attempt = job.attempt
        sim.timed_out = timed_out
        self._jobs[key] = sim
        self._by_id[dispatch_id] = sim
        self._unreported[dispatch_id] = sim
        self._counter += 1
        heapq.heappush(self._ends, (sim.ends_at, self._counter, dispatch_id))
        if self.keep_history:
            self.started.append(DispatchRecord(job.run_id, job.type, now, job.params))
        return dispatch_id

    def poll(self) -> list[JobEvent]:
        """STARTED for new watched jobs, FINISHED for those whose time has come."""
        now = self.clock.now()
        events: list[JobEvent] = []
        while self._ends and self._ends[0][0] <= now:
            _, _, dispatch_id = heapq.heappop(self._ends)
            sim = self._by_id.get(dispatch_id)
            if sim is None or sim.finished:
                continue
            sim.finished = True
            if sim.watched:
                events.extend(self._report(sim, finished=True))
                if not self.keep_history:  # reported: nothing will ask about it again
                    del self._by_id[dispatch_id], self._jobs[(sim.run_id, sim.job_type, sim.attempt)]
                    self._unreported.pop(dispatch_id, None)
        for sim in list(self._unreported.values()):  # not every job ever dispatched: this stays cheap
            if sim.watched and not sim.started_reported and not sim.finished:
                events.extend(self._report(sim, finished=False))
            del self._unreported[sim.dispatch_id]
        return events

    def _track(self, sim: _SimJob) -> None:
        if sim.watched and not sim.started_reported:
            self._unreported[sim.dispatch_id] = sim

    def _report(self, sim: _SimJob, *, finished: bool) -> list[JobEvent]:
        events: list[JobEvent] = []
        if not sim.started_reported:
            sim.started_reported = True
            events.append(
                JobEvent(
                    sim.run_id,
                    sim.job_type,
                    EventKind.STARTED,
                    sim.started_at,
                    sim.dispatch_id,
                    attempt=sim.attempt,
                )
            )
        if finished:
            out = sim.outcome
            events.append(
                JobEvent(
                    sim.run_id,
                    sim.job_type,
                    EventKind.FINISHED,
                    sim.ends_at,
                    sim.dispatch_id,
                    exit_code=out.exit_code,
                    result=out.result,
                    error=out.error if out.error or out.exit_code == 0 else f"exit code {out.exit_code}",
                    started_at=sim.started_at,
                    attempt=sim.attempt,
                    timed_out=sim.timed_out,
                )
            )
        return events

    def cancel(self, dispatch_id: str) -> None:
        """End a job now, as if it were killed by SIGTERM."""
        sim = self._by_id.get(dispatch_id)
        if sim is None or sim.finished:
            return
        sim.outcome = SimOutcome(exit_code=-15, error="cancelled")
        sim.ends_at = self.clock.now()
        sim.timed_out = False  # stopped before its timeout
        self._counter += 1
        heapq.heappush(self._ends, (sim.ends_at, self._counter, dispatch_id))

    def find(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The dispatch id of the job for (run_id, job_type, attempt), if it was ever started."""
        sim = self._jobs.get((run_id, job_type, attempt))
        return sim.dispatch_id if sim else None

    def reattach(self, dispatch_id: str, run_id: str, job_type: JobTypes) -> None:
        """Watch a job again; its pending events (including a past FINISHED) are reported."""
        sim = self._by_id.get(dispatch_id)
        if sim is None:
            return
        sim.watched = True
        if sim.finished:
            sim.finished = False
            self._counter += 1
            heapq.heappush(self._ends, (sim.ends_at, self._counter, dispatch_id))
        self._track(sim)

    def forget_watchers(self) -> None:
        """Simulate a controller crash: nothing is watched until reattached."""
        for sim in self._by_id.values():
            sim.watched = False
            sim.started_reported = False
        self._unreported.clear()

    def wait(self, timeout: float) -> None:
        """Advance virtual time to the next job end, or by `timeout` if none comes sooner."""
        deadline = self.clock.now() + max(0.0, timeout)
        while self._ends and getattr(self._by_id.get(self._ends[0][2]), "finished", True):
            heapq.heappop(self._ends)
        if self._ends and self._ends[0][0] < deadline:
            self.clock.advance_to(self._ends[0][0])
        else:
            self.clock.advance_to(deadline)


__all__ = ["DispatchRecord", "JobBehaviour", "SimOutcome", "SimulatedDispatcher"]
