"""The contracts between sweepwise's parts, as runtime-checkable protocols.

Each protocol holds only what a new implementation must write. Optional
capabilities are separate protocols checked with `isinstance`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    from sweepwise.core.lifecycle import RetryPolicy
    from sweepwise.core.models import Check, JobDefinition, JobEvent, JobTypes, Observation, RunInfo


@runtime_checkable
class ExperimentScheduler(Protocol):
    """Experiment logic: given the runs, decide which jobs to start next."""

    def schedule(self, runs: Sequence[RunInfo], available_training_slots: int) -> list[JobDefinition]:
        """Return the jobs to dispatch now.

        Args:
            runs: every run of the experiment (finished, running, failed).
            available_training_slots: how many LAUNCH_TRAINING jobs may start now;
                LAUNCH_EVAL jobs do not count against it.
        """
        ...

    def is_experiment_complete(self, runs: Sequence[RunInfo]) -> bool:
        """True when the experiment needs no more jobs."""
        ...


@runtime_checkable
class SchedulerWithState(Protocol):
    """A scheduler whose `state` is saved every tick and restored on restart."""

    state: Any

    def load_state(self, data: dict[str, Any]) -> None:
        """Restore `state` from what `state.model_dump()` returned."""
        ...


@runtime_checkable
class JobEnvironment(Protocol):
    """A scheduler that can give a job's env again, for jobs started from their stored definition.

    The store keeps env values by name only (unless the spec's `record_env` names them);
    the controller fills them in from here before it starts a stored job again (after a
    restart, or for a retry).
    """

    def job_env(self, job_type: JobTypes) -> dict[str, str]:
        """The env that jobs of `job_type` get from the current spec."""
        ...


@runtime_checkable
class Store(Protocol):
    """The single source of truth for runs (the seed's three calls)."""

    def init_run(
        self,
        run_id: str,
        group: str | None = None,
        tags: list[str] | None = None,
        initial_summary: dict[str, Any] | None = None,
    ) -> None:
        """Create a PENDING run."""
        ...

    def fetch_runs(self, filters: dict[str, Any]) -> list[RunInfo]:
        """Runs matching `filters` (`group`, `run_id`, `since_seq`)."""
        ...

    def update_run_summary(self, run_id: str, summary_update: dict[str, Any]) -> bool:
        """Merge `summary_update` into the run's summary; False if no such run."""
        ...


@runtime_checkable
class StateStore(Protocol):
    """Where a scheduler's state is kept between ticks and restarts."""

    def save_state(self, experiment: str, state: dict[str, Any]) -> None:
        """Persist the state of `experiment`'s scheduler."""
        ...

    def load_state(self, experiment: str) -> dict[str, Any] | None:
        """The last saved state, or None."""
        ...


class RunWriter(Protocol):
    """The writes a controller makes, inside one transaction or each in its own."""

    def fetch_runs(self, filters: dict[str, Any]) -> list[RunInfo]:
        """Runs matching `filters` (`group`, `run_id`, `since_seq`)."""
        ...

    def fetch_changed(self, experiment: str, since_seq: int) -> tuple[list[RunInfo], int]:
        """The experiment's runs changed after update `since_seq`, and the latest update number."""
        ...

    def apply_events(
        self,
        events: list[JobEvent],
        summary_updates: Mapping[str, dict[str, Any]] | None = None,
        policy: RetryPolicy = ...,
    ) -> list[str]:
        """Apply job events (and summary updates) to their runs; the ids of the runs changed."""
        ...

    def update_run_summary(self, run_id: str, summary_update: dict[str, Any]) -> bool:
        """Merge `summary_update` into the run's summary; False if no such run."""
        ...

    def record_training_intent(
        self, experiment: str, job: JobDefinition, suggestion: dict[str, Any], trial_index: int
    ) -> None:
        """A PENDING run with its training job and suggestion, before the job starts."""
        ...

    def record_eval_intent(self, job: JobDefinition) -> None:
        """The run's eval as started, with its job, before the job starts."""
        ...

    def record_dispatch_id(self, run_id: str, job_type: JobTypes, dispatch_id: str) -> None:
        """Where the run's job of `job_type` runs."""
        ...

    def mark_failed(self, run_id: str, reason: str) -> bool:
        """Mark a run FAILED with `reason`; False if it already failed or was cancelled."""
        ...

    def cancel_run(self, run_id: str) -> bool:
        """Cancel an unfinished run; False if it has finished."""
        ...

    def save_state(self, experiment: str, state: dict[str, Any]) -> None:
        """Persist the state of `experiment`'s scheduler."""
        ...


@runtime_checkable
class ExperimentStore(RunWriter, Protocol):
    """What a controller needs of its store: runs, transactions, the experiment and its lease."""

    def transaction(self) -> AbstractContextManager[RunWriter]:
        """One transaction: the writes made through it commit together or not at all."""
        ...

    def get_experiment(self, name: str) -> Any:
        """The experiment's record (with `status`), or None."""
        ...

    def set_experiment_status(self, name: str, status: str) -> None:
        """Set the experiment's status (`complete`, `cancelled`, ...)."""
        ...

    def load_state(self, experiment: str) -> dict[str, Any] | None:
        """The scheduler's last saved state, or None."""
        ...

    def acquire_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """Take the experiment's lease if free, expired or ours."""
        ...

    def renew_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """Extend the lease if `owner` holds it."""
        ...

    def release_lease(self, experiment: str, owner: str) -> None:
        """Give the lease up if `owner` holds it."""
        ...

    def lease_holder(self, experiment: str) -> tuple[str, float] | None:
        """(owner, expires_at) of the lease; None when nobody holds it."""
        ...


@runtime_checkable
class Dispatcher(Protocol):
    """Starts jobs on some compute and reports what happens to them."""

    def dispatch(self, job: JobDefinition) -> str:
        """Start `job` and return its dispatch id (idempotent per run id and job type)."""
        ...

    def poll(self) -> list[JobEvent]:
        """Events since the last poll, for the jobs this dispatcher watches."""
        ...

    def cancel(self, dispatch_id: str) -> None:
        """Stop a job (no error if it has already ended)."""
        ...


@runtime_checkable
class Reattachable(Protocol):
    """A dispatcher that can find and watch jobs started before a restart."""

    def find(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The dispatch id of an existing job for (run_id, job_type, attempt), or None."""
        ...

    def reattach(self, dispatch_id: str, run_id: str, job_type: JobTypes) -> None:
        """Watch an existing job again; its events come from `poll()`."""
        ...


@runtime_checkable
class Waitable(Protocol):
    """A dispatcher that can wake the controller as soon as a job event happens."""

    def wait(self, timeout: float) -> None:
        """Return after `timeout` seconds, or earlier when a job event is ready."""
        ...


@runtime_checkable
class LogReader(Protocol):
    """A dispatcher whose jobs' logs are kept somewhere `sweepwise logs` must ask it for.

    Without it, a job's log is the file `<runs_root>/<experiment>/<run_id>/<stem>.log`
    (`stem`: `train`, `eval`, `train.2` for a second attempt), as the local dispatcher writes it.
    """

    def read_log(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The output (stdout and stderr) of the run's job of `job_type` and `attempt` so far.

        Returns:
            The text, or None when the job has no log yet (or never started).
        """
        ...


@runtime_checkable
class Diagnosable(Protocol):
    """A dispatcher that can check its backend without starting any sweep's job (`sweepwise doctor`).

    Implemented by the class (the registered factory) as a classmethod or staticmethod, so
    nothing is built to check: `isinstance(factory, Diagnosable)`.
    """

    def diagnose(self, runs_root: Path, options: Mapping[str, Any]) -> list[Check]:
        """Check what the dispatcher needs: its binaries, connection, credentials, file systems.

        Args:
            runs_root: where the run directories would go (the spec's `runs_dir`).
            options: the dispatcher's options, as a spec's `dispatcher:` gives them.

        Returns:
            One `Check` per thing checked, passed or failed, in the order checked.
        """
        ...


@runtime_checkable
class Optimizer(Protocol):
    """Suggests hyperparameters; stateless: rebuilt from what it is given."""

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Return `n_suggestions` flat `{dot.path: value}` dicts.

        Args:
            observations: finished runs (failed ones with `is_failure=True`).
            n_suggestions: how many suggestions to return.
            pending: suggestions still running, so new ones avoid them.
        """
        ...


@runtime_checkable
class Clock(Protocol):
    """Where the controller takes its time from (real or virtual)."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass."""
        ...


__all__ = [
    "Clock",
    "Diagnosable",
    "Dispatcher",
    "ExperimentScheduler",
    "ExperimentStore",
    "JobEnvironment",
    "LogReader",
    "Optimizer",
    "Reattachable",
    "RunWriter",
    "SchedulerWithState",
    "StateStore",
    "Store",
    "Waitable",
]
