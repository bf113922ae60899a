"""The experiment lease (docs/design.md, crash safety) and the scheduler state, inside a caller's transaction.

The lease is a compare-and-set on one row: a conditional UPDATE takes it over
(when it is ours or has expired) and an INSERT creates it; two controllers
racing to create it are told apart by the primary key (IntegrityError → lost).
Times are the caller's clock, in seconds since the epoch.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import BindParameter, Connection, bindparam, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from sweepwise.stores._codec import to_json
from sweepwise.stores._exec import Prepared
from sweepwise.stores.schema import LEASES, SCHEDULER_STATE

_NOW: BindParameter[float] = bindparam("b_now")
_TAKE_OVER = Prepared(
    update(LEASES)
    .where(
        LEASES.c.experiment == bindparam("b_experiment"),
        or_(LEASES.c.owner == bindparam("b_owner"), LEASES.c.expires_at < _NOW),
    )
    .values(
        owner=bindparam("b_owner"),
        acquired_at=case((LEASES.c.owner == bindparam("b_owner"), LEASES.c.acquired_at), else_=_NOW),
        heartbeat_at=_NOW,
        expires_at=bindparam("b_expires_at"),
    )
)
_RENEW = Prepared(
    update(LEASES)
    .where(LEASES.c.experiment == bindparam("b_experiment"), LEASES.c.owner == bindparam("b_owner"))
    .values(heartbeat_at=_NOW, expires_at=bindparam("b_expires_at"))
)
_RELEASE = Prepared(
    delete(LEASES).where(
        LEASES.c.experiment == bindparam("b_experiment"), LEASES.c.owner == bindparam("b_owner")
    )
)
_HOLDER = Prepared(
    select(LEASES.c.owner, LEASES.c.expires_at).where(LEASES.c.experiment == bindparam("b_experiment"))
)
_INSERT_LEASE = Prepared(insert(LEASES))
_UPDATE_STATE = Prepared(
    update(SCHEDULER_STATE).where(SCHEDULER_STATE.c.experiment == bindparam("b_experiment"))
)
_INSERT_STATE = Prepared(insert(SCHEDULER_STATE))
_LOAD_STATE = Prepared(
    select(SCHEDULER_STATE.c.state).where(SCHEDULER_STATE.c.experiment == bindparam("b_experiment"))
)


def acquire_lease_without_commit(
    conn: Connection, experiment: str, owner: str, ttl: float, now: float
) -> bool:
    """Take the lease if it is free, expired (`expires_at < now`) or already ours; True on success."""
    params = {"b_experiment": experiment, "b_owner": owner, "b_now": now, "b_expires_at": now + ttl}
    if _TAKE_OVER.run(conn, params) == 1:
        return True
    if _HOLDER.first(conn, {"b_experiment": experiment}) is not None:
        return False  # held by someone else, and not expired
    row = {"experiment": experiment, "owner": owner, "acquired_at": now, "heartbeat_at": now}
    try:
        with conn.begin_nested():  # a savepoint: losing the race must not abort the transaction
            _INSERT_LEASE.run(conn, row | {"expires_at": now + ttl})
    except IntegrityError:
        return False
    return True


def renew_lease_without_commit(conn: Connection, experiment: str, owner: str, ttl: float, now: float) -> bool:
    """Extend the lease to `now + ttl` if `owner` still holds it; True on success."""
    params = {"b_experiment": experiment, "b_owner": owner, "b_now": now, "b_expires_at": now + ttl}
    return _RENEW.run(conn, params) == 1


def release_lease_without_commit(conn: Connection, experiment: str, owner: str) -> None:
    """Give the lease up if `owner` holds it."""
    _RELEASE.run(conn, {"b_experiment": experiment, "b_owner": owner})


def lease_holder(conn: Connection, experiment: str) -> tuple[str, float] | None:
    """(owner, expires_at) of the lease, expired or not; None when nobody holds it."""
    row = _HOLDER.first(conn, {"b_experiment": experiment})
    return None if row is None else (str(row[0]), float(row[1]))


def save_state_without_commit(conn: Connection, experiment: str, state: dict[str, Any]) -> None:
    """Store the scheduler state of `experiment`, replacing the previous one."""
    text = to_json(state, what="scheduler state")
    now = time.time()
    params = {"b_experiment": experiment, "state": text, "updated_at": now}
    if _UPDATE_STATE.run(conn, params) == 0:
        _INSERT_STATE.run(conn, {"experiment": experiment, "state": text, "updated_at": now})


def load_state(conn: Connection, experiment: str) -> dict[str, Any] | None:
    """The last saved scheduler state of `experiment`, or None."""
    text = _LOAD_STATE.scalar(conn, {"b_experiment": experiment})
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


__all__ = [
    "acquire_lease_without_commit",
    "lease_holder",
    "load_state",
    "release_lease_without_commit",
    "renew_lease_without_commit",
    "save_state_without_commit",
]
