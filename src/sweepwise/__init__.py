"""sweepwise: adaptive experiments that never lose or duplicate a trial.

Public names are loaded lazily, so `import sweepwise` stays cheap for jobs and
for commands that need only a small part of the package.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "JobDefinition": "sweepwise.models",
    "JobEvent": "sweepwise.models",
    "JobStatus": "sweepwise.models",
    "JobTypes": "sweepwise.models",
    "Observation": "sweepwise.models",
    "RunInfo": "sweepwise.models",
    "report": "sweepwise.runtime.report",
    "report_result": "sweepwise.runtime.report",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sweepwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
