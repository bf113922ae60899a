"""`StoreTransaction`: the store's operations bound to one connection, committed together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from sweepwise.lifecycle import DEFAULT_RETRIES, RetryPolicy
from sweepwise.models import JobDefinition, JobEvent, JobTypes, RunInfo
from sweepwise.stores import _leases, _reads, _runs
from sweepwise.stores._codec import ExperimentRecord
from sweepwise.stores._events import apply_events_without_commit


class StoreTransaction:
    """The operations of `SQLStore`, all inside one transaction.

    `SQLStore.transaction()` yields one and commits when the `with` block ends
    (or rolls everything back if it raises). Each `SQLStore` method runs its
    twin here in a transaction of its own. Nothing is retried at this level: a
    failed transaction is rolled back as a whole.

    Run changes made here share one update sequence number per experiment.
    """

    __slots__ = ("connection",)

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # -- runs (the seed API) ------------------------------------------------------------

    def init_run(
        self,
        run_id: str,
        group: str | None = None,
        tags: list[str] | None = None,
        initial_summary: dict[str, Any] | None = None,
    ) -> None:
        """See `SQLStore.init_run`."""
        _runs.init_run_without_commit(self.connection, run_id, group, tags, initial_summary)

    def fetch_runs(self, filters: dict[str, Any]) -> list[RunInfo]:
        """See `SQLStore.fetch_runs`."""
        return _reads.fetch_runs(self.connection, _reads.parse_filters(filters))

    def update_run_summary(self, run_id: str, summary_update: dict[str, Any]) -> bool:
        """See `SQLStore.update_run_summary`."""
        return _runs.update_run_summary_without_commit(self.connection, run_id, summary_update)

    # -- experiments ----------------------------------------------------------------------

    def ensure_experiment(self, name: str, spec: dict[str, Any]) -> ExperimentRecord:
        """See `SQLStore.ensure_experiment`."""
        return _runs.ensure_experiment_without_commit(self.connection, name, spec)

    def get_experiment(self, name: str) -> ExperimentRecord | None:
        """See `SQLStore.get_experiment`."""
        return _reads.get_experiment(self.connection, name)

    def list_experiments(self) -> list[ExperimentRecord]:
        """See `SQLStore.list_experiments`."""
        return _reads.list_experiments(self.connection)

    def set_experiment_status(self, name: str, status: str) -> None:
        """See `SQLStore.set_experiment_status`."""
        _runs.set_experiment_status_without_commit(self.connection, name, status)

    # -- the controller's writes ------------------------------------------------------------

    def record_training_intent(
        self, experiment: str, job: JobDefinition, suggestion: dict[str, Any], trial_index: int
    ) -> None:
        """See `SQLStore.record_training_intent`."""
        _runs.record_training_intent_without_commit(self.connection, experiment, job, suggestion, trial_index)

    def record_eval_intent(self, job: JobDefinition) -> None:
        """See `SQLStore.record_eval_intent`."""
        _runs.record_eval_intent_without_commit(self.connection, job)

    def record_dispatch_id(self, run_id: str, job_type: JobTypes, dispatch_id: str) -> None:
        """See `SQLStore.record_dispatch_id`."""
        _runs.record_dispatch_id_without_commit(self.connection, run_id, job_type, dispatch_id)

    def apply_events(
        self,
        events: list[JobEvent],
        summary_updates: Mapping[str, dict[str, Any]] | None = None,
        policy: RetryPolicy = DEFAULT_RETRIES,
    ) -> list[str]:
        """See `SQLStore.apply_events`."""
        return apply_events_without_commit(self.connection, events, summary_updates, policy)

    def mark_stale(self, run_id: str, reason: str) -> bool:
        """See `SQLStore.mark_stale`."""
        return _runs.mark_stale_without_commit(self.connection, run_id, reason)

    def cancel_run(self, run_id: str) -> bool:
        """See `SQLStore.cancel_run`."""
        return _runs.cancel_run_without_commit(self.connection, run_id)

    def mark_failed(self, run_id: str, reason: str) -> bool:
        """See `SQLStore.mark_failed`."""
        return _runs.mark_failed_without_commit(self.connection, run_id, reason)

    # -- the controller's reads ---------------------------------------------------------------

    def fetch_changed(self, experiment: str, since_seq: int) -> tuple[list[RunInfo], int]:
        """See `SQLStore.fetch_changed`."""
        return _reads.fetch_changed(self.connection, experiment, since_seq)

    def count_by_status(self, experiment: str) -> dict[str, int]:
        """See `SQLStore.count_by_status`."""
        return _reads.count_by_status(self.connection, experiment)

    def max_trial_index(self, experiment: str) -> int:
        """See `SQLStore.max_trial_index`."""
        return _runs.max_trial_index(self.connection, experiment)

    def fetch_job_events(self, run_id: str) -> list[dict[str, Any]]:
        """See `SQLStore.fetch_job_events`."""
        return _reads.fetch_job_events(self.connection, run_id)

    # -- scheduler state and lease ------------------------------------------------------------

    def save_state(self, experiment: str, state: dict[str, Any]) -> None:
        """See `SQLStore.save_state`."""
        _leases.save_state_without_commit(self.connection, experiment, state)

    def load_state(self, experiment: str) -> dict[str, Any] | None:
        """See `SQLStore.load_state`."""
        return _leases.load_state(self.connection, experiment)

    def acquire_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """See `SQLStore.acquire_lease`."""
        return _leases.acquire_lease_without_commit(self.connection, experiment, owner, ttl, now)

    def renew_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """See `SQLStore.renew_lease`."""
        return _leases.renew_lease_without_commit(self.connection, experiment, owner, ttl, now)

    def release_lease(self, experiment: str, owner: str) -> None:
        """See `SQLStore.release_lease`."""
        _leases.release_lease_without_commit(self.connection, experiment, owner)

    def lease_holder(self, experiment: str) -> tuple[str, float] | None:
        """See `SQLStore.lease_holder`."""
        return _leases.lease_holder(self.connection, experiment)


__all__ = ["StoreTransaction"]
