"""Data models shared by every part: jobs, statuses, runs and job events."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sweepwise.core.container import ContainerSpec
from sweepwise.core.records import Check, EventKind, JobEvent, JobTypes, Observation, RunInfo
from sweepwise.core.status import JobStatus


class ArgStyle(enum.StrEnum):
    """How hyperparameters are appended to a job's command."""

    KEY_VALUE = "key=value"
    DASHDASH = "--key value"
    TEMPLATE = "template"  # `{key}` placeholders inside the command; nothing appended


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class JobDefinition(BaseModel):
    """One job to run for one run: the single source of truth of what is launched.

    `args` are function/script arguments (training gets `run`/`group`, eval the
    artefact reference); `overrides` are config overrides, including the
    optimizer's suggestion. Dispatchers never invent arguments.
    """

    model_config = ConfigDict(extra="forbid", cache_strings="keys")

    run_id: str
    cmd: str | list[str]
    gpus: int = 0
    nodes: int = 1
    args: dict[str, Any] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)
    type: JobTypes = JobTypes.LAUNCH_TRAINING
    created_at: datetime = Field(default_factory=utcnow)
    metadata: dict[str, Any] = Field(default_factory=dict)
    arg_style: ArgStyle = ArgStyle.KEY_VALUE
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    attempt: int = Field(default=1, ge=1)
    timeout: float | None = None  # seconds the job may run; its supervisor stops it after that
    record_env: list[str] = Field(default_factory=list)  # env names whose values may be written down
    container: ContainerSpec | None = None  # the image and engine the command runs in

    @property
    def params(self) -> dict[str, Any]:
        """Everything the job receives as hyperparameters: args, then overrides."""
        return {**self.args, **self.overrides}

    def recorded(self) -> JobDefinition:
        """The job as it may be written to disk: env values not in `record_env` are `NOT_RECORDED`."""
        env = redact_env(self.env, self.record_env)
        return self if env == self.env else self.model_copy(update={"env": env})

    @property
    def unrecorded_env(self) -> list[str]:
        """The env names whose values were not recorded (those to fill in before the job runs again)."""
        return [name for name, value in self.env.items() if value == NOT_RECORDED]


NOT_RECORDED = "<not recorded>"
"""What the store and `adaptive_config.json` hold instead of an env value (README, `train`)."""


def redact_env(env: dict[str, str], record_env: list[str]) -> dict[str, str]:
    """`env` with the value of every name not in `record_env` (`"*"`: all) replaced by `NOT_RECORDED`."""
    if "*" in record_env:
        return dict(env)
    keep = set(record_env)
    return {name: value if name in keep else NOT_RECORDED for name, value in env.items()}


__all__ = [
    "NOT_RECORDED",
    "ArgStyle",
    "Check",
    "EventKind",
    "JobDefinition",
    "JobEvent",
    "JobStatus",
    "JobTypes",
    "Observation",
    "RunInfo",
    "redact_env",
    "utcnow",
]
