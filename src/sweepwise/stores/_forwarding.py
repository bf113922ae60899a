"""`ForwardingStore`: an `ExperimentStore` that forwards every call to the store it wraps.

The base of `MirroredStore` and `WandbStore` (docs/stores.md, "Mirrors" and "WandbStore"):
after each write (or transaction) has committed in the wrapped store, `_committed()` runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sweepwise.core.lifecycle import DEFAULT_RETRIES, RetryPolicy
from sweepwise.core.models import JobDefinition, JobEvent, JobTypes, RunInfo
from sweepwise.core.protocols import ExperimentStore, RunWriter

_OTHER_WRITES = frozenset({"init_run", "mark_stale", "ensure_experiment"})
"""Writes outside `ExperimentStore` (reached through `__getattr__`) that also call `_committed`."""


class ForwardingStore:
    """`store`'s `ExperimentStore` calls, each followed by `_committed()` once it wrote.

    Any other attribute of the wrapped store (`url`, `exists`, `ensure_experiment`, ...) is
    reached through it.

    Args:
        store: the wrapped store (the store of record).
    """

    def __init__(self, store: ExperimentStore) -> None:
        self.store = store

    def _committed(self) -> None:
        """Called after every write the wrapped store committed."""

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.store, name)
        if name not in _OTHER_WRITES or not callable(value):
            return value

        def write(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            self._committed()
            return result

        return write

    def close(self) -> None:
        """Close the wrapped store."""
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    # -- ExperimentStore -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[RunWriter]:
        """The wrapped store's transaction; `_committed` is called once it has committed."""
        with self.store.transaction() as tx:
            yield tx
        self._committed()

    def fetch_runs(self, filters: dict[str, Any]) -> list[RunInfo]:
        """See `ExperimentStore.fetch_runs`."""
        return self.store.fetch_runs(filters)

    def fetch_changed(self, experiment: str, since_seq: int) -> tuple[list[RunInfo], int]:
        """See `ExperimentStore.fetch_changed`."""
        return self.store.fetch_changed(experiment, since_seq)

    def apply_events(
        self,
        events: list[JobEvent],
        summary_updates: Mapping[str, dict[str, Any]] | None = None,
        policy: RetryPolicy = DEFAULT_RETRIES,
    ) -> list[str]:
        """See `ExperimentStore.apply_events`."""
        changed = self.store.apply_events(events, summary_updates, policy)
        self._committed()
        return changed

    def update_run_summary(self, run_id: str, summary_update: dict[str, Any]) -> bool:
        """See `ExperimentStore.update_run_summary`."""
        updated = self.store.update_run_summary(run_id, summary_update)
        self._committed()
        return updated

    def record_training_intent(
        self, experiment: str, job: JobDefinition, suggestion: dict[str, Any], trial_index: int
    ) -> None:
        """See `ExperimentStore.record_training_intent`."""
        self.store.record_training_intent(experiment, job, suggestion, trial_index)
        self._committed()

    def record_eval_intent(self, job: JobDefinition) -> None:
        """See `ExperimentStore.record_eval_intent`."""
        self.store.record_eval_intent(job)
        self._committed()

    def record_dispatch_id(self, run_id: str, job_type: JobTypes, dispatch_id: str) -> None:
        """See `ExperimentStore.record_dispatch_id`."""
        self.store.record_dispatch_id(run_id, job_type, dispatch_id)

    def mark_failed(self, run_id: str, reason: str) -> bool:
        """See `ExperimentStore.mark_failed`."""
        marked = self.store.mark_failed(run_id, reason)
        self._committed()
        return marked

    def cancel_run(self, run_id: str) -> bool:
        """See `ExperimentStore.cancel_run`."""
        cancelled = self.store.cancel_run(run_id)
        self._committed()
        return cancelled

    def save_state(self, experiment: str, state: dict[str, Any]) -> None:
        """See `ExperimentStore.save_state`."""
        self.store.save_state(experiment, state)

    def get_experiment(self, name: str) -> Any:
        """See `ExperimentStore.get_experiment`."""
        return self.store.get_experiment(name)

    def set_experiment_status(self, name: str, status: str) -> None:
        """See `ExperimentStore.set_experiment_status`."""
        self.store.set_experiment_status(name, status)

    def load_state(self, experiment: str) -> dict[str, Any] | None:
        """See `ExperimentStore.load_state`."""
        return self.store.load_state(experiment)

    def acquire_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """See `ExperimentStore.acquire_lease`."""
        return self.store.acquire_lease(experiment, owner, ttl, now)

    def renew_lease(self, experiment: str, owner: str, ttl: float, now: float) -> bool:
        """See `ExperimentStore.renew_lease`."""
        return self.store.renew_lease(experiment, owner, ttl, now)

    def release_lease(self, experiment: str, owner: str) -> None:
        """See `ExperimentStore.release_lease`."""
        self.store.release_lease(experiment, owner)

    def lease_holder(self, experiment: str) -> tuple[str, float] | None:
        """See `ExperimentStore.lease_holder`."""
        return self.store.lease_holder(experiment)


__all__ = ["ForwardingStore"]
