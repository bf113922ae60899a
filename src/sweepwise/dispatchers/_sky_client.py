"""The one place sweepwise calls SkyPilot: launch, the managed-jobs queue, cancel, logs.

SkyPilot (0.10 on) is a client of its API server: each call returns a request id, and
`sky.get` waits for the request's result. Everything the SkyPilot dispatcher asks of
SkyPilot goes through a `SkyClient`, so tests substitute a fake at exactly this boundary.
"""

from __future__ import annotations

import enum
import io
import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from sweepwise.core.errors import ConfigError

EXTRA = 'pip install "sweepwise[skypilot]"'
QUEUE_FIELDS = (
    "job_id",
    "job_name",
    "task_name",
    "status",
    "failure_reason",
    "details",
    "recovery_count",
    "submitted_at",
    "start_at",
    "end_at",
)
"""The fields of a managed job's record the dispatcher reads (`sky.jobs.queue_v2(fields=...)`)."""

_ACTIVE_REQUEST = frozenset({"PENDING", "WAITING", "RUNNING"})
LAUNCH_REQUEST = "jobs.launch"
"""The name the API server gives a `sky.jobs.launch` request."""


def import_sky() -> ModuleType:
    """The `sky` package (SkyPilot).

    Raises:
        ConfigError: SkyPilot is not installed, or does not import; one line naming the extra.
    """
    try:
        import sky
    except ImportError as exc:
        if exc.name == "sky":
            raise ConfigError("dispatcher", f"SkyPilot is not installed: run {EXTRA}") from None
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError("dispatcher", f"SkyPilot does not import ({cause}): run {EXTRA}") from None
    module: ModuleType = sky
    return module


def one_line(exc: BaseException) -> str:
    """An exception as one line: its first line of text, else its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class LaunchState(enum.Enum):
    """Where a `sky.jobs.launch` request stands at the API server."""

    RUNNING = "running"  # queued or running: the managed job may not be in the queue yet
    SUCCEEDED = "succeeded"  # the managed job was submitted
    FAILED = "failed"  # nothing was submitted (bad task, no credentials, ...)
    UNKNOWN = "unknown"  # the API server no longer knows the request


@dataclass(frozen=True, slots=True)
class LaunchOutcome:
    """What became of a launch request: its state, and the managed job's id or the error."""

    state: LaunchState
    job_id: int | None = None
    error: str | None = None


class SkyClient(Protocol):
    """Every call the SkyPilot dispatcher makes into SkyPilot."""

    def launch(self, task: Any, name: str) -> str:
        """Ask for `task` to run as the managed job `name`; the launch request's id, at once."""
        ...

    def launch_outcome(self, request_id: str) -> LaunchOutcome:
        """Where the launch request stands, without waiting for it."""
        ...

    def queue(self, name_prefix: str) -> list[Any]:
        """This user's managed jobs whose names start with `name_prefix` (`sky.jobs.queue_v2` records)."""
        ...

    def launch_requests(self, name: str, since: float) -> list[str]:
        """Ids of the API server's `jobs.launch` requests for the managed job `name` made since `since`."""
        ...

    def cancel(self, name: str, job_id: int | None = None) -> None:
        """Cancel the managed job `job_id`, or the unfinished one named `name` when the id is unknown."""
        ...

    def logs(self, name: str, job_id: int | None = None, tail: int | None = None) -> str:
        """The managed job's log (its last `tail` lines; all of it when None)."""
        ...


class _SkyClient:
    """The `SkyClient` that talks to SkyPilot's API server through the `sky` package."""

    def __init__(self, sky: ModuleType) -> None:
        self._sky = sky

    def launch(self, task: Any, name: str) -> str:
        return str(self._sky.jobs.launch(task, name=name))

    def launch_outcome(self, request_id: str) -> LaunchOutcome:
        requests = self._sky.api_status(request_ids=[request_id])
        if not requests:
            return LaunchOutcome(LaunchState.UNKNOWN)
        status = str(getattr(requests[0], "status", "")).upper()
        if status in _ACTIVE_REQUEST:
            return LaunchOutcome(LaunchState.RUNNING)
        try:
            value = self._sky.get(request_id)
        except Exception as exc:  # the request's own error, re-raised by `sky.get`, whatever its type
            return LaunchOutcome(LaunchState.FAILED, error=one_line(exc))
        if status != "SUCCEEDED":
            return LaunchOutcome(LaunchState.FAILED, error=f"the launch request ended {status}")
        return LaunchOutcome(LaunchState.SUCCEEDED, job_id=_job_id(value))

    def launch_requests(self, name: str, since: float) -> list[str]:
        found: list[str] = []
        for request in self._sky.api_status(all_status=True):
            created_at = getattr(request, "created_at", None) or 0.0
            if getattr(request, "name", None) != LAUNCH_REQUEST or created_at < since:
                continue
            try:
                body = json.loads(getattr(request, "request_body", "") or "{}")
            except ValueError:
                continue
            if isinstance(body, dict) and body.get("name") == name:
                found.append(str(request.request_id))
        return found

    def queue(self, name_prefix: str) -> list[Any]:
        def ask(refresh: bool) -> Any:
            request = self._sky.jobs.queue_v2(
                refresh=refresh,
                skip_finished=False,
                all_users=False,
                fields=list(QUEUE_FIELDS),
                name_match=name_prefix,
            )
            return self._sky.get(request)

        try:
            result = ask(refresh=False)
        except self._sky.exceptions.ClusterNotUpError:  # the jobs controller stopped: start it to read
            result = ask(refresh=True)
        records = result[0] if isinstance(result, tuple) else result
        return list(records)

    def cancel(self, name: str, job_id: int | None = None) -> None:
        if job_id is not None:
            request = self._sky.jobs.cancel(job_ids=[job_id])
        else:
            request = self._sky.jobs.cancel(name=name)
        self._sky.get(request)

    def logs(self, name: str, job_id: int | None = None, tail: int | None = None) -> str:
        buffer = io.StringIO()
        self._sky.jobs.tail_logs(
            name=None if job_id is not None else name,
            job_id=job_id,
            follow=False,
            tail=tail,
            output_stream=buffer,
        )
        return buffer.getvalue()


def _job_id(value: Any) -> int | None:
    """The managed job's id in what a launch request returned: `(job_ids, handle)` (or `(job_id, handle)`)."""
    ids = value[0] if isinstance(value, tuple) and value else value
    if isinstance(ids, list):
        ids = ids[0] if ids else None
    return ids if isinstance(ids, int) and not isinstance(ids, bool) else None


def sky_client(sky: ModuleType) -> SkyClient:
    """The client that talks to SkyPilot's API server."""
    return _SkyClient(sky)


__all__ = [
    "EXTRA",
    "QUEUE_FIELDS",
    "LaunchOutcome",
    "LaunchState",
    "SkyClient",
    "import_sky",
    "one_line",
    "sky_client",
]
