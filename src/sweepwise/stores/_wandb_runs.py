"""The seed's three calls on W&B runs, each retried with exponential backoff (docs/stores.md, "WandbStore").

`WandbRuns` talks to W&B's public API: a `wandb.Api`, or any object with its `create_run`,
`run`, `runs` and `flush`. Only transient errors are retried (`CommError`, timeouts, lost
connections, HTTP 5xx, 408 and 429); a permanent one (a missing project, no permission) is
one `StoreError` at once. W&B's summary reads lag its writes, so `fetch_runs` shows what this
process wrote that W&B does not show yet (read-your-writes); the public API's
`summary.update` writes the whole summary from the client's copy, so every write resends
every key this process wrote to the run, and a stale copy never takes one of them back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from sweepwise.core import keys
from sweepwise.core.errors import StoreError
from sweepwise.core.models import RunInfo
from sweepwise.core.status import JobStatus
from sweepwise.stores.mirrors.wandb import open_run, wandb_run_id

T = TypeVar("T")

RUN_ID_KEY = "sweepwise/run_id"
STATUS_KEY = "sweepwise/status"
ERROR_KEY = "sweepwise/error"

FLAG_KEYS = {
    "has_started_training": keys.TRAINING_STARTED,
    "has_completed_training": keys.TRAINING_COMPLETED,
    "has_started_eval": keys.EVAL_STARTED,
    "has_been_evaluated": keys.EVAL_COMPLETED,
    "has_failed": keys.RUN_FAILED,
    "is_stale": keys.RUN_STALE,
    "is_cancelled": keys.RUN_CANCELLED,
    "is_stopped": keys.RUN_STOPPED,
}
"""`RunInfo` flag -> the summary key that holds it in W&B."""

_STATE_PROGRESS = {
    "running": ("has_started_training",),
    "finished": ("has_started_training", "has_completed_training"),
}
"""A W&B run state -> the progress it means when the summary holds no flags (a job's own run)."""

_STATE_END = {"crashed": "has_failed", "failed": "has_failed", "killed": "is_cancelled"}
"""A W&B run state that ends the run whatever the summary says (its job crashed or was killed)."""

_FILTERS = frozenset({"group", "run_id", "status"})
_TRANSIENT_NAMES = frozenset({"CommError", "Timeout", "ConnectTimeout", "ReadTimeout", "ConnectionError"})


def wandb_summary(run: RunInfo) -> dict[str, Any]:
    """What the W&B summary of `run` holds: its summary, its eight status flags, its id and status."""
    summary = dict(run.summary)
    summary.update({key: bool(getattr(run, name)) for name, key in FLAG_KEYS.items()})
    summary[RUN_ID_KEY] = run.run_id
    summary[STATUS_KEY] = run.status.key
    if run.error:
        summary[ERROR_KEY] = run.error
    return summary


def run_from_wandb(
    run_id: str, group: str | None, tags: list[str], state: str, summary: dict[str, Any]
) -> RunInfo:
    """A W&B run as a `RunInfo`; its status is derived as everywhere (`sweepwise.core.status.status_of`).

    The flags are the summary's; a flag the summary lacks (a run a job logged itself) comes
    from the state (`running`, `finished`); and a `crashed`, `failed` or `killed` state
    always fails or cancels the run.
    """
    flags = {name: bool(summary[key]) for name, key in FLAG_KEYS.items() if key in summary}
    for name in _STATE_PROGRESS.get(state, ()):
        flags.setdefault(name, True)
    if state in _STATE_END:
        flags[_STATE_END[state]] = True
    cost = summary.get(keys.OBSERVATION_COST)
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not math.isfinite(cost):
        cost = 0.0
    error = summary.get(ERROR_KEY)
    run = RunInfo(
        run_id=run_id,
        group=group,
        tags=tags,
        summary=summary,
        cost=float(cost),
        error=error if isinstance(error, str) else None,
        has_started_training=flags.get("has_started_training", False),
        has_completed_training=flags.get("has_completed_training", False),
        has_started_eval=flags.get("has_started_eval", False),
        has_been_evaluated=flags.get("has_been_evaluated", False),
        has_failed=flags.get("has_failed", False),
        is_stale=flags.get("is_stale", False),
        is_cancelled=flags.get("is_cancelled", False),
        is_stopped=flags.get("is_stopped", False),
    )
    return run


def wandb_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """The MongoDB-style filters of `Api.runs` for sweepwise's `group` and `run_id` filters."""
    clauses: list[dict[str, Any]] = []
    if filters.get("group") is not None:
        clauses.append({"group": filters["group"]})
    if "run_id" in filters:
        clauses.append({"name": {"$in": [wandb_run_id(run_id) for run_id in _ids(filters["run_id"])]}})
    if len(clauses) > 1:
        return {"$and": clauses}
    return clauses[0] if clauses else {}


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an error carries (`exc.response`, or a wrapped `exc.exc` / cause's), if any."""
    for candidate in (exc, getattr(exc, "exc", None), exc.__cause__):
        code = getattr(getattr(candidate, "response", None), "status_code", None)
        if isinstance(code, int):
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    """True for an error that may go away: HTTP 5xx/408/429, a timeout, a lost connection, a `CommError`."""
    status = http_status(exc)
    if status is not None:
        return status >= 500 or status in (408, 429)
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


def _is_missing(exc: BaseException) -> bool:
    """True when `Api.run` says there is no such run (`RunNotFoundError` is a `ValueError`; or a 404)."""
    return isinstance(exc, ValueError) or http_status(exc) == 404


def _ids(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(item) for item in value]


def _default_api() -> Any:
    import wandb

    return wandb.Api(timeout=30)


@dataclass(frozen=True, slots=True)
class _Seen:
    """One W&B run as read: its id, group, tags, state and summary."""

    wandb_id: str
    group: str | None
    tags: list[str]
    state: str
    summary: dict[str, Any]


class WandbRuns:
    """The runs of one W&B project, through the seed's `init_run`, `fetch_runs` and `update_run_summary`.

    Implements `sweepwise.core.protocols.Store` on W&B. Each W&B run's id is derived from
    the sweepwise run id (`wandb_run_id`); its group is the experiment.

    Args:
        project: the W&B project.
        entity: the W&B entity (user or team); default the API key's.
        api: makes the `wandb.Api`-like client (default `wandb.Api(timeout=30)`).
        mode: `online` (through the API) or `offline` (writes through `wandb.init(mode="offline")`,
            files under `dir`; nothing can be read back).
        dir: where offline runs' files go (default W&B's: `./wandb`).
        retries: attempts per call, the first included.
        backoff: the first wait between attempts, in seconds; it doubles up to `max_backoff`.
        max_backoff: the longest wait between two attempts, in seconds.
    """

    def __init__(
        self,
        project: str,
        entity: str | None = None,
        *,
        api: Callable[[], Any] | None = None,
        mode: str = "online",
        dir: str | None = None,
        retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        if mode not in ("online", "offline"):
            raise ValueError(f"mode must be online or offline, not {mode!r}")
        self.project, self.entity, self.mode, self.dir = project, entity, mode, dir
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self._make_api = api or _default_api
        self._api_: Any = None
        self._written: dict[str, dict[str, Any]] = {}  # W&B id -> every summary key this process wrote
        self._created: dict[str, tuple[str, str | None, list[str]]] = {}  # W&B id -> (run id, group, tags)

    @property
    def path(self) -> str:
        """`ENTITY/PROJECT`, or `PROJECT` for the default entity."""
        return f"{self.entity}/{self.project}" if self.entity else self.project

    # -- the seed's three calls ----------------------------------------------------------------

    def init_run(
        self,
        run_id: str,
        group: str | None = None,
        tags: list[str] | None = None,
        initial_summary: dict[str, Any] | None = None,
    ) -> None:
        """Create the W&B run of `run_id` in `group`, with `tags` and `initial_summary` (an upsert)."""
        wandb_id, tags = wandb_run_id(run_id), list(tags or [])
        unset = dict.fromkeys(FLAG_KEYS.values(), False)  # a PENDING run, whatever state W&B gives it
        summary = {RUN_ID_KEY: run_id, **unset, **(initial_summary or {})}
        if self.mode == "offline":
            self._created[wandb_id] = (run_id, group, tags)
            self._write_offline(run_id, {**self._written.get(wandb_id, {}), **summary})
        else:

            def create() -> None:
                api = self._api()
                api.create_run(run_id=wandb_id, project=self.project, entity=self.entity)
                run = api.run(f"{self.path}/{wandb_id}")  # with its summary: `update()` writes it back
                run.name, run.group, run.tags = run_id, group, tags
                run.update()
                run.summary.update({**self._written.get(wandb_id, {}), **summary})

            self._call(f"create run {run_id}", create)
            self._created[wandb_id] = (run_id, group, tags)
        self._written.setdefault(wandb_id, {}).update(summary)

    def fetch_runs(self, filters: dict[str, Any]) -> list[RunInfo]:
        """Runs matching `filters` (`group`, `run_id`: one or a list, `status`), with this process's writes.

        Raises:
            ValueError: an unknown filter.
            StoreError: W&B could not be read (after retries), or the mode is offline.
        """
        unknown = sorted(set(filters) - _FILTERS)
        if unknown:
            raise ValueError(
                f"unknown filter {unknown[0]!r}; W&B runs filter on {', '.join(sorted(_FILTERS))}"
            )
        if self.mode == "offline":
            raise StoreError(f"W&B {self.path} is offline: its runs cannot be read back (read the ledger)")
        query = wandb_filters(filters)

        def read() -> list[_Seen]:
            api = self._api()
            api.flush()  # the API caches runs; what W&B's reads lag is overlaid below
            return [
                _Seen(
                    str(run.id),
                    run.group,
                    list(run.tags or []),
                    str(run.state),
                    dict(run.summary_metrics or {}),
                )
                for run in api.runs(self.path, filters=query)
            ]

        seen = {run.wandb_id: run for run in self._call(f"read the runs of {filters}", read)}
        for wandb_id, (run_id, group, tags) in self._created.items():  # created, not listed yet
            if wandb_id not in seen and _matches(run_id, group, filters):
                seen[wandb_id] = _Seen(wandb_id, group, tags, "running", {})
        runs = [self._as_run(run) for run in seen.values()]
        if "status" in filters:
            wanted = {
                JobStatus(s) if not isinstance(s, JobStatus) else s for s in _statuses(filters["status"])
            }
            runs = [run for run in runs if run.status in wanted]
        return sorted(runs, key=lambda run: run.run_id)

    def update_run_summary(self, run_id: str, summary_update: dict[str, Any]) -> bool:
        """Merge `summary_update` into the W&B run's summary in one write; False if W&B has no such run."""
        wandb_id = wandb_run_id(run_id)
        payload = {**self._written.get(wandb_id, {}), **summary_update}
        if self.mode == "offline":
            if wandb_id not in self._created:
                return False
            self._write_offline(run_id, payload)
        else:

            def write() -> bool:
                try:
                    run = self._api().run(f"{self.path}/{wandb_id}")
                except Exception as exc:
                    if _is_missing(exc):
                        return False
                    raise
                run.summary.update(payload)
                return True

            if not self._call(f"update the summary of run {run_id}", write):
                return False
        self._written.setdefault(wandb_id, {}).update(summary_update)
        return True

    # -- plumbing --------------------------------------------------------------------------------

    def _api(self) -> Any:
        if self._api_ is None:
            self._api_ = self._make_api()
        return self._api_

    def _as_run(self, seen: _Seen) -> RunInfo:
        written = self._written.get(seen.wandb_id, {})
        summary = {**seen.summary, **{k: v for k, v in written.items() if seen.summary.get(k) != v}}
        known = self._created.get(seen.wandb_id)
        run_id = summary.get(RUN_ID_KEY) or (known[0] if known else seen.wandb_id)
        return run_from_wandb(str(run_id), seen.group, seen.tags, seen.state, summary)

    def _write_offline(self, run_id: str, summary: dict[str, Any]) -> None:
        _, group, tags = self._created[wandb_run_id(run_id)]

        def write() -> None:
            wb = open_run(
                project=self.project,
                entity=self.entity,
                mode="offline",
                dir=self.dir,
                group=group,
                run_id=run_id,
                tags=tags,
            )
            wb.summary.update(summary)
            wb.finish()

        self._call(f"write run {run_id} offline", write)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """`fn()`, retried with backoff while it fails with a transient error; else one `StoreError`."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retries),
            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        try:
            result: T = retrying(fn)
        except StoreError:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            if is_transient(exc):
                raise StoreError(
                    f"could not {what} in W&B {self.path} after {self.retries} attempts: {reason}"
                ) from exc
            raise StoreError(
                f"could not {what} in W&B {self.path}: {reason}; check the entity, the project "
                "and the API key (wandb login)"
            ) from exc
        return result


def _matches(run_id: str, group: str | None, filters: dict[str, Any]) -> bool:
    if filters.get("group") is not None and group != filters["group"]:
        return False
    return "run_id" not in filters or run_id in _ids(filters["run_id"])


def _statuses(value: Any) -> list[Any]:
    return [value] if isinstance(value, str | JobStatus) else list(value)


__all__ = [
    "ERROR_KEY",
    "FLAG_KEYS",
    "RUN_ID_KEY",
    "STATUS_KEY",
    "WandbRuns",
    "http_status",
    "is_transient",
    "run_from_wandb",
    "wandb_filters",
    "wandb_summary",
]
