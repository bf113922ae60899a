"""`MirroredStore`: the store of record, with every commit copied to a tracking service.

A wrapper, not a flag of the store (docs/stores.md, "Mirrors"): it implements
`ExperimentStore` by forwarding each call to the store it wraps, and after a write (or
a transaction) commits it wakes the mirror's background thread. Nothing the mirror does
can fail or block a call: the wake-up is an `Event.set()`.
"""

from __future__ import annotations

from sweepwise.core.protocols import ExperimentStore
from sweepwise.stores._forwarding import ForwardingStore
from sweepwise.stores.mirrors._target import MirrorTarget
from sweepwise.stores.mirrors._worker import MirrorWorker


class MirroredStore(ForwardingStore):
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
        self, store: ExperimentStore, target: MirrorTarget, experiment: str, *, flush_timeout: float = 30.0
    ) -> None:
        super().__init__(store)
        self.target = target
        self.flush_timeout = flush_timeout
        self.worker = MirrorWorker(store, target, experiment)
        self.worker.start()

    def __repr__(self) -> str:
        return f"MirroredStore({self.store!r}, {self.target.name!r})"

    def _committed(self) -> None:
        self.worker.notify()

    def close(self) -> None:
        """Give the mirror up to `flush_timeout` to finish, stop it, then close the wrapped store."""
        try:
            self.worker.close(self.flush_timeout)
        finally:
            super().close()


__all__ = ["MirroredStore"]
