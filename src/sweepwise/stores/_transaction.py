"""`StoreTransaction`: the store's operations bound to one connection, committed together."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from sweepwise.core.lifecycle import DEFAULT_RETRIES, RetryPolicy
from sweepwise.core.models import JobDefinition, JobEvent, JobTypes, RunInfo
from sweepwise.stores import _leases, _reads, _runs
from sweepwise.stores._codec import ExperimentRecord
from sweepwise.stores._events import apply_events_without_commit

# What each operation does, as "could not ..." ends: the words of the store's error messages.
OPERATIONS = {
    "init_run": "create runs",
    "fetch_runs": "read runs",
    "update_run_summary": "update run summaries",
    "ensure_experiment": "record the experiment",
    "get_experiment": "read the experiment",
    "list_experiments": "list the experiments",
    "set_experiment_status": "set the experiment's status",
    "record_training_intent": "record training jobs before starting them",
    "record_eval_intent": "record eval jobs before starting them",
    "record_dispatch_id": "record dispatch ids",
    "apply_events": "record job events",
    "mark_stale": "mark runs stale",
    "cancel_run": "cancel runs",
    "mark_failed": "mark runs failed",
    "fetch_changed": "read the changed runs",
    "count_by_status": "count runs by status",
    "max_trial_index": "read the last trial index",
    "fetch_job_events": "read job events",
    "save_state": "save the scheduler's state",
    "load_state": "load the scheduler's state",
    "acquire_lease": "take the experiment's lease",
    "renew_lease": "renew the experiment's lease",
    "release_lease": "release the experiment's lease",
    "lease_holder": "read the experiment's lease",
}
_READS = frozenset(
    {
        "fetch_runs",
        "get_experiment",
        "list_experiments",
        "fetch_changed",
        "count_by_status",
        "max_trial_index",
        "fetch_job_events",
        "load_state",
        "lease_holder",
    }
)


def describe(operations: Iterable[str]) -> str:
    """The operations of a failed transaction in words: its writes, else its reads.

    >>> describe(["record_dispatch_id", "fetch_changed", "apply_events"])
    'record dispatch ids and record job events'
    """
    names = list(dict.fromkeys(operations))
    writes = [name for name in names if name not in _READS]
    words = [OPERATIONS.get(name, name) for name in (writes or names)]
    if not words:
        return "use the store"
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


class StoreTransaction:
    """The operations of `SQLStore`, all inside one transaction.

    `SQLStore.transaction()` yields one and commits when the `with` block ends
    (or rolls everything back if it raises). Each `SQLStore` method runs its
    twin here in a transaction of its own. Nothing is retried at this level: a
    failed transaction is rolled back as a whole.

    Run changes made here share one update sequence number per experiment.

    Attributes:
        connection: the transaction's connection.
        operations: the names of the methods called so far, in order (for error messages).
    """

    __slots__ = ("connection", "operations")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.operations: dict[str, None] = {}

    # -- runs (the seed API) ------------------------------------------------------------

    def init_run(
        self,
        run_id: str,
        group: str | None = None,
        tags: list[str] | None = None,
        initial_summary: dict[str, Any] | None = None,
    ) -> None:
        """See `SQLStore.init_run`."""
        self.operations["init_run"] = None
        _runs.init_run_without_commit(self.connection, run_id, group, tags, initial_summary)

    def fetch_runs(self, filters: dict[str, Any]) -> list[RunInfo]:
        """See `SQLStore.fetch_runs`."""
        self.operations["fetch_runs"] = None
        return _reads.fetch_runs(self.connection, _reads.parse_filters(filters))

    def update_run_summary(self, run_id: str, summary_update: dict[str, Any]) -> bool:
        """See `SQLStore.update_run_summary`."""
        self.operations["update_run_summary"] = None
        return _runs.update_run_summary_without_commit(self.connection, run_id, summary_update)

    def update_run_summaries(self, updates: Mapping[str, dict[str, Any]]) -> list[str]:
        """`update_run_summary` for each run, read together; the ids of the runs not in the store."""
        self.operations["update_run_summary"] = None
        return _runs.update_run_summaries_without_commit(self.connection, updates)

    # -- experiments ----------------------------------------------------------------------

    def ensure_experiment(self, name: str, spec: dict[str, Any]) -> ExperimentRecord:
        """See `SQLStore.ensure_experiment`."""
        self.operations["ensure_experiment"] = None
        return _runs.ensure_experiment_without_commit(self.connection, name, spec)

    def get_experiment(self, name: str) -> ExperimentRecord | None:
        """See `SQLStore.get_experiment`."""
        self.operations["get_experiment"] = None
        return _reads.get_experiment(self.connection, name)

    def list_experiments(self) -> list[ExperimentRecord]:
        """See `SQLStore.list_experiments`."""
        self.operations["list_experiments"] = None
        return _reads.list_experiments(self.connection)

    def set_experiment_status(self, name: str, status: str) -> None:
        """See `SQLStore.set_experiment_status`."""
        self.operations["set_experiment_status"] = None
        _runs.set_experiment_status_without_commit(self.connection, name, status)

    # -- the controller's writes ------------------------------------------------------------

    def record_training_intent(
        self, experiment: str, job: JobDefinition, suggestion: dict[str, Any], trial_index: int
    ) -> None:
        """See `SQLStore.record_training_intent`."""
        self.operations["record_training_intent"] = None
        _runs.record_training_intent_without_commit(self.connection, experiment, job, suggestion, trial_index)

    def record_eval_intent(self, job: JobDefinition) -> None:
        """See `SQLStore.record_eval_intent`."""
        self.operations["record_eval_intent"] = None
        _runs.record_eval_intent_without_commit(self.connection, job)

    def record_eval_intents(self, jobs: Sequence[JobDefinition]) -> None:
        """`record_eval_intent` for each job, the runs read together."""
        self.operations["record_eval_intent"] = None
        _runs.record_eval_intents_without_commit(self.connection, jobs)

    def record_dispatch_id(self, run_id: str, job_type: JobTypes, dispatch_id: str) -> None:
        """See `SQLStore.record_dispatch_id`."""
        self.operations["record_dispatch_id"] = None
        _runs.record_dispatch_id_without_commit(self.connection, run_id, job_type, dispatch_id)

    def record_dispatch_ids(self, items: Sequence[tuple[str, JobTypes, str]]) -> None:
        """`record_dispatch_id` for each (run id, job type, dispatch id), the runs read together."""
        self.operations["record_dispatch_id"] = None
        _runs.record_dispatch_ids_without_commit(self.connection, items)

    def apply_events(
        self,
        events: list[JobEvent],
        summary_updates: Mapping[str, dict[str, Any]] | None = None,
        policy: RetryPolicy = DEFAULT_RETRIES,
    ) -> list[str]:
        """See `SQLStore.apply_events`."""
        self.operations["apply_events"] = None
        return apply_events_without_commit(self.connection, events, summary_updates, policy)

    def mark_stale(self, run_id: str, reason: str) -> bool:
        """See `SQLStore.mark_stale`."""
        self.operations["mark_stale"] = None
        return _runs.mark_stale_without_commit(self.connection, run_id, reason)

    def cancel_run(self, run_id: str) -> bool:
        """See `SQLStore.cancel_run`."""
        self.operations["cancel_run"] = None
        return _runs.cancel_run_without_commit(self.connection, run_id)

    def mark_failed(self, run_id: str, reason: str) -> bool:
        """See `SQLStore.mark_failed`."""
        self.operations["mark_failed"] = None
        return _runs.mark_failed_without_commit(self.connection, run_id, reason)

    # -- the controller's reads ---------------------------------------------------------------

    def fetch_changed(self, experiment: str, since_seq: int) -> tuple[list[RunInfo], int]:
        """See `SQLStore.fetch_changed`."""
        self.operations["fetch_changed"] = None
        return _reads.fetch_changed(self.connection, experiment, since_seq)

    def count_by_status(self, experiment: str) -> dict[str, int]:
        """See `SQLStore.count_by_status`."""
        self.operations["count_by_status"] = None
        return _reads.count_by_status(self.connection, experiment)

    def max_trial_index(self, experiment: str) -> int:
        """See `SQLStore.max_trial_index`."""
        self.operations["max_trial_index"] = None
        return _runs.max_trial_index(self.connection, experiment)

    def fetch_job_events(self, run_id: str) -> list[dict[str, Any]]:
        """See `SQLStore.fetch_job_events`."""
        self.operations["fetch_job_events"] = None
        return _reads.fetch_job_events(self.connection, run_id)

    # -- scheduler state and lease ------------------------------------------------------------

    def save_state(self, experiment: str, state: dict[str, Any]) -> None:
        """See `SQLStore.save_state`."""
        self.operations["save_state"] = None
        _leases.save_state_without_commit(self.connection, experiment, state)

    def load_state(self, experiment: str) -> dict[str, Any] | None:
        """See `SQLStore.load_state`."""
        self.operations["load_state"] = None
        return _leases.load_state(self.connection, experiment)

    def acquire_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """See `SQLStore.acquire_lease`."""
        self.operations["acquire_lease"] = None
        return _leases.acquire_lease_without_commit(self.connection, experiment, owner, ttl, now)

    def renew_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """See `SQLStore.renew_lease`."""
        self.operations["renew_lease"] = None
        return _leases.renew_lease_without_commit(self.connection, experiment, owner, ttl, now)

    def release_lease(self, experiment: str, owner: str) -> None:
        """See `SQLStore.release_lease`."""
        self.operations["release_lease"] = None
        _leases.release_lease_without_commit(self.connection, experiment, owner)

    def lease_holder(self, experiment: str) -> tuple[str, float] | None:
        """See `SQLStore.lease_holder`."""
        self.operations["lease_holder"] = None
        return _leases.lease_holder(self.connection, experiment)


__all__ = ["OPERATIONS", "StoreTransaction", "describe"]
