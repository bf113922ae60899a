"""`MirroredStore`: the store of record, with every commit copied to a tracking service.

A wrapper, not a flag of the store (docs/stores.md, "Mirrors"): it implements
`ExperimentStore` by forwarding each call to the store it wraps, and after a write (or
a transaction) commits it wakes the mirror's background thread. Nothing the mirror does
can fail or block a call: the wake-up is an `Event.set()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sweepwise.core.lifecycle import DEFAULT_RETRIES, RetryPolicy
from sweepwise.core.models import JobDefinition, JobEvent, JobTypes, RunInfo
from sweepwise.core.protocols import ExperimentStore, RunWriter
from sweepwise.stores.mirrors._target import MirrorTarget
from sweepwise.stores.mirrors._worker import MirrorWorker

_OTHER_WRITES = frozenset({"init_run", "mark_stale", "ensure_experiment"})
"""Writes outside `ExperimentStore` (reached through `__getattr__`) that also wake the mirror."""


class MirroredStore:
    """`store` with its runs mirrored to `target` in the background.

    Implements `sweepwise.core.protocols.ExperimentStore`; any other attribute of the
    wrapped store (`url`, `exists`, `ensure_experiment`, ...) is reached through it.

    Args:
        store: the store of record (it stays the single source of truth).
        target: where `experiment`'s runs are copied.
        experiment: the experiment mirrored.
        flush_timeout: on `close`, how long to wait (s) for the last runs to go out while
            the target answers; a failing target is not waited for.
    """

    def __init__(
        self, store: ExperimentStore, target: MirrorTarget, experiment: str, *, flush_timeout: float = 10.0
    ) -> None:
        self.store = store
        self.target = target
        self.flush_timeout = flush_timeout
        self.worker = MirrorWorker(store, target, experiment)
        self.worker.start()

    def __repr__(self) -> str:
        return f"MirroredStore({self.store!r}, {self.target.name!r})"

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.store, name)
        if name not in _OTHER_WRITES or not callable(value):
            return value

        def write(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            self.worker.notify()
            return result

        return write

    def close(self) -> None:
        """Give the mirror up to `flush_timeout` to finish, stop it, then close the wrapped store."""
        try:
            self.worker.close(self.flush_timeout)
        finally:
            close = getattr(self.store, "close", None)
            if close is not None:
                close()

    # -- ExperimentStore -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[RunWriter]:
        """The wrapped store's transaction; the mirror is woken once it has committed."""
        with self.store.transaction() as tx:
            yield tx
        self.worker.notify()

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
        self.worker.notify()
        return changed

    def update_run_summary(self, run_id: str, summary_update: dict[str, Any]) -> bool:
        """See `ExperimentStore.update_run_summary`."""
        updated = self.store.update_run_summary(run_id, summary_update)
        self.worker.notify()
        return updated

    def record_training_intent(
        self, experiment: str, job: JobDefinition, suggestion: dict[str, Any], trial_index: int
    ) -> None:
        """See `ExperimentStore.record_training_intent`."""
        self.store.record_training_intent(experiment, job, suggestion, trial_index)
        self.worker.notify()

    def record_eval_intent(self, job: JobDefinition) -> None:
        """See `ExperimentStore.record_eval_intent`."""
        self.store.record_eval_intent(job)
        self.worker.notify()

    def record_dispatch_id(self, run_id: str, job_type: JobTypes, dispatch_id: str) -> None:
        """See `ExperimentStore.record_dispatch_id`."""
        self.store.record_dispatch_id(run_id, job_type, dispatch_id)

    def mark_failed(self, run_id: str, reason: str) -> bool:
        """See `ExperimentStore.mark_failed`."""
        marked = self.store.mark_failed(run_id, reason)
        self.worker.notify()
        return marked

    def cancel_run(self, run_id: str) -> bool:
        """See `ExperimentStore.cancel_run`."""
        cancelled = self.store.cancel_run(run_id)
        self.worker.notify()
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


__all__ = ["MirroredStore"]
