"""The Ray dispatcher's checks: Ray imports, the configured cluster answers, its Jobs API, same version.

Nothing is started: an `address` is probed with a TCP connection and the dashboard's
`/api/version` (the Jobs API's server), never with `ray.init`, which would start a
local cluster when none answers.
"""

from __future__ import annotations

import importlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sweepwise.core.models import Check

EXTRA = 'pip install "sweepwise[ray]"'
CLIENT_PORT = 10001  # Ray Client's default (`ray://host`)
DASHBOARD_PORT = 8265  # the dashboard's default, which serves the Jobs API
_TIMEOUT = 5.0


def check_ray(runs_root: Path, options: Mapping[str, Any]) -> list[Check]:
    """Whether the Ray cluster the dispatcher's `address` option names can take jobs."""
    try:
        ray = importlib.import_module("ray")
    except ImportError as exc:
        return [
            Check(
                "import ray", False, str(exc).splitlines()[0] if str(exc) else "ImportError", f"run {EXTRA}"
            )
        ]
    version = str(getattr(ray, "__version__", "?"))
    checks = [Check("import ray", True, f"Ray {version}")]
    address = options.get("address")
    if address is None:
        return [*checks, Check("cluster", True, "no address: the dispatcher starts a local Ray cluster")]
    address = str(address)
    if address == "auto":
        try:
            services = importlib.import_module("ray._private.services")
            address = str(services.canonicalize_bootstrap_address("auto"))
        except Exception as exc:  # Ray says why in a ConnectionError; any failure means: none found
            fix = "start one (ray start --head), or set dispatcher.address to a running cluster's"
            return [*checks, Check("cluster reachable", False, f"address auto: {_first_line(exc)}", fix)]
    host, port, dashboard = _endpoints(address)
    reached = _connect(host, port)
    if reached is not None:
        fix = (
            f"start the cluster (ray start --head on {host}) or set dispatcher.address to a running "
            "cluster's (ray status on its head prints it)"
        )
        return [
            *checks,
            Check("cluster reachable", False, f"nothing answers at {host}:{port} ({reached})", fix),
        ]
    checks.append(Check("cluster reachable", True, f"{host}:{port} answers"))
    try:
        with urllib.request.urlopen(f"{dashboard}/api/version", timeout=_TIMEOUT) as response:
            info = json.loads(response.read())
    except (OSError, ValueError) as exc:
        fix = (
            f"start the head with its dashboard on port {DASHBOARD_PORT} (ray start --head "
            "--dashboard-host=0.0.0.0), or give dispatcher.address as the dashboard's URL (http://HOST:PORT)"
        )
        return [*checks, Check("Jobs API answers", False, f"{dashboard}: {_first_line(exc)}", fix)]
    cluster = str(info.get("ray_version", "?")) if isinstance(info, dict) else "?"
    checks.append(Check("Jobs API answers", True, f"{dashboard} (Ray {cluster})"))
    if cluster != version:
        fix = f'install the cluster\'s Ray here: pip install "ray=={cluster}"'
        return [
            *checks,
            Check("same Ray version", False, f"Ray {version} here, {cluster} on the cluster", fix),
        ]
    return [*checks, Check("same Ray version", True, f"Ray {version} here and on the cluster")]


def _endpoints(address: str) -> tuple[str, int, str]:
    """(host, port to probe, dashboard URL) of a Ray address: `ray://h:p`, `http://h:p` or a GCS `h:p`."""
    if "://" not in address:
        address = f"gcs://{address}"
    parts = urlsplit(address)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme in ("http", "https"):
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return host, port, f"{parts.scheme}://{parts.netloc}"
    default = CLIENT_PORT if parts.scheme == "ray" else 6379
    return host, parts.port or default, f"http://{host}:{DASHBOARD_PORT}"


def _connect(host: str, port: int) -> str | None:
    """None when a TCP connection to host:port opens, else why not."""
    try:
        with socket.create_connection((host, port), timeout=_TIMEOUT):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        text = str(exc.reason)
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["CLIENT_PORT", "DASHBOARD_PORT", "EXTRA", "check_ray"]
