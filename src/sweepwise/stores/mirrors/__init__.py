"""Mirrors: copies of an experiment's runs in MLflow or W&B, wrapped around the store of record.

See docs/stores.md, "Mirrors". `build_mirror` turns a spec's `mirror:` into a target;
`mirrored` wraps a store with it.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import RunInfo
from sweepwise.core.protocols import ExperimentStore
from sweepwise.stores.mirrors._target import MirrorTarget
from sweepwise.stores.mirrors._worker import MirrorWorker, marker_key
from sweepwise.stores.mirrors._wrapper import MirroredStore

_OPTIONS = {
    "mlflow": ("mlflow", {"tracking_uri", "experiment_name", "flush_timeout"}),
    "wandb": ("wandb", {"project", "entity", "mode", "dir", "flush_timeout"}),
}
"""Mirror type -> (the module and extra it needs, its options)."""


DEFAULT_FLUSH_TIMEOUT = 30.0
"""Seconds a sweep's end waits for its mirror's last runs (`mirror: {flush_timeout: ...}`)."""


def check_mirror(value: Any) -> dict[str, Any] | None:
    """Check a spec's `mirror:` (a type name or `{type: ..., option: ...}`) and that its package is there.

    Returns:
        The mirror as a dict with `type`, or None for no mirror.

    Raises:
        ConfigError: an unknown type or option, a missing `project`, or the package missing.
    """
    if value is None:
        return None
    spec = {"type": value} if isinstance(value, str) else dict(value) if isinstance(value, dict) else None
    if spec is None:
        raise ConfigError("mirror", f"must be mlflow, wandb or {{type: ..., ...}}, not {value!r}")
    kind = spec.get("type")
    if kind not in _OPTIONS:
        raise ConfigError("mirror.type", f"unknown mirror {kind!r}; use mlflow or wandb")
    module, options = _OPTIONS[kind]
    unknown = sorted(set(spec) - options - {"type"})
    if unknown:
        raise ConfigError(
            f"mirror.{unknown[0]}", f"unknown option; {kind} takes {', '.join(sorted(options))}"
        )
    if kind == "wandb" and not spec.get("project"):
        raise ConfigError("mirror.project", "is required for a wandb mirror; add project: NAME")
    if kind == "wandb" and spec.get("mode") not in (None, "online", "offline"):
        raise ConfigError("mirror.mode", f"must be online or offline, not {spec['mode']!r}")
    flush = spec.get("flush_timeout", DEFAULT_FLUSH_TIMEOUT)
    if isinstance(flush, bool) or not isinstance(flush, int | float) or not 0 <= flush < float("inf"):
        raise ConfigError("mirror.flush_timeout", f"must be a number of seconds >= 0, not {flush!r}")
    if not _importable(module):
        raise ConfigError("mirror", f'needs the {module} package; pip install "sweepwise[{kind}]"')
    return spec


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or a module that was blocked
        return False


def build_mirror(spec: dict[str, Any]) -> MirrorTarget:
    """The target a checked `mirror:` spec (see `check_mirror`) names."""
    options = {k: v for k, v in spec.items() if k not in ("type", "flush_timeout")}
    if spec["type"] == "mlflow":
        from sweepwise.stores.mirrors.mlflow import MlflowMirror

        return MlflowMirror(**options)
    from sweepwise.stores.mirrors.wandb import WandbMirror

    return WandbMirror(**options)


def mirrored(store: ExperimentStore, spec: Any, experiment: str) -> ExperimentStore:
    """`store` in a `MirroredStore` when `spec` names a mirror and it is not wrapped yet, else `store`."""
    checked = check_mirror(spec)
    if checked is None or isinstance(store, MirroredStore):
        return store
    flush = float(checked.get("flush_timeout", DEFAULT_FLUSH_TIMEOUT))
    return MirroredStore(store, build_mirror(checked), experiment, flush_timeout=flush)


def mirror_status(reader: Any, experiment: str, runs: list[RunInfo] | None = None) -> list[dict[str, Any]]:
    """The experiment's mirrors as `sweepwise status` shows them: target, runs behind, last error.

    Args:
        reader: the store (anything with `load_state` and `fetch_runs`); readers without
            `load_state` show no mirrors.
        experiment: the experiment's name.
        runs: the experiment's runs, when already read.
    """
    load = getattr(reader, "load_state", None)
    state = load(marker_key(experiment)) if load is not None else None
    rows: list[dict[str, Any]] = []
    if state and runs is None:
        runs = reader.fetch_runs({"group": experiment})
    for name, marker in sorted((state or {}).items()):
        seq = int(marker.get("seq", 0)) if isinstance(marker, dict) else 0
        behind = sum(1 for run in runs or [] if run.seq > seq)
        error = marker.get("last_error") if isinstance(marker, dict) else None
        rows.append({"target": name, "seq": seq, "runs_behind": behind, "last_error": error})
    return rows


__all__ = [
    "DEFAULT_FLUSH_TIMEOUT",
    "MirrorTarget",
    "MirrorWorker",
    "MirroredStore",
    "build_mirror",
    "check_mirror",
    "marker_key",
    "mirror_status",
    "mirrored",
]
