"""A job's claim: the file created exclusively before a job is started, so that it starts once.

docs/design.md, "No duplicate start": `<run dir>/<job>.dispatch.json` is created with
`O_EXCL` before anything is started, and names the run, the job's files, the attempt, a
claim id, its creation time, the dispatcher process that made it and the experiment's
incarnation. A dispatcher that starts jobs elsewhere (SkyPilot) adds what it learns of
the job there (its request and job ids). A claim of another incarnation is never taken
as this experiment's; a claim whose job was never started is set aside (renamed, never
deleted blind) before the job is started again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from sweepwise.core.errors import DispatchError
from sweepwise.core.private import make_private_dirs
from sweepwise.runtime.supervise import write_json_atomic


def claimant() -> str:
    """Who makes claims in this process: `host:pid:nonce`."""
    return f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def new_claim(
    run_id: str, stem: str, attempt: int, *, claimant: str, incarnation: str | None, **fields: Any
) -> dict[str, Any]:
    """The record of a new claim on the job `stem` (`train`, `eval.2`...) of run `run_id`."""
    return {
        "run_id": run_id,
        "job": stem,
        "attempt": attempt,
        "claim_id": uuid.uuid4().hex,
        "claimed_at": time.time(),
        "claimant": claimant,
        "incarnation": incarnation,
        **fields,
    }


def create_claim(path: Path, record: dict[str, Any]) -> bool:
    """Create the claim `path` with `record`, exclusively (its run dir too, private).

    Returns:
        False when the claim exists: the job was claimed before, nothing was written.

    Raises:
        OSError: the claim could not be written (nothing is left behind).
    """
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(record))
    except OSError:
        path.unlink(missing_ok=True)
        raise
    return True


def read_claim(path: Path, incarnation: str | None) -> dict[str, Any] | None:
    """The claim's record; None when it is missing or unreadable (a write cut short).

    Raises:
        DispatchError: the claim is of another incarnation of the experiment (another
            store's, or an earlier experiment of the same name).
    """
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    theirs = record.get("incarnation")
    if incarnation is not None and theirs is not None and theirs != incarnation:
        raise DispatchError(
            f"{path} belongs to another experiment of the same name (another store, or one "
            "deleted since); use another runs_dir"
        )
    return record


def update_claim(path: Path, incarnation: str | None, **fields: Any) -> None:
    """Add `fields` to the claim, atomically.

    Raises:
        OSError: it could not be written.
        DispatchError: the claim is of another incarnation.
    """
    record = read_claim(path, incarnation) or {}
    record.update(fields)
    write_json_atomic(path, record)


def set_claim_aside(path: Path) -> None:
    """Rename a claim whose job was never started, so that the job can be claimed anew."""
    try:
        os.replace(path, path.with_name(f"{path.name}.void-{uuid.uuid4().hex[:8]}"))
    except FileNotFoundError:
        pass


__all__ = ["claimant", "create_claim", "new_claim", "read_claim", "set_claim_aside", "update_claim"]
