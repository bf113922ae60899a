"""sweepwise: adaptive experiments that never lose or duplicate a trial.

Public names are loaded lazily, so `import sweepwise` stays cheap for jobs and
for commands that need only a small part of the package.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "AdaptiveController": "sweepwise.engine.controller",
    "ControllerHooks": "sweepwise.engine.controller",
    "ControllerSettings": "sweepwise.engine.controller",
    "Experiment": "sweepwise.app.experiment",
    "ExperimentSpec": "sweepwise.app.config",
    "JobDefinition": "sweepwise.core.models",
    "JobEvent": "sweepwise.core.models",
    "JobStatus": "sweepwise.core.models",
    "JobTypes": "sweepwise.core.models",
    "Observation": "sweepwise.core.models",
    "RetryPolicy": "sweepwise.core.lifecycle",
    "RunInfo": "sweepwise.core.models",
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
