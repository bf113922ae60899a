"""`SkyPilotDispatcher.diagnose`: SkyPilot imports, its API server answers, a cloud is enabled.

A local API server that is not running is no problem (SkyPilot starts it on first use),
and it is not started here: the clouds are then checked in this process, with the
checks that server would run on this machine (`sky check`). A remote server is asked.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import Check
from sweepwise.dispatchers._sky_client import EXTRA, import_sky, one_line

NO_CLOUD_FIX = (
    "give SkyPilot credentials for a cloud (e.g. aws configure, gcloud auth application-default login, "
    "or a kubeconfig for Kubernetes), then run sky check; sky check -v says what each cloud lacks"
)


def diagnose(runs_root: Path, options: Mapping[str, Any]) -> list[Check]:
    """The SkyPilot backend's checks (`runs_root` and `options` are not needed)."""
    try:
        sky = import_sky()
    except ConfigError as exc:
        return [Check("import sky", False, exc.message, f"run {EXTRA}")]
    checks = [Check("import sky", True, f"SkyPilot {getattr(sky, '__version__', '?')}")]
    from sky.server import common

    url = str(common.get_server_url())
    info = common.get_api_server_status(url)
    status = str(getattr(info.status, "value", info.status))
    if status == "healthy":
        checks.append(Check("API server answers", True, f"{url} (SkyPilot {info.version})"))
        ask = _ask_server
    elif status == "version_mismatch":
        fix = f'install the server\'s SkyPilot here (pip install "skypilot=={info.version}"), or restart it'
        detail = f"{url} runs SkyPilot {info.version}, API {info.api_version}"
        return [*checks, Check("API server answers", False, detail, fix)]
    elif common.is_api_server_local(url):
        detail = f"none runs at {url} yet; SkyPilot starts this local one on first use"
        checks.append(Check("API server answers", True, detail))
        ask = _check_here
    else:
        fix = f"start that server, or log in to a running one: sky api login -e URL (now {url})"
        return [*checks, Check("API server answers", False, f"{url} does not answer ({status})", fix)]
    try:
        enabled = ask(sky)
    except Exception as exc:  # SkyPilot's own errors are many; each is reported as one line
        return [*checks, Check("enabled clouds", False, f"sky check failed: {one_line(exc)}", NO_CLOUD_FIX)]
    if not enabled:
        return [*checks, Check("enabled clouds", False, "none is enabled (sky check)", NO_CLOUD_FIX)]
    return [*checks, Check("enabled clouds", True, ", ".join(sorted(enabled)))]


def _clouds(result: Any) -> set[str]:
    """The clouds `sky check` enabled: `{workspace: {cloud: [capability, ...]}}`."""
    if not isinstance(result, Mapping):
        return set()
    return {str(cloud) for clouds in result.values() if isinstance(clouds, Mapping) for cloud in clouds}


def _ask_server(sky: Any) -> set[str]:
    from sky.client import sdk

    return _clouds(sdk.get(sdk.check(infra_list=None, verbose=False)))


def _check_here(sky: Any) -> set[str]:
    check = importlib.import_module("sky.check")  # the module (`sky.check` may be shadowed)
    # It reports progress as it would to a client of the server: not for our output.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return _clouds(check.check_capabilities(quiet=True))


__all__ = ["NO_CLOUD_FIX", "diagnose"]
