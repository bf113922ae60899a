"""`DispatcherContract`: the conformance suite every dispatcher backend passes.

Subclass it in a test module and define the `make_dispatcher` fixture: a factory that
builds a fresh dispatcher over the same runs root and experiment each time it is called
(a second call is "a restarted controller"). The checks:

- dispatch is idempotent on (run, job type, attempt): a second dispatch, also from a
  restarted controller, returns the same id and starts nothing (judged from the file
  each job start appends to); another attempt starts anew;
- `find` from a restarted controller returns the id, and None for what never started;
- `reattach` + `poll` yield the FINISHED event with the job's result, for a job still
  running at the restart and for one that ended meanwhile;
- `cancel` stops a running job (its process is gone and never writes "done"), also when the
  runs root is full (a tmpfs: the job and its supervisor live on, the cancel marker cannot be
  written);
- a running job's `sweepwise.report` rows reach `poll` as METRICS events, newer and newer,
  each row at most once (early stopping judges runs by them);
- the job's log is readable (`LogReader.read_log`, else `<runs_root>/<experiment>/<run_id>/<stem>.log`);
- a job killed behind the dispatcher's back, watched or while the controller is down,
  ends LOST or FAILED with a reason, never RUNNING forever.

Hooks a backend may override: `kill_job` (how to kill a job behind the dispatcher's
back; default: SIGKILL to the pid the job recorded), `job_gone` (whether a job's
process has ended), `job_type` (which stage's jobs to run), `experiment`, and the class
attribute `RUNS_PROCESSES` (False for a dispatcher that runs no real process: the
checks that need one are left out). A check a backend cannot meet is removed in the
subclass by setting it to None, with a comment saying why (see the simulated one in
tests/test_dispatcher_contract.py).

Waiting is by polling with a generous deadline (`DEADLINE`); nothing asserts how long
anything took. The `runs_root` fixture (tests/local_dispatcher_fixtures.py) is
`tmp_path/runs`, and kills any job left under it.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.core.protocols import Dispatcher, LogReader, Reattachable, Waitable
from sweepwise.runtime import job_stem
from sweepwise.runtime.supervise import process_alive
from tmpfs import fill_disk, small_tmpfs

TRAIN, EVAL = JobTypes.LAUNCH_TRAINING, JobTypes.LAUNCH_EVAL
DEADLINE = 120.0  # seconds any awaited event may take; generous, never a measure of speed

# The contract's job: appends "start <pid>" to its marker file, says hello on stdout, and
# with CONTRACT_HOLD=1 appends "tick" and reports a metrics row (`sweepwise.report`) every
# 0.05 s until `<marker>.release` exists (at most 300 s), training on when a full disk refuses
# a row; then appends "done" and reports its result.
JOB_SCRIPT = textwrap.dedent(
    """
    import json, os, time
    import sweepwise
    mark = os.environ["CONTRACT_MARK"]

    def note(line):
        with open(mark, "a") as handle:
            handle.write(line + "\\n")

    note(f"start {os.getpid()}")
    print("contract job says hello", flush=True)
    if os.environ.get("CONTRACT_HOLD") == "1":
        deadline = time.time() + 300
        ticks = 0
        while not os.path.exists(mark + ".release") and time.time() < deadline:
            note("tick")
            ticks += 1
            try:
                sweepwise.report(step=ticks, ticks=ticks)
            except OSError:  # a full disk (the full-disk check): this job trains on without
                pass
            time.sleep(0.05)
    note("done")
    print("SWEEPWISE_RESULT " + json.dumps({"score": 1.5, "job": os.path.basename(mark)}))
    """
)


def wait_until(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    """Poll `condition` until it is true; fail naming `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what} after {deadline:g} s")
        time.sleep(0.02)


@dataclass
class ContractJobs:
    """Builds the contract's jobs and reads the marker files they write.

    Call it as `job(run_id, job_type, cmd=..., attempt=1, hold=False)`.
    """

    marks: Path
    script: Path
    _made: list[JobDefinition] = field(default_factory=list)

    def __call__(
        self,
        run_id: str,
        job_type: JobTypes = TRAIN,
        *,
        cmd: str | list[str] | None = None,
        attempt: int = 1,
        hold: bool = False,
    ) -> JobDefinition:
        """A job that records its start in its own marker file; `hold`: runs until `release`."""
        stem = f"{run_id}.{job_stem(job_type.short, attempt)}"
        job = JobDefinition(
            run_id=run_id,
            type=job_type,
            attempt=attempt,
            cmd=cmd if cmd is not None else [sys.executable, str(self.script)],
            env={"CONTRACT_MARK": str(self.marks / f"{stem}.txt"), "CONTRACT_HOLD": "1" if hold else "0"},
        )
        self._made.append(job)
        return job

    def mark(self, job: JobDefinition) -> Path:
        """The job's marker file."""
        return Path(job.env["CONTRACT_MARK"])

    def lines(self, job: JobDefinition) -> list[str]:
        """What the job wrote to its marker file so far."""
        path = self.mark(job)
        return path.read_text().splitlines() if path.exists() else []

    def starts(self, job: JobDefinition) -> int:
        """How many times the job started."""
        return sum(line.startswith("start") for line in self.lines(job))

    def pid(self, job: JobDefinition) -> int | None:
        """The pid of the job's latest start, if it started."""
        starts = [line for line in self.lines(job) if line.startswith("start ")]
        return int(starts[-1].split()[1]) if starts and starts[-1].split()[1].isdigit() else None

    def result(self, job: JobDefinition) -> dict[str, object]:
        """The result the job reports."""
        return {"score": 1.5, "job": self.mark(job).name}

    def release(self, job: JobDefinition) -> None:
        """Let a held job finish."""
        self.mark(job).with_name(self.mark(job).name + ".release").touch()

    def release_all(self) -> None:
        """Let every held job finish (teardown)."""
        for job in self._made:
            self.release(job)


class EventWaiter:
    """Polls dispatchers until an awaited event comes; keeps every event seen, per dispatcher."""

    def __init__(self) -> None:
        self._seen: dict[int, list[JobEvent]] = {}
        self._keep: list[Dispatcher] = []  # the ids above stay unique while the test runs

    def events(self, dispatcher: Dispatcher) -> list[JobEvent]:
        """Every event `dispatcher.poll()` returned through this waiter."""
        if id(dispatcher) not in self._seen:
            self._seen[id(dispatcher)] = []
            self._keep.append(dispatcher)
        return self._seen[id(dispatcher)]

    def __call__(self, dispatcher: Dispatcher, job: JobDefinition, *kinds: EventKind) -> JobEvent:
        """The first event of one of `kinds` for `job` (its run, type and attempt), polling for it."""
        seen = self.events(dispatcher)
        end = time.monotonic() + DEADLINE
        while True:
            for event in seen:
                if event.kind in kinds and (event.run_id, event.job_type, event.attempt) == (
                    job.run_id,
                    job.type,
                    job.attempt,
                ):
                    return event
            if time.monotonic() > end:
                got = [(e.run_id, e.job_type.short, e.attempt, e.kind.value) for e in seen]
                wanted = "/".join(kind.value for kind in kinds)
                raise AssertionError(f"no {wanted} event for {job.run_id} within {DEADLINE:g} s; got {got}")
            seen.extend(dispatcher.poll())
            if isinstance(dispatcher, Waitable):
                dispatcher.wait(0.2)
            else:
                time.sleep(0.2)


class DispatcherContract:
    """The checks; subclass with a `make_dispatcher` fixture (see the module docstring)."""

    RUNS_PROCESSES: ClassVar[bool] = True
    """Whether jobs are real processes (the job's marker shows its pid and when it stops)."""

    # -- fixtures a backend defines or may override --------------------------------------

    @pytest.fixture
    def make_dispatcher(self) -> Callable[[], Dispatcher]:
        """A fresh dispatcher over the same runs root and experiment at each call."""
        raise NotImplementedError("a DispatcherContract subclass defines the make_dispatcher fixture")

    @pytest.fixture
    def experiment(self) -> str:
        """The experiment the dispatchers run jobs for."""
        return "contract"

    @pytest.fixture
    def job_type(self) -> JobTypes:
        """The stage whose jobs the checks run."""
        return TRAIN

    @pytest.fixture
    def job(self, tmp_path: Path) -> Iterator[ContractJobs]:
        """The job factory; every held job is released at teardown."""
        marks = tmp_path / "contract-marks"
        marks.mkdir()
        script = tmp_path / "contract_job.py"
        script.write_text(JOB_SCRIPT)
        jobs = ContractJobs(marks, script)
        yield jobs
        jobs.release_all()

    @pytest.fixture
    def kill_job(self, job: ContractJobs) -> Callable[[Dispatcher, str, JobDefinition], None]:
        """Kills a running job behind the dispatcher's back: SIGKILL to the pid the job recorded."""

        def kill(dispatcher: Dispatcher, dispatch_id: str, definition: JobDefinition) -> None:
            pid = job.pid(definition)
            assert pid is not None, "the job never recorded its pid"
            os.kill(pid, signal.SIGKILL)

        return kill

    @pytest.fixture
    def job_gone(self, job: ContractJobs) -> Callable[[JobDefinition], bool]:
        """Whether a job's process has ended."""
        return lambda definition: not process_alive(job.pid(definition))

    @pytest.fixture
    def restart(self, make_dispatcher: Callable[[], Dispatcher]) -> Callable[[Dispatcher], Dispatcher]:
        """A restarted controller's dispatcher: closes the old one (if it closes), makes a new one."""

        def restart(old: Dispatcher) -> Dispatcher:
            close = getattr(old, "close", None)
            if close is not None:
                close()
            return make_dispatcher()

        return restart

    @pytest.fixture
    def wait_for_event(self) -> EventWaiter:
        """`wait_for_event(dispatcher, job, *kinds)`: the first such event, polled for."""
        return EventWaiter()

    @pytest.fixture
    def read_job_log(
        self, runs_root: Path, experiment: str
    ) -> Callable[[Dispatcher, JobDefinition], str | None]:
        """A job's log: `read_log` for a `LogReader`, else the run directory's log file."""

        def read(dispatcher: Dispatcher, definition: JobDefinition) -> str | None:
            if isinstance(dispatcher, LogReader):
                return dispatcher.read_log(definition.run_id, definition.type, definition.attempt)
            path = (
                runs_root
                / experiment
                / definition.run_id
                / f"{job_stem(definition.type.short, definition.attempt)}.log"
            )
            return path.read_text(errors="replace") if path.exists() else None

        return read

    # -- helpers of the checks ---------------------------------------------------------------

    def _running(
        self, dispatcher: Dispatcher, held: JobDefinition, job: ContractJobs, wait_for_event: EventWaiter
    ) -> str:
        """Dispatch the held job `held` and wait until it runs; its dispatch id."""
        dispatch_id = dispatcher.dispatch(held)
        wait_for_event(dispatcher, held, EventKind.STARTED)
        if self.RUNS_PROCESSES:
            wait_until(lambda: "tick" in job.lines(held), "the job to run")
        return dispatch_id

    def _gone_for_good(
        self, held: JobDefinition, job: ContractJobs, job_gone: Callable[[JobDefinition], bool]
    ) -> None:
        """A cancelled job's process ends, and released it writes no "done": it is not alive."""
        if self.RUNS_PROCESSES:
            wait_until(lambda: job_gone(held), "the cancelled job's process to end")
            job.release(held)  # a job still alive would now finish and write "done"
            assert "done" not in job.lines(held)

    # -- the checks ------------------------------------------------------------------------

    def test_is_a_reattachable_dispatcher(self, make_dispatcher: Callable[[], Dispatcher]) -> None:
        dispatcher = make_dispatcher()
        assert isinstance(dispatcher, Dispatcher)
        assert isinstance(dispatcher, Reattachable)

    def test_dispatch_is_idempotent_on_run_type_and_attempt(
        self,
        make_dispatcher: Callable[[], Dispatcher],
        restart: Callable[[Dispatcher], Dispatcher],
        job: ContractJobs,
        job_type: JobTypes,
        wait_for_event: EventWaiter,
    ) -> None:
        dispatcher = make_dispatcher()
        held = job("idem", job_type, hold=True)
        first = dispatcher.dispatch(held)
        assert dispatcher.dispatch(held) == first
        wait_for_event(dispatcher, held, EventKind.STARTED)
        restarted = restart(dispatcher)
        assert restarted.dispatch(held) == first  # a restarted controller starts nothing either
        again = job("idem", job_type, attempt=2)
        assert restarted.dispatch(again) != first  # another attempt is another job
        job.release(held)
        assert wait_for_event(restarted, held, EventKind.FINISHED).succeeded
        assert wait_for_event(restarted, again, EventKind.FINISHED).succeeded
        assert (job.starts(held), job.starts(again)) == (1, 1)

    def test_find_after_a_restart_returns_the_id(
        self,
        make_dispatcher: Callable[[], Dispatcher],
        restart: Callable[[Dispatcher], Dispatcher],
        job: ContractJobs,
        job_type: JobTypes,
        wait_for_event: EventWaiter,
    ) -> None:
        dispatcher = make_dispatcher()
        held = job("found", job_type, hold=True)
        dispatch_id = dispatcher.dispatch(held)
        wait_for_event(dispatcher, held, EventKind.STARTED)
        restarted = restart(dispatcher)
        assert isinstance(restarted, Reattachable)
        assert restarted.find("found", job_type, 1) == dispatch_id
        assert restarted.find("found", job_type, 2) is None
        assert restarted.find("never-dispatched", job_type, 1) is None
        other = EVAL if job_type is TRAIN else TRAIN
        assert restarted.find("found", other, 1) is None

    def test_reattach_and_poll_yield_the_finished_event_with_the_result(
        self,
        make_dispatcher: Callable[[], Dispatcher],
        restart: Callable[[Dispatcher], Dispatcher],
        job: ContractJobs,
        job_type: JobTypes,
        wait_for_event: EventWaiter,
    ) -> None:
        dispatcher = make_dispatcher()
        running = job("still-running", job_type, hold=True)
        ended = job("ended-meanwhile", job_type)
        ids = {definition.run_id: dispatcher.dispatch(definition) for definition in (running, ended)}
        wait_for_event(dispatcher, running, EventKind.STARTED)
        wait_for_event(dispatcher, ended, EventKind.FINISHED)  # its event dies with the controller
        restarted = restart(dispatcher)
        assert isinstance(restarted, Reattachable)
        for definition in (running, ended):
            found = restarted.find(definition.run_id, job_type, 1)
            assert found == ids[definition.run_id]
            restarted.reattach(found, definition.run_id, job_type)
        job.release(running)
        for definition in (running, ended):
            event = wait_for_event(restarted, definition, EventKind.FINISHED)
            assert event.succeeded, event
            assert event.result == job.result(definition)
            assert (event.dispatch_id, event.job_type, event.attempt) == (ids[definition.run_id], job_type, 1)
        assert (job.starts(running), job.starts(ended)) == (1, 1)

    def test_cancel_stops_a_running_job(
        self,
        make_dispatcher: Callable[[], Dispatcher],
        job: ContractJobs,
        job_type: JobTypes,
        wait_for_event: EventWaiter,
        job_gone: Callable[[JobDefinition], bool],
    ) -> None:
        dispatcher = make_dispatcher()
        held = job("cancelled", job_type, hold=True)
        dispatch_id = self._running(dispatcher, held, job, wait_for_event)
        dispatcher.cancel(dispatch_id)
        ended = wait_for_event(dispatcher, held, EventKind.FINISHED, EventKind.LOST)
        assert not ended.succeeded
        dispatcher.cancel(dispatch_id)  # an ended job: no error
        self._gone_for_good(held, job, job_gone)

    @pytest.mark.slow  # mounts a tmpfs at the runs root (root): the full suite runs it
    def test_cancel_on_a_full_disk_still_stops_the_job(
        self,
        make_dispatcher: Callable[[], Dispatcher],
        job: ContractJobs,
        job_type: JobTypes,
        wait_for_event: EventWaiter,
        job_gone: Callable[[JobDefinition], bool],
        runs_root: Path,
    ) -> None:
        # The runs root fills up under a running job: the job and its supervisor live on, the
        # `<job>.cancel` marker cannot be written, and the cancel stops the job all the same.
        with small_tmpfs(runs_root, size="8m"):
            dispatcher = make_dispatcher()
            held = job("full-disk", job_type, hold=True)
            dispatch_id = self._running(dispatcher, held, job, wait_for_event)
            filler = fill_disk(runs_root / "filler")
            if self.RUNS_PROCESSES:
                ticks = job.lines(held).count("tick")
                wait_until(lambda: job.lines(held).count("tick") > ticks + 10, "the job to go on, disk full")
            dispatcher.cancel(dispatch_id)  # no error, though the marker cannot be written
            self._gone_for_good(held, job, job_gone)
            filler.unlink()  # room for the job's final status
            ended = wait_for_event(dispatcher, held, EventKind.FINISHED, EventKind.LOST)
            assert not ended.succeeded, ended
            close = getattr(dispatcher, "close", None)
            if close is not None:
                close()

    def test_a_running_jobs_reports_come_back_as_metrics_events(
        self,
        make_dispatcher: Callable[[], Dispatcher],
        job: ContractJobs,
        job_type: JobTypes,
        wait_for_event: EventWaiter,
    ) -> None:
        dispatcher = make_dispatcher()
        held = job("reporting", job_type, hold=True)
        dispatcher.dispatch(held)
        first = wait_for_event(dispatcher, held, EventKind.METRICS)
        assert first.metrics is not None and first.metrics["ticks"] == first.metrics["step"] >= 1
        seen = wait_for_event.events(dispatcher)

        def steps() -> list[int]:  # every row of every METRICS event, oldest first
            return [
                int(row["step"])
                for e in seen
                if e.kind is EventKind.METRICS and e.run_id == held.run_id and e.metrics
                for row in [*(e.earlier_metrics or []), e.metrics]
            ]

        def progressed() -> bool:
            seen.extend(dispatcher.poll())
            return steps()[-1] > first.metrics["step"]  # type: ignore[index]

        wait_until(progressed, "a newer metrics row while the job runs")
        job.release(held)
        wait_for_event(dispatcher, held, EventKind.FINISHED)
        # every row the job reported, each once, in order: a stopper judges each (docs/backends.md)
        assert steps() == list(range(steps()[0], steps()[-1] + 1)), steps()

    def test_the_log_is_readable(
        self,
        make_dispatcher: Callable[[], Dispatcher],
        job: ContractJobs,
        job_type: JobTypes,
        wait_for_event: EventWaiter,
        read_job_log: Callable[[Dispatcher, JobDefinition], str | None],
    ) -> None:
        dispatcher = make_dispatcher()
        quick = job("logged", job_type)
        dispatcher.dispatch(quick)
        wait_for_event(dispatcher, quick, EventKind.FINISHED)
        text = read_job_log(dispatcher, quick)
        assert text is not None and "contract job says hello" in text

    def test_a_job_killed_behind_its_back_ends_lost_or_failed_with_a_reason(
        self,
        make_dispatcher: Callable[[], Dispatcher],
        restart: Callable[[Dispatcher], Dispatcher],
        job: ContractJobs,
        job_type: JobTypes,
        wait_for_event: EventWaiter,
        kill_job: Callable[[Dispatcher, str, JobDefinition], None],
    ) -> None:
        dispatcher = make_dispatcher()
        watched = job("killed-watched", job_type, hold=True)
        unwatched = job("killed-while-down", job_type, hold=True)
        ids = {definition.run_id: dispatcher.dispatch(definition) for definition in (watched, unwatched)}
        for definition in (watched, unwatched):
            wait_for_event(dispatcher, definition, EventKind.STARTED)
        wait_until(lambda: "tick" in job.lines(watched) and "tick" in job.lines(unwatched), "the jobs to run")
        kill_job(dispatcher, ids["killed-watched"], watched)
        ended = wait_for_event(dispatcher, watched, EventKind.FINISHED, EventKind.LOST)
        restarted = restart(dispatcher)
        kill_job(restarted, ids["killed-while-down"], unwatched)
        assert isinstance(restarted, Reattachable)
        restarted.reattach(ids["killed-while-down"], "killed-while-down", job_type)
        ended_while_down = wait_for_event(restarted, unwatched, EventKind.FINISHED, EventKind.LOST)
        for event in (ended, ended_while_down):
            assert not event.succeeded, event
            assert event.kind is EventKind.LOST or event.error, f"a failure without a reason: {event}"
        assert "done" not in job.lines(watched) + job.lines(unwatched)


__all__ = ["DEADLINE", "ContractJobs", "DispatcherContract", "EventWaiter", "wait_until"]
