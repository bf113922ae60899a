"""Running the controller's hooks: which are due for a run, with retries, and what they write.

The controller decides when hooks run and writes what they return (each update with
its processed flag, in one transaction); this module runs them and collects the
updates, so that the sequencing stays in `controller.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sweepwise.core import keys
from sweepwise.core.models import JobDefinition, JobStatus, RunInfo
from sweepwise.core.protocols import Clock
from sweepwise.engine.hooks import HookFn, MissingMetricError, ObservationHook, no_op_hook

logger = logging.getLogger(__name__)


@dataclass
class ControllerHooks:
    """The seed's hooks. Each returns a summary update (or None) written with its flag."""

    on_training_completed: HookFn = no_op_hook
    on_eval_completed: HookFn | None = None
    on_job_dispatch: Callable[[JobDefinition, str], None] | None = None


@dataclass
class HookResults:
    """What hooks returned: each run's update (processed flags included), and runs to fail."""

    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (run id, one-line reason)


class HookRunner:
    """Runs `hooks` for runs, `retries` times at most each, stamping flags with `clock`'s time."""

    def __init__(self, hooks: ControllerHooks, *, retries: int, clock: Clock) -> None:
        self.hooks = hooks
        self.retries = retries
        self.clock = clock

    @property
    def _post_eval(self) -> HookFn:
        return self.hooks.on_eval_completed or ObservationHook("score")

    def post_training_due(self, run: RunInfo) -> bool:
        """Whether the post-training hook is still to run for `run`."""
        return (
            self.hooks.on_training_completed is not no_op_hook
            and run.has_completed_training
            and not run.summary.get(keys.POST_TRAINING_PROCESSED)
            and run.status not in (JobStatus.CANCELLED, JobStatus.FAILED)
        )

    @staticmethod
    def post_eval_due(run: RunInfo) -> bool:
        """Whether the post-eval hook is still to run for `run`."""
        return run.status is JobStatus.COMPLETED and not run.summary.get(keys.POST_EVAL_PROCESSED)

    def due(self, run: RunInfo) -> bool:
        """Whether any hook is still to run for `run`."""
        return self.post_training_due(run) or self.post_eval_due(run)

    def run_due(self, runs: Iterable[RunInfo]) -> HookResults:
        """Run the hooks due for each of `runs`."""
        results = HookResults()
        for run in runs:
            if self.post_training_due(run):
                self._run(run, self.hooks.on_training_completed, keys.POST_TRAINING_PROCESSED, results)
            if self.post_eval_due(run):
                self._run(run, self._post_eval, keys.POST_EVAL_PROCESSED, results)
        return results

    def run_for_completion(self, trained: Iterable[RunInfo]) -> HookResults:
        """Run both hooks for trained runs of a spec with no eval job (their metric is the training's)."""
        results = HookResults()
        for run in trained:
            if self.hooks.on_training_completed is not no_op_hook:
                self._run(run, self.hooks.on_training_completed, keys.POST_TRAINING_PROCESSED, results)
            self._run(run, self._post_eval, keys.POST_EVAL_PROCESSED, results)
        return results

    def _run(self, run: RunInfo, hook: HookFn, flag: str, results: HookResults) -> None:
        try:
            update = self._call(hook, run)
        except MissingMetricError as exc:
            logger.warning("run %s: %s", run.run_id, exc)
            results.failures.append((run.run_id, str(exc)))
            update = {keys.OBSERVATION_IS_FAILURE: True}
        except Exception:
            logger.exception("hook %s failed for run %s; it will run again next tick", flag, run.run_id)
            return
        update[flag] = True
        update[f"{flag}_at"] = datetime.fromtimestamp(self.clock.now()).isoformat()
        results.updates.setdefault(run.run_id, {}).update(update)

    def _call(self, hook: HookFn, run: RunInfo) -> dict[str, Any]:
        """`hook(run)`, tried up to `retries` times with backoff; raises the last failure."""
        try:
            return hook(run) or {}  # the common case, without the retry machinery's overhead
        except Exception:
            if self.retries <= 1:
                raise
        from tenacity import Retrying, stop_after_attempt, wait_exponential

        update: dict[str, Any] = {}
        time.sleep(0.05)  # the backoff before the first retry, as tenacity would wait
        for attempt in Retrying(
            stop=stop_after_attempt(self.retries - 1),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            reraise=True,
        ):
            with attempt:
                update = hook(run) or {}
        return update


__all__ = ["ControllerHooks", "HookResults", "HookRunner"]
