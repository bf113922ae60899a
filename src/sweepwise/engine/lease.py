"""`ExperimentLease`: the store row that lets one controller at a time run an experiment.

The lease's owner names the controller's process precisely enough to tell, without
waiting for the lease to expire, that it is gone (docs/design.md, "The crash-safety
protocol"): `host:pid=P:start=T:pidns=N:boot=B:nonce`, with the pid's start time (clock
ticks since boot), the inode of its PID namespace and the boot id. Only a holder on the
same host, boot and PID namespace whose pid is gone, a zombie or another process is taken
over at once, and one there whose process is alive is never taken over, whatever the clock
says. Any other holder (another host, a container, another boot, an owner written by an
older version) keeps the lease until it has expired by this machine's clock *and* has been
seen not to change for a whole TTL (unless it expired a day ago or more): a wall clock ahead of
the holder's, by skew or a jump, must not hand over the lease of a controller that still renews
it (docs/design.md, "The crash-safety protocol"). Without /proc (not Linux) host and pid are
all there is, as before.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from pathlib import Path
from typing import NamedTuple

from sweepwise.core.clock import elapsed_of
from sweepwise.core.errors import LeaseHeldError
from sweepwise.core.protocols import Clock, ExperimentStore
from sweepwise.runtime.supervise import proc_start_time, process_alive, process_stopped

logger = logging.getLogger(__name__)

_BOOT_ID = "/proc/sys/kernel/random/boot_id"
_LONG_EXPIRED = 24 * 3600.0
"""A lease expired this long ago by this machine's clock is taken without watching it: clocks
a day apart break much else first (TLS certificates, Kerberos and munge refuse minutes)."""
_FIELDS = frozenset({"pid", "start", "pidns", "boot"})


class _Process(NamedTuple):
    """A process as a lease owner names it; None where it is unknown."""

    host: str
    pid: int
    start: int | None
    pidns: int | None
    boot: str | None


def _this_process() -> _Process:
    pid = os.getpid()
    try:
        boot: str | None = Path(_BOOT_ID).read_text().strip() or None
    except OSError:
        boot = None
    try:
        pidns: int | None = os.stat("/proc/self/ns/pid").st_ino
        # Only a /proc of our own PID namespace (not a container's host /proc) shows our pids.
        own_proc = os.readlink("/proc/self") == str(pid)
    except OSError:
        pidns, own_proc = None, False
    start = proc_start_time(pid) if own_proc else None
    return _Process(socket.gethostname(), pid, start, pidns, boot)


def _owner_id(me: _Process) -> str:
    known = {"pid": me.pid, "start": me.start, "pidns": me.pidns, "boot": me.boot}
    fields = [f"{key}={value}" for key, value in known.items() if value is not None]
    return ":".join([me.host, *fields, uuid.uuid4().hex[:8]])


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _parse_owner(owner: str) -> _Process | None:
    """The process an owner string names; None for a string in another format."""
    host, *words, _nonce = owner.split(":") if owner.count(":") >= 2 else ["", ""]
    values = dict(word.partition("=")[::2] for word in words)
    if not host or len(values) != len(words) or not values.keys() <= _FIELDS:
        return None
    pid = _number(values.get("pid"))
    if pid is None or any(_number(values[key]) is None for key in ("start", "pidns") if key in values):
        return None
    return _Process(host, pid, _number(values.get("start")), _number(values.get("pidns")), values.get("boot"))


class ExperimentLease:
    """A controller's hold on an experiment: acquired, renewed every third of its TTL, released.

    Args:
        store: where the lease row lives.
        experiment: the experiment's name.
        ttl: the lease's lifetime (s); a lease not renewed in time may be taken over.
    """

    def __init__(self, store: ExperimentStore, experiment: str, ttl: float) -> None:
        self.store = store
        self.experiment = experiment
        self.ttl = ttl
        self._me = _this_process()
        self.owner = _owner_id(self._me)
        self._renewed_at: float | None = None  # on the clock's `elapsed`, which the wall clock cannot move

    def acquire(self, clock: Clock) -> None:
        """Take the lease if it is free, or its holder is provably gone, or has stopped renewing it.

        A holder this process cannot look up, whose lease has expired by `clock` less than a
        day ago, is watched for a TTL first: the lease is taken only if it did not change meanwhile.

        Raises:
            LeaseHeldError: another live controller holds it.
        """
        elapsed, now = elapsed_of(clock)(), clock.now()
        holder = self.store.lease_holder(self.experiment)
        if holder is not None and holder[0] != self.owner:
            owner, expires_at = holder
            lives = self._holder_lives(owner)
            if lives is False:
                self.store.release_lease(self.experiment, owner)
                logger.info("took over the lease of %s, whose controller is gone", owner)
            elif lives is True:
                raise self._held(owner, self._alive_here(owner, expires_at < now))
            elif expires_at >= now:
                raise self._held(owner)
            elif now - expires_at < _LONG_EXPIRED and not self._unchanged_for_a_ttl(holder, clock):
                raise self._held(owner)
            else:  # taken only as it was watched: a renewal after the last look keeps it its holder's
                if self.store.acquire_lease(self.experiment, self.owner, self.ttl, expires_at + 1e-6):
                    self._renewed_at = None  # renewed at the first tick, to this clock's now + ttl
                    logger.info("took over the lease of %s, not renewed for %.0f s", owner, self.ttl)
                    return
                raise self._held(self._holder_name())
        if not self.store.acquire_lease(self.experiment, self.owner, self.ttl, now):
            raise self._held(self._holder_name())
        self._renewed_at = elapsed

    def renew(self, now: float, elapsed: float) -> None:
        """Extend the lease to `now` + TTL once a third of the TTL has passed since the last renewal.

        Args:
            now: wall-clock time, written into the lease.
            elapsed: the controller's clock that the wall clock cannot move (`elapsed_of`): a
                wall clock set back must not hold off the renewals.

        Raises:
            LeaseHeldError: another controller took it meanwhile.
        """
        if self._renewed_at is not None and elapsed - self._renewed_at < self.ttl / 3:
            return
        if not self.store.renew_lease(self.experiment, self.owner, self.ttl, now):
            raise LeaseHeldError(f"lost the lease of experiment {self.experiment!r} to another controller")
        self._renewed_at = elapsed

    def _unchanged_for_a_ttl(self, seen: tuple[str, float], clock: Clock) -> bool:
        """Watch the lease `seen` for a TTL on `clock`; True if it stayed as it was."""
        logger.warning(
            "the lease of experiment %r, held by %s, expired by this machine's clock; watching it for "
            "%.0f s before taking it over, in case its controller runs on a clock behind this one",
            self.experiment,
            seen[0],
            self.ttl,
        )
        elapsed = elapsed_of(clock)
        end = elapsed() + self.ttl
        while (left := end - elapsed()) > 0:
            clock.sleep(min(left, 1.0, self.ttl / 10))
            if self.store.lease_holder(self.experiment) != seen:
                return False
        return True

    def _holder_name(self) -> str:
        holder = self.store.lease_holder(self.experiment)
        return holder[0] if holder else "another controller"

    def _held(self, who: str, why: str = "") -> LeaseHeldError:
        return LeaseHeldError(
            f"experiment {self.experiment!r} is already being run by {who}{why}; "
            "wait for it to finish, or stop it with `sweepwise cancel` first"
        )

    @staticmethod
    def _alive_here(owner: str, expired: bool) -> str:
        """What to tell of a holder alive on this machine whose lease may have run out."""
        holder = _parse_owner(owner)
        if holder is None or not expired:
            return ""
        pid = holder.pid
        if process_stopped(pid):
            return f" (process {pid} on this machine, stopped: resume it with `kill -CONT {pid}` or end it)"
        return f" (process {pid} on this machine, alive though it has not renewed the lease: is it stuck?)"

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

    def _holder_lives(self, owner: str) -> bool | None:
        """Whether the holder's process is alive; None when this process cannot look it up."""
        holder, me = _parse_owner(owner), self._me
        if holder is None or holder.host != me.host:
            return None
        if (holder.boot, holder.pidns, me.boot, me.pidns) == (None, None, None, None):
            # no /proc: host and pid, and a live pid may be another process by now
            return False if holder.pid != me.pid and not process_alive(holder.pid) else None
        if holder.start is None or me.start is None or (holder.boot, holder.pidns) != (me.boot, me.pidns):
            return None  # another boot or PID namespace, or pids we cannot look up: wait for the ttl
        if holder.pid == me.pid:
            return None
        return process_alive(holder.pid, holder.start)


__all__ = ["ExperimentLease"]
