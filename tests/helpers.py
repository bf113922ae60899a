"""Shared test helpers: runs in a given status, and an optimizer that records its calls."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sweepwise.core import keys
from sweepwise.core.models import JobStatus, Observation, RunInfo

_FLAGS = {
    JobStatus.PENDING: {},
    JobStatus.IN_TRAINING: {"has_started_training": True},
    JobStatus.TRAINING_DONE_NO_EVAL: {"has_started_training": True, "has_completed_training": True},
    JobStatus.IN_EVAL: {
        "has_started_training": True,
        "has_completed_training": True,
        "has_started_eval": True,
    },
    JobStatus.COMPLETED: {
        "has_started_training": True,
        "has_completed_training": True,
        "has_started_eval": True,
        "has_been_evaluated": True,
    },
    JobStatus.FAILED: {"has_started_training": True, "has_failed": True},
    JobStatus.STALE: {"has_started_training": True, "is_stale": True},
    JobStatus.CANCELLED: {"is_cancelled": True},
}


def make_run(run_id: str, status: JobStatus, score: float | None = None, **suggestion: Any) -> RunInfo:
    """A run whose flags give `status`, with an optional score and suggestion."""
    summary: dict[str, Any] = {keys.OBSERVATION_SUGGESTION: suggestion}
    if score is not None:
        summary[keys.OBSERVATION_SCORE] = score
        summary[keys.OBSERVATION_COST] = 1.0
    run = RunInfo(run_id=run_id, summary=summary, runtime=2.0, **_FLAGS[status])
    assert run.status is status
    return run


class RecordingOptimizer:
    """An `Optimizer` that returns x=0,1,2... and records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Observation], int]] = []
        self._next = 0

    def suggest(
        self,
        observations: list[Observation],
        n_suggestions: int = 1,
        pending: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        self.calls.append((list(observations), n_suggestions))
        out = [{"x": self._next + i} for i in range(n_suggestions)]
        self._next += n_suggestions
        return out


def wandb_records(path: Path, timeout: float = 30.0) -> list[Any]:
    """The records of a finished run's `.wandb` file, once its `exit` record is written (W&B's
    service may still be writing it when `finish()` returns, on a busy machine)."""
    deadline = time.monotonic() + timeout
    while True:
        records = _wandb_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def _wandb_records(path: Path) -> list[Any]:
    """The records of a `.wandb` file: W&B's 7-byte header, then LevelDB-log framed protobufs."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, chunks, pending = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if left < 7 or (length == 0 and kind == 0):  # the end of a block is padding
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:  # FULL
            chunks.append(chunk)
        elif kind == 2:  # FIRST
            pending = chunk
        elif kind == 3:  # MIDDLE
            pending += chunk
        elif kind == 4:  # LAST
            chunks.append(pending + chunk)
    records = []
    for chunk in chunks:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(chunk)
        records.append(record)
    return records
