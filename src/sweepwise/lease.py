"""`ExperimentLease`: the store row that lets one controller at a time run an experiment."""

from __future__ import annotations

import logging
import os
import socket
import uuid

from sweepwise.errors import LeaseHeldError
from sweepwise.runtime.supervise import process_alive
from sweepwise.stores.sql import SQLStore

logger = logging.getLogger(__name__)


def _owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ExperimentLease:
    """A controller's hold on an experiment: acquired, renewed every third of its TTL, released.

    Args:
        store: where the lease row lives.
        experiment: the experiment's name.
        ttl: the lease's lifetime (s); a lease not renewed in time may be taken over.
    """

    def __init__(self, store: SQLStore, experiment: str, ttl: float) -> None:
        self.store = store
        self.experiment = experiment
        self.ttl = ttl
        self.owner = _owner_id()
        self._renewed_at = 0.0

    def acquire(self, now: float) -> None:
        """Take the lease, or the lease of a controller whose process is gone (on this host).

        Raises:
            LeaseHeldError: another live controller holds it.
        """
        if self.store.acquire_lease(self.experiment, self.owner, self.ttl, now):
            self._renewed_at = now
            return
        holder = self.store.lease_holder(self.experiment)
        if holder is not None and self._holder_is_dead(holder[0]):
            self.store.release_lease(self.experiment, holder[0])
            if self.store.acquire_lease(self.experiment, self.owner, self.ttl, now):
                logger.info("took over the lease of %s, whose controller is gone", holder[0])
                self._renewed_at = now
                return
            holder = self.store.lease_holder(self.experiment)
        who = holder[0] if holder else "another controller"
        raise LeaseHeldError(
            f"experiment {self.experiment!r} is already being run by {who}; "
            "wait for it to finish, or stop it with `sweepwise cancel` first"
        )

    def renew(self, now: float) -> None:
        """Extend the lease once a third of its TTL has passed since the last renewal.

        Raises:
            LeaseHeldError: another controller took it meanwhile.
        """
        if now - self._renewed_at < self.ttl / 3:
            return
        if not self.store.renew_lease(self.experiment, self.owner, self.ttl, now):
            raise LeaseHeldError(f"lost the lease of experiment {self.experiment!r} to another controller")
        self._renewed_at = now

    def release(self, *, quiet: bool = False) -> None:
        """Give the lease up (no error if it was lost).

        Args:
            quiet: log a failure to release at debug level instead of raising it; for a
                controller that is stopping on another error, which must stay the one reported.
        """
        try:
            self.store.release_lease(self.experiment, self.owner)
        except Exception as exc:
            if not quiet:
                raise
            logger.debug("could not release the lease of %r: %s", self.experiment, exc)

    @staticmethod
    def _holder_is_dead(owner: str) -> bool:
        host, _, rest = owner.partition(":")
        pid_text = rest.split(":", 1)[0]
        if host != socket.gethostname() or not pid_text.isdigit():
            return False
        return int(pid_text) != os.getpid() and not process_alive(int(pid_text))


__all__ = ["ExperimentLease"]
