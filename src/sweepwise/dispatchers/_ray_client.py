"""The one place sweepwise calls Ray's Jobs API: submit, job info, stop, logs.

`RayJobs` wraps `ray.job_submission.JobSubmissionClient` (HTTP to the cluster's
dashboard) with the few calls the Ray dispatcher makes, each answering in sweepwise's
terms: a job the cluster does not know is `None` (or False), a submission id already
taken is `SubmissionTaken`, anything else a Ray or network error is raised as it came.
"""

from __future__ import annotations

import logging
from typing import Any

from sweepwise.core.errors import ConfigError

EXTRA = 'pip install "sweepwise[ray]"'
_NOT_FOUND = "status code 404"
_TAKEN = "already exists"

logger = logging.getLogger(__name__)


class SubmissionTaken(Exception):
    """Ray refused a submission because a job with its submission id exists."""


def import_jobs_api() -> Any:
    """`ray.job_submission` (Ray's Jobs API client).

    Raises:
        ConfigError: Ray (with its `default` extra, which brings the Jobs API client) is
            not installed; one line naming the extra.
    """
    try:
        from ray import job_submission
    except ImportError as exc:
        if exc.name in ("ray", "ray.job_submission"):
            raise ConfigError("dispatcher", f"Ray is not installed: run {EXTRA}") from None
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError("dispatcher", f"Ray's Jobs API does not import ({cause}): run {EXTRA}") from None
    return job_submission


def one_line(exc: BaseException) -> str:
    """An exception as one line: its last meaningful line of text (Ray puts tracebacks first)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip() not in ("", ".")]
    if not lines:
        return type(exc).__name__
    first = lines[0]
    if first.startswith("Request failed with status code") and len(lines) > 1:
        return f"{first.split(':')[0]}: {lines[-1]}"  # the server's own error, not its traceback
    return first


class RayJobs:
    """The Ray dispatcher's calls into a cluster's Jobs API.

    Args:
        client: a `JobSubmissionClient` connected to the cluster.
        address: the dashboard's URL it talks to (named in messages).
    """

    def __init__(self, client: Any, address: str) -> None:
        self._client = client
        self.address = address

    def submit(self, submission_id: str, **request: Any) -> None:
        """Submit a job under `submission_id` (`request`: `submit_job`'s other keywords).

        Raises:
            SubmissionTaken: a job with this submission id exists on the cluster.
            Exception: Ray's or the network's error, as raised.
        """
        try:
            self._client.submit_job(submission_id=submission_id, **request)
        except RuntimeError as exc:
            if _TAKEN in str(exc) and submission_id in str(exc):
                raise SubmissionTaken(submission_id) from None
            raise

    def info(self, submission_id: str) -> Any | None:
        """The job's `JobDetails`; None when the cluster has no such job."""
        try:
            return self._client.get_job_info(submission_id)
        except RuntimeError as exc:
            if _NOT_FOUND in str(exc):
                return None
            raise

    def stop(self, submission_id: str) -> bool:
        """Ask Ray to stop the job (SIGTERM to its processes, SIGKILL 3 s later).

        Returns:
            False when the job had ended or is unknown to the cluster.
        """
        try:
            return bool(self._client.stop_job(submission_id))
        except RuntimeError as exc:
            if _NOT_FOUND in str(exc):
                return False
            raise

    def logs(self, submission_id: str) -> str | None:
        """The job's whole log (its entrypoint's stdout and stderr); None for an unknown job."""
        try:
            return str(self._client.get_job_logs(submission_id))
        except RuntimeError as exc:
            if _NOT_FOUND in str(exc):
                return None
            raise

    def submission_ids(self) -> list[str]:
        """The submission ids of every job the cluster knows (`list_jobs`), in its order."""
        return [str(job.submission_id) for job in self._client.list_jobs() if job.submission_id]


def connect(address: str | None, dashboard_address: str | None = None) -> RayJobs:
    """A `RayJobs` for the cluster at `dashboard_address`, else `address`, else a local one.

    Args:
        address: a running cluster: `auto` (the one `ray start` started on this machine),
            its GCS address `host:6379`, a Ray Client address `ray://host:10001`, or its
            dashboard's URL `http://host:8265`. None: the local running cluster, else a new
            one started with `ray.init()` in this process (it ends with this process).
        dashboard_address: the dashboard's URL, when it cannot be found from `address`
            (a dashboard behind a proxy).

    Raises:
        ConfigError: Ray is not installed, or the cluster cannot be reached.
    """
    jobs = import_jobs_api()
    target = dashboard_address or address
    field = "dispatcher.dashboard_address" if dashboard_address else "dispatcher.address"
    if target is None:
        try:
            return _client(jobs, None)
        except ConnectionError as exc:  # no running cluster on this machine: start one here
            logger.info("no running Ray cluster found (%s); starting one in this process", one_line(exc))
            try:
                target = _start_local_cluster()
            except ConfigError:
                raise
            except Exception as start_exc:  # whatever ray.init raises
                raise ConfigError(
                    "dispatcher",
                    f"no Ray cluster runs here and ray.init() failed ({one_line(start_exc)}); start one "
                    "(ray start --head) and set dispatcher.address",
                ) from None
            field = "dispatcher"
    try:
        return _client(jobs, target)
    except Exception as exc:  # Ray raises ConnectionError, ValueError, RuntimeError...
        raise ConfigError(
            field,
            f"cannot reach the Ray cluster's Jobs API at {target!r} ({one_line(exc)}); start the "
            "cluster (ray start --head) or fix the address",
        ) from None


def _client(jobs: Any, address: str | None) -> RayJobs:
    client = jobs.JobSubmissionClient(address)
    return RayJobs(client, str(getattr(client, "_address", address)))


def _start_local_cluster() -> str:
    """Start a Ray cluster in this process (`ray.init()`); its dashboard's URL."""
    import ray

    context = ray.init(include_dashboard=True, configure_logging=False)
    url = getattr(context, "dashboard_url", None) or ""
    if not url:
        raise ConfigError("dispatcher", f"the Ray cluster started here has no dashboard: run {EXTRA}")
    return url if "://" in url else f"http://{url}"


__all__ = ["EXTRA", "RayJobs", "SubmissionTaken", "connect", "import_jobs_api", "one_line"]
