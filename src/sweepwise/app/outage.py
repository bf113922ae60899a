"""Riding out a store outage: wait for the store's server, then go on as a restarted controller.

A controller whose store's server goes away (restarted, failed over, the network cut)
stops with `StoreUnavailableError` and keeps its lease. `sweepwise run` then waits here
for the server to answer, and resumes with a new controller that reads everything back
from the store, exactly as a controller restarted by hand would (docs/stores.md, "Outages").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sweepwise.core.errors import StoreError, StoreUnavailableError

logger = logging.getLogger(__name__)

OUTAGE_WAIT_SECONDS = 600.0
"""How long `sweepwise run` waits for a store's server to answer again before it gives up."""

_PAUSES = (1.0, 2.0, 4.0, 8.0, 15.0)


def wait_for_store(
    store: Any,
    experiment: str,
    outage: StoreUnavailableError,
    *,
    limit: float = OUTAGE_WAIT_SECONDS,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Wait until `store` answers a read of `experiment` again; False after `limit` seconds.

    Args:
        store: the experiment's store.
        experiment: the experiment's name (the read that probes the store).
        outage: the error that stopped the controller, named in the first line said.
        limit: seconds to wait at most.
        say: prints one line for the user.
        sleep: waits (tests pass their own).
    """
    say(f"warning: {outage}; jobs keep running, waiting up to {limit:.0f} s for the store to answer")
    deadline = time.monotonic() + limit
    attempt = 0
    while True:
        try:
            store.get_experiment(experiment)
        except StoreError as exc:  # an outage, or what the restarting server says meanwhile
            logger.debug("the store does not answer yet: %s", exc)
        else:
            say("the store answers again: resuming the sweep")
            return True
        pause = _PAUSES[min(attempt, len(_PAUSES) - 1)]
        attempt += 1
        if time.monotonic() + pause > deadline:
            return False
        sleep(pause)


__all__ = ["OUTAGE_WAIT_SECONDS", "wait_for_store"]
