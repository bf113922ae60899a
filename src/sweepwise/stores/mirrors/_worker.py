"""The background thread that copies what the store of record committed to a mirror target.

The backlog is the store of record itself (docs/stores.md, "Mirrors"): every write bumps
the runs it changes to a new update number (`seq`), so "what is not yet mirrored" is
`fetch_changed(experiment, marker)`. The in-memory queue is one wake-up flag, bounded by
construction; nothing can be dropped from it, because nothing but the flag is in it. The
marker ("mirrored up to seq N", per target) is saved in the store of record's state table
under `<experiment>/mirror`, after the target took the runs up to N; a crash between the two
re-sends runs the target already has, which it updates (targets are idempotent).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from sweepwise.core.models import RunInfo
from sweepwise.stores.mirrors._target import MirrorTarget

_log = logging.getLogger(__name__)

BATCH_DELAY = 0.2
"""Seconds the thread waits after a wake-up, so the commits of one tick go out as one batch."""


class _Source(Protocol):
    def fetch_changed(self, experiment: str, since_seq: int) -> tuple[list[RunInfo], int]: ...

    def load_state(self, experiment: str) -> dict[str, Any] | None: ...

    def save_state(self, experiment: str, state: dict[str, Any]) -> None: ...


def marker_key(experiment: str) -> str:
    """The state key of an experiment's mirror markers (never an experiment name: those have no `/`)."""
    return f"{experiment}/mirror"


def load_marker(source: _Source, experiment: str, name: str) -> dict[str, Any]:
    """Target `name`'s marker of `experiment` (`{"seq": N, "last_error": ...}`); empty when none."""
    state = source.load_state(marker_key(experiment)) or {}
    marker = state.get(name)
    return dict(marker) if isinstance(marker, dict) else {}


def save_marker(source: _Source, experiment: str, name: str, marker: dict[str, Any]) -> None:
    """Save target `name`'s marker of `experiment`, beside the other targets' markers."""
    key = marker_key(experiment)
    state = source.load_state(key) or {}
    state[name] = marker
    source.save_state(key, state)


class MirrorWorker:
    """Drains `source`'s changes of `experiment` to `target` on a daemon thread.

    Args:
        source: the store of record.
        target: where runs are copied.
        experiment: the experiment mirrored.
        max_backoff: the longest wait between two failed attempts, in seconds.
    """

    def __init__(
        self, source: _Source, target: MirrorTarget, experiment: str, *, max_backoff: float = 30.0
    ) -> None:
        self._source = source
        self._target = target
        self._experiment = experiment
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._idle = threading.Event()
        self._seq: int | None = None
        self._healthy = True
        self._last_error: str | None = None
        self._wait = wait_exponential(multiplier=0.5, max=max_backoff)
        self._thread = threading.Thread(target=self._loop, name=f"sweepwise-mirror-{experiment}", daemon=True)

    def start(self) -> None:
        """Start the thread; its first pass catches up with what earlier runs left unmirrored."""
        self._wake.set()
        self._thread.start()

    def notify(self) -> None:
        """Something was committed: drain soon. Never blocks."""
        self._idle.clear()
        self._wake.set()

    @property
    def last_error(self) -> str | None:
        """The last attempt's error, None after a success."""
        return self._last_error

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` s until everything committed so far was tried; True if it all went out."""
        self._idle.wait(timeout)
        return self._healthy and self._idle.is_set() and not self._wake.is_set()

    def close(self, flush_timeout: float) -> bool:
        """Stop the thread; wait up to `flush_timeout` s for the backlog while the target answers.

        A target that is failing is not waited for: the sweep never waits on a mirror that
        is down (its runs go out on the next run's catch-up).

        Returns:
            True when everything committed was mirrored.
        """
        if self._thread.is_alive() and self._healthy:
            self._idle.wait(flush_timeout)
        flushed = self._healthy and self._idle.is_set() and not self._wake.is_set()
        self._closing.set()
        self._wake.set()
        self._thread.join(min(0.5, flush_timeout) if self._healthy else 0.0)
        try:
            self._target.close()
        except Exception as exc:  # a mirror never fails the sweep
            _log.debug("closing mirror %s: %s", self._target.name, exc)
        return flushed

    def drain_once(self) -> int:
        """Mirror everything not yet mirrored, on this thread; the runs sent (`sweepwise mirror`).

        Raises:
            Exception: the target or the store failed (the marker is recorded with the error).
        """
        try:
            return self._drain()
        except Exception as exc:
            self._record_failure(exc)
            raise

    # -- the thread --------------------------------------------------------------------------

    def _loop(self) -> None:
        retrying = Retrying(
            wait=self._wait,
            retry=retry_if_exception_type(Exception),
            stop=lambda state: self._closing.is_set(),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        while not self._closing.is_set():
            self._wake.wait()
            if self._closing.is_set():
                return
            self._closing.wait(BATCH_DELAY)
            self._wake.clear()
            try:
                retrying(self._drain)
            except Exception as exc:  # closing while failing: the next run catches up
                _log.debug("mirror %s stopped while failing: %s", self._target.name, exc)
                return
            if not self._wake.is_set():
                self._idle.set()

    def _sleep(self, seconds: float) -> None:
        self._closing.wait(seconds)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is not None:
            self._record_failure(exc)

    def _drain(self) -> int:
        if self._seq is None:
            marker = self._load_marker()
            if not marker:  # from now on `sweepwise status` shows the mirror and its lag
                self._save_marker({"seq": 0, "last_error": None})
            self._seq = marker.get("seq", 0)
        runs, latest = self._source.fetch_changed(self._experiment, self._seq)
        if runs:
            self._target.push(self._experiment, runs)
        if runs or latest != self._seq or not self._healthy:
            self._seq = latest
            self._healthy, self._last_error = True, None
            self._save_marker({"seq": latest, "last_error": None, "mirrored_at": time.time()})
        return len(runs)

    def _record_failure(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        first = self._healthy or message != self._last_error
        if first:  # recorded in the store before `last_error` shows it, so a reader of both agrees
            _log.warning("mirror %s failed (retrying in the background): %s", self._target.name, message)
            marker = self._load_marker_quietly()
            try:
                self._save_marker({**marker, "last_error": message, "error_at": time.time()})
            except Exception as save_exc:
                _log.debug("recording the mirror's error: %s", save_exc)
        self._healthy, self._last_error = False, message
        self._idle.set()  # nothing to wait for on close: the target is down

    # -- the marker --------------------------------------------------------------------------

    def _load_marker(self) -> dict[str, Any]:
        return load_marker(self._source, self._experiment, self._target.name)

    def _load_marker_quietly(self) -> dict[str, Any]:
        try:
            return self._load_marker()
        except Exception:
            return {"seq": self._seq or 0}

    def _save_marker(self, marker: dict[str, Any]) -> None:
        full = {**marker, "seq": marker.get("seq", self._seq or 0)}
        save_marker(self._source, self._experiment, self._target.name, full)


__all__ = ["BATCH_DELAY", "MirrorWorker", "load_marker", "marker_key", "save_marker"]
