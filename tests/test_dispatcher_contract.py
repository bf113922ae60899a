"""The dispatcher contract (tests/dispatcher_contract.py) for the built-in dispatchers.

`local` meets all of it. `simulated` runs no process and keeps its jobs in memory, so a
"restart" is `forget_watchers()` on the same instance (its virtual world outlives the
controller) and the checks that need a real process are left out, each saying why.
`StagedDispatcher` over two local dispatchers meets it for jobs of either stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dispatcher_contract import DispatcherContract
from sweepwise.core.clock import VirtualClock
from sweepwise.core.models import JobDefinition, JobTypes
from sweepwise.core.protocols import Dispatcher
from sweepwise.dispatchers.local import LocalDispatcher
from sweepwise.dispatchers.simulated import SimOutcome, SimulatedDispatcher
from sweepwise.dispatchers.staged import StagedDispatcher


@pytest.fixture
def closing() -> Iterator[list[Dispatcher]]:
    """Dispatchers to close when the test ends."""
    made: list[Dispatcher] = []
    yield made
    for dispatcher in made:
        close = getattr(dispatcher, "close", None)
        if close is not None:
            close()


class TestLocalDispatcher(DispatcherContract):
    @pytest.fixture
    def make_dispatcher(
        self, runs_root: Path, experiment: str, closing: list[Dispatcher]
    ) -> Callable[[], Dispatcher]:
        def make() -> Dispatcher:
            dispatcher = LocalDispatcher(runs_root, experiment, heartbeat_interval=0.2, grace_period=2.0)
            closing.append(dispatcher)
            return dispatcher

        return make


# The local dispatcher's processes again, per stage: the fast subset has TestLocalDispatcher, and
# the staged routing with simulated stages (tests/test_staged_dispatcher.py).
@pytest.mark.slow
class TestStagedLocalDispatchers(DispatcherContract):
    @pytest.fixture(params=list(JobTypes), ids=lambda job_type: job_type.short)
    def job_type(self, request: pytest.FixtureRequest) -> JobTypes:
        return JobTypes(request.param)

    @pytest.fixture
    def make_dispatcher(
        self, runs_root: Path, experiment: str, closing: list[Dispatcher]
    ) -> Callable[[], Dispatcher]:
        def make() -> Dispatcher:
            train = LocalDispatcher(runs_root, experiment, heartbeat_interval=0.2, grace_period=2.0)
            evaluate = LocalDispatcher(runs_root, experiment, heartbeat_interval=0.3, grace_period=1.0)
            dispatcher = StagedDispatcher(train, evaluate)
            closing.append(dispatcher)
            return dispatcher

        return make


def _simulated_job(job: JobDefinition) -> SimOutcome:
    """The contract job in virtual time: records its start; a held job runs 10 virtual seconds."""
    mark = Path(job.env["CONTRACT_MARK"])
    with mark.open("a") as handle:
        handle.write("start simulated\n")
    duration = 10.0 if job.env.get("CONTRACT_HOLD") == "1" else 0.0
    return SimOutcome(duration=duration, result={"score": 1.5, "job": mark.name})


class TestSimulatedDispatcher(DispatcherContract):
    RUNS_PROCESSES = False  # no process: cancel is judged from its event alone

    @pytest.fixture
    def make_dispatcher(self) -> Callable[[], Dispatcher]:
        world: list[SimulatedDispatcher] = []

        def make() -> Dispatcher:
            if world:  # its jobs live in this object: a restart forgets what was watched
                world[0].forget_watchers()
            else:
                world.append(SimulatedDispatcher(VirtualClock(), _simulated_job))
            return world[0]

        return make

    # A simulated job reports no rows while it runs (its outcome is decided at dispatch).
    test_a_running_jobs_reports_come_back_as_metrics_events = None  # type: ignore[assignment]
    # A simulated job writes no output: there is no log to read.
    test_the_log_is_readable = None  # type: ignore[assignment]
    # A simulated job has no process to kill behind the dispatcher's back.
    test_a_job_killed_behind_its_back_ends_lost_or_failed_with_a_reason = None  # type: ignore[assignment]
