"""One watched job of an engine: its files, and the verdict on its end from the engine's word.

The job's status file says how it ended when its supervisor could say so. The engine is asked
only when the files cannot tell: the supervisor is gone without a final status (its node
failed, the engine killed it hard), or its final status says it was killed by a signal
sweepwise did not send (the engine's time limit, a requeue, an out-of-memory kill). Such a
verdict is written into the status file (`verdict`), so every later reader sees the same
even after the engine has forgotten the job (docs/design.md, "Liveness from evidence").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepwise.core.models import EventKind, JobEvent
from sweepwise.dispatchers._claims import token_path
from sweepwise.dispatchers._engine import EngineEnd, EngineState, Phase
from sweepwise.dispatchers._job_files import JobFiles, number
from sweepwise.runtime import DISPATCH, STATUS
from sweepwise.runtime.jobhost import CANCEL
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import RunState, write_json_atomic

EXPLAIN_WAIT = 120.0  # seconds to wait for the engine to say why it stopped a job it still lists


def taken(status: dict[str, Any] | None) -> bool:
    """Whether a supervisor has taken the job (its token's "starting" status names no supervisor)."""
    return status is not None and "supervisor_pid" in status


def _restarts_at_start(status: dict[str, Any]) -> int:
    value = status.get("engine_run")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


@dataclass(slots=True)
class EngineWatch(JobFiles):
    """A watched job of an engine: its files, its engine id, and what the engine said lately."""

    engine: str = ""  # the engine's name, in messages
    engine_id: str = ""
    claim_id: str | None = None
    incarnation: str | None = None
    unexplained_since: float | None = None  # monotonic: its final status says "killed", the engine not why
    next_engine_beat: float = 0.0  # monotonic: the next HEARTBEAT the engine's word may give
    stamp: tuple[int, int, int] | None = None  # the status file's (inode, size, mtime) at the last read

    @property
    def dispatch_id(self) -> str:
        return f"{self.run_id}:{self.job}:{self.engine_id}"

    def explained(self, status: dict[str, Any]) -> bool:
        """Whether a final status says all, or the engine may know more.

        A job killed by a signal sweepwise did not send (the engine's time limit, a requeue,
        its out-of-memory killer) is judged with the engine's word on why.
        """
        if status.get("timed_out") or status.get("exit_unobserved") or os.path.exists(self.path(CANCEL)):
            return True
        code = status.get("exit_code")
        return not status.get("cancelled") and isinstance(code, int) and code >= 0

    def judge(
        self,
        status: dict[str, Any] | None,
        state: EngineState | None,
        final: bool,
        stop: Callable[[], None],
    ) -> JobEvent | None:
        """The end of the job by the engine's word; None while there is none to draw.

        Args:
            status: the job's status file (None: none yet).
            state: what the engine says of the job; None when it no longer knows it.
            final: the status is final (and not `explained`).
            stop: stops the engine's job (called for a requeued job: its next run starts nothing).
        """
        supervised = taken(status)
        requeued = False
        if supervised and status is not None and state is not None:
            requeued = state.restarts > _restarts_at_start(status)
        if final and status is not None:  # killed by a signal sweepwise did not send: ask why
            if state is None:
                return self.finished_event(status)  # the engine forgot it: the status's word stands
            if not requeued and state.phase is not Phase.ENDED:
                now = time.monotonic()
                self.unexplained_since = self.unexplained_since or now
                if now - self.unexplained_since < EXPLAIN_WAIT:
                    return None  # the engine is still stopping it
                return self.finished_event(status)
            if not requeued and state.end in (EngineEnd.DONE, EngineEnd.CANCELLED):
                return self.finished_event(status)
        elif state is not None and state.phase is not Phase.ENDED and not requeued:
            return None  # queued or running
        elif not supervised and not self._void_token():
            return None  # a supervisor has just taken the job: judge it next time
        if requeued:
            assert state is not None
            stop()
            return self._settle(status, self._lost(f"requeued by {self.engine} (restart {state.restarts})"))
        if not final:
            finished = self.result_end()  # a result on disk means it finished
            if finished is not None:
                return finished
        return self._settle(status, self._engine_end(state, supervised))

    def _engine_end(self, state: EngineState | None, supervised: bool) -> JobEvent:
        """The end of a job whose supervisor is gone without saying why, as the engine tells it."""
        engine = self.engine
        said = f"{engine} says {state.detail}" if state is not None else f"{engine} no longer knows it"
        end = state.end if state is not None else None
        if end is EngineEnd.TIMEOUT:
            error = f"timeout: {engine} stopped it at its time limit ({said})"
            return self.event(EventKind.FINISHED, None, exit_code=-1, error=error, timed_out=True)
        if end is EngineEnd.LOST:
            return self._lost(said)
        if end is EngineEnd.FAILED:
            return self.event(EventKind.FINISHED, None, exit_code=-1, error=f"{engine} stopped it ({said})")
        if end is EngineEnd.CANCELLED:
            ours = os.path.exists(self.path(CANCEL))
            error = "cancelled" if ours else f"cancelled outside sweepwise ({said})"
            return self.event(EventKind.FINISHED, None, exit_code=-1, error=error)
        if supervised:
            return self._lost(f"its supervisor ended without an exit status ({said})")
        if state is None:
            return self._lost(f"{said}, and its supervisor never started")
        error = f"the {engine} job ended before its supervisor started ({said}); see the job's log"
        return self.event(EventKind.FINISHED, None, exit_code=-1, error=error)

    def _lost(self, why: str) -> JobEvent:
        return self.lost_event(f"job lost: {why}")

    def _void_token(self) -> bool:
        """Take the claim back from a job the engine ended before its supervisor took it.

        Returns:
            False when a supervisor took the token meanwhile.
        """
        claim = Path(self.path(DISPATCH))
        if self.claim_id is None:  # an unreadable claim: void every token beside it
            for token in claim.parent.glob(f"{claim.name}.*.token"):
                token.unlink(missing_ok=True)
            return not taken(read_status(self.path(STATUS)))
        try:
            token_path(claim, self.claim_id).unlink()
        except FileNotFoundError:
            return not taken(read_status(self.path(STATUS)))
        return True

    def _settle(self, status: dict[str, Any] | None, event: JobEvent) -> JobEvent:
        """Write the verdict `event` to the job's status, so every later reader sees the same."""
        first = {"job": self.job, "pid": None, "run_id": self.run_id, "attempt": self.attempt}
        final = dict(status or first)
        final.update(
            state=RunState.EXITED.value,
            engine_id=self.engine_id,
            incarnation=final.get("incarnation", self.incarnation),
            ended_at=event.at,
            verdict={
                "kind": event.kind.value,
                "error": event.error,
                "exit_code": event.exit_code,
                "timed_out": event.timed_out,
            },
        )
        try:
            write_json_atomic(self.path(STATUS), final)
        except OSError:
            pass  # the same evidence is judged again next time
        return event

    def verdict_event(self, status: dict[str, Any], verdict: dict[str, Any]) -> JobEvent:
        """The event of a verdict written before (`status["verdict"]`)."""
        self.started_at = self.started_at or number(status.get("started_at"))
        kind = EventKind.LOST if verdict.get("kind") == EventKind.LOST.value else EventKind.FINISHED
        code = verdict.get("exit_code")
        error = verdict.get("error")
        return self.event(
            kind,
            number(status.get("ended_at")),
            exit_code=code if isinstance(code, int) else None,
            error=str(error) if error is not None else None,
            timed_out=verdict.get("timed_out") is True,
        )


__all__ = ["EXPLAIN_WAIT", "EngineWatch", "taken"]
