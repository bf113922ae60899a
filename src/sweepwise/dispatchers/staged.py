"""Per-stage dispatchers: training jobs on one dispatcher, eval jobs on another.

`StagedDispatcher(train, eval)` is itself a dispatcher, so the controller needs no
change: it routes `dispatch`, `find`, `reattach` and `read_log` by the job's type,
`cancel` by the dispatch id (each id is remembered with the stage that issued it), and
merges the two `poll()`s. It has an optional capability (`Reattachable`, `Waitable`,
`LogReader`) exactly when its parts do: `StagedDispatcher(...)` returns an instance of
the subclass that adds the methods of the capabilities its parts share (`Waitable`:
when either part is).

Example:
    >>> from pathlib import Path
    >>> from sweepwise.core.protocols import Reattachable
    >>> from sweepwise.dispatchers.local import LocalDispatcher
    >>> train, evaluate = LocalDispatcher(Path("runs"), "demo"), LocalDispatcher(Path("runs"), "demo")
    >>> staged = StagedDispatcher(train, evaluate)
    >>> isinstance(staged, Reattachable)
    True
"""

from __future__ import annotations

import time
from typing import Any

from sweepwise.core.errors import DispatchError
from sweepwise.core.models import EventKind, JobDefinition, JobEvent, JobTypes
from sweepwise.core.protocols import Dispatcher, LogReader, Reattachable, Waitable

_WAIT_SLICE = 0.05  # seconds each part waits in turn when both can wake the controller
_ENDED = (EventKind.FINISHED, EventKind.LOST)


class StagedDispatcher:
    """Training jobs go to `train`, eval jobs to `eval`; everything else follows the job.

    Not thread-safe (nor are its parts): one controller thread drives it.

    Args:
        train: the dispatcher of `LAUNCH_TRAINING` jobs.
        eval: the dispatcher of `LAUNCH_EVAL` jobs.
    """

    def __new__(cls, train: Dispatcher, eval: Dispatcher) -> StagedDispatcher:
        if cls is StagedDispatcher:
            cls = _with_capabilities(train, eval)
        return super().__new__(cls)

    def __init__(self, train: Dispatcher, eval: Dispatcher) -> None:
        self.train = train
        self.eval = eval
        self._stage_of: dict[str, JobTypes] = {}  # dispatch id -> the stage that issued it

    def part(self, job_type: JobTypes) -> Dispatcher:
        """The dispatcher of jobs of `job_type`."""
        return self.train if job_type is JobTypes.LAUNCH_TRAINING else self.eval

    def _parts(self) -> list[Dispatcher]:
        return [self.train] if self.train is self.eval else [self.train, self.eval]

    def dispatch(self, job: JobDefinition) -> str:
        """Start `job` on its stage's dispatcher (idempotent as that dispatcher is)."""
        dispatch_id = self.part(job.type).dispatch(job)
        self._stage_of[dispatch_id] = job.type
        return dispatch_id

    def poll(self) -> list[JobEvent]:
        """The events of both stages since the last poll, training's first."""
        events = [event for part in self._parts() for event in part.poll()]
        for event in events:
            if event.kind in _ENDED:
                self._stage_of.pop(event.dispatch_id, None)  # keeps memory flat; cancel falls back
        return events

    def cancel(self, dispatch_id: str) -> None:
        """Stop a job through the dispatcher that issued its id.

        An id this instance never saw (a job that ended, or one started by another
        process and not reattached) goes to the training dispatcher, then, if that one
        refuses it as not its own (`DispatchError`), to the eval dispatcher.
        """
        stage = self._stage_of.get(dispatch_id)
        if stage is not None:
            self.part(stage).cancel(dispatch_id)
            return
        try:
            self.train.cancel(dispatch_id)
        except DispatchError:
            if self.eval is self.train:
                raise
            self.eval.cancel(dispatch_id)

    def close(self) -> None:
        """Close both parts (those that can be closed)."""
        for part in self._parts():
            close = getattr(part, "close", None)
            if close is not None:
                close()

    def end_sweep(self) -> None:
        """Tell both parts (those that listen) that the sweep is complete."""
        for part in self._parts():
            end_sweep = getattr(part, "end_sweep", None)
            if end_sweep is not None:
                end_sweep()


class _Reattach:
    """`Reattachable`, when both parts are."""

    train: Any
    eval: Any
    _stage_of: dict[str, JobTypes]

    def find(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The dispatch id of an existing job, asked of its stage's dispatcher."""
        part = self.train if job_type is JobTypes.LAUNCH_TRAINING else self.eval
        found: str | None = part.find(run_id, job_type, attempt)
        if found is not None:
            self._stage_of[found] = job_type
        return found

    def reattach(self, dispatch_id: str, run_id: str, job_type: JobTypes) -> None:
        """Watch an existing job again, through its stage's dispatcher."""
        part = self.train if job_type is JobTypes.LAUNCH_TRAINING else self.eval
        part.reattach(dispatch_id, run_id, job_type)
        self._stage_of[dispatch_id] = job_type


class _Wait:
    """`Waitable`, when either part is."""

    train: Any
    eval: Any

    def wait(self, timeout: float) -> None:
        """Wait on the part(s) that can wake early; with two, in short turns.

        Two parts cannot be waited on at once without threads (and neither part is
        thread-safe), so each waits up to `_WAIT_SLICE` seconds in turn; a part that
        returns before its turn is over had an event ready, and the wait ends.
        """
        parts = [part for part in dict.fromkeys((self.train, self.eval)) if isinstance(part, Waitable)]
        if len(parts) == 1:
            parts[0].wait(timeout)
            return
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            for part in parts:
                turn = min(_WAIT_SLICE, deadline - time.monotonic())
                if turn <= 0:
                    return
                started = time.monotonic()
                part.wait(turn)
                if time.monotonic() - started < turn / 2:
                    return  # woken early: an event is ready


class _Logs:
    """`LogReader`, when both parts are."""

    train: Any
    eval: Any

    def read_log(self, run_id: str, job_type: JobTypes, attempt: int = 1) -> str | None:
        """The job's log, read by its stage's dispatcher."""
        part = self.train if job_type is JobTypes.LAUNCH_TRAINING else self.eval
        text: str | None = part.read_log(run_id, job_type, attempt)
        return text


_CAPABILITIES = ((_Reattach, "Reattachable"), (_Wait, "Waitable"), (_Logs, "LogReader"))
_VARIANTS: dict[tuple[bool, bool, bool], type[StagedDispatcher]] = {}


def _with_capabilities(train: Dispatcher, eval: Dispatcher) -> type[StagedDispatcher]:
    """The `StagedDispatcher` subclass with the optional capabilities `train` and `eval` share."""
    both = (train, eval)
    key = (
        all(isinstance(part, Reattachable) for part in both),
        any(isinstance(part, Waitable) for part in both),
        all(isinstance(part, LogReader) for part in both),
    )
    variant = _VARIANTS.get(key)
    if variant is None:
        chosen = [(mixin, name) for (mixin, name), wanted in zip(_CAPABILITIES, key, strict=True) if wanted]
        if not chosen:
            variant = StagedDispatcher
        else:
            name = f"StagedDispatcher[{', '.join(name for _, name in chosen)}]"
            bases = (StagedDispatcher, *(mixin for mixin, _ in chosen))
            variant = type(name, bases, {"__module__": __name__, "__qualname__": name})
        _VARIANTS[key] = variant
    return variant


__all__ = ["StagedDispatcher"]
