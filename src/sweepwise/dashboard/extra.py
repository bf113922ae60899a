"""Whether the `dashboard` extra is installed, checked before any of its modules is imported."""

from __future__ import annotations

import importlib.util
import sys

from sweepwise.core.errors import ConfigError

# import name -> what the dashboard needs it for (pyproject.toml, extra `dashboard`)
REQUIRED = {
    "starlette": "the web app",
    "uvicorn": "the web server",
    "jinja2": "the pages",
    "plotly": "plotly.min.js, the plots",
    "sklearn": "parameter importance",
}
INSTALL = "pip install 'sweepwise[dashboard]'"


def missing_modules() -> list[str]:
    """The modules of the `dashboard` extra that cannot be imported here, in `REQUIRED` order."""
    return [name for name in REQUIRED if not _importable(name)]


def _importable(name: str) -> bool:
    if name in sys.modules:
        return sys.modules[name] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check_extra(command: str) -> None:
    """Raise unless every module of the `dashboard` extra is installed.

    Args:
        command: the command that needs it (`dashboard`, `report`), named in the message.

    Raises:
        ConfigError: one line naming what is missing and the `pip install` that brings it.
    """
    missing = missing_modules()
    if missing:
        raise ConfigError(
            command,
            f"needs the dashboard extra ({', '.join(missing)} not installed); run {INSTALL}",
        )


__all__ = ["INSTALL", "REQUIRED", "check_extra", "missing_modules"]
