"""Turning a spec's pydantic ValidationError into a one-line ConfigError that names the field."""

from __future__ import annotations

from pydantic import ValidationError

from sweepwise.core.errors import ConfigError

_FIELDS = "distribution, min, max, mean, scale, choices, values, log, when"


def config_error(path: str, exc: ValidationError) -> ConfigError:
    """The first problem of a spec's ValidationError, as a one-line ConfigError."""
    error = exc.errors()[0]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):
        field = f"{path}.{cause.field}" if cause.field else path
        return ConfigError(field, cause.message)
    loc = ".".join(str(part) for part in error["loc"])
    field = f"{path}.{loc}" if loc else path
    if error["type"] == "extra_forbidden":
        message = f"unknown field {error['loc'][-1]!r}; valid fields are: {_FIELDS}"
    elif error["type"].startswith("float"):
        message = f"must be a number (got {error['input']!r})"
    elif error["type"] == "model_type":
        message = f"expected a mapping with 'distribution' or 'choices', got {error['input']!r}"
    else:
        message = f"{error['msg']} (got {error['input']!r})"
    return ConfigError(field, " ".join(message.split()))


__all__ = ["config_error"]
