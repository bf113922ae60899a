"""The claim protocol of every dispatcher that runs sweepwise's supervisor.

See docs/design.md, "No duplicate start".

A job's claim, `<job>.dispatch.json`, is created exclusively (`O_EXCL`) before anything
starts; it is the idempotency key of (run, job, attempt). Beside it the dispatcher writes
a token, `<job>.dispatch.json.<claim id>.token`: the job's first status ("starting").
Whatever supervises the job — the local job host, a per-job supervisor, a supervisor
inside a SLURM or Ray job — takes the job by renaming the token to the job's status file
(`sweepwise.runtime.supervise.accept_claim`) and starts nothing when the token is gone.
A restarted controller that finds a claim with no status takes it over by unlinking the
token: the rename and the unlink are atomic and exclusive, so exactly one succeeds.

Used by `LocalDispatcher` and by `EngineDispatcher` (`sweepwise.dispatchers._engine`).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepwise.core.errors import DispatchError, RunFilesError
from sweepwise.core.models import JobDefinition
from sweepwise.core.private import make_private_dirs
from sweepwise.dispatchers.launch import LaunchPlan, write_job_files
from sweepwise.runtime import DISPATCH, STATUS, job_file
from sweepwise.runtime.results import read_status
from sweepwise.runtime.supervise import write_json_atomic

logger = logging.getLogger(__name__)


def token_path(claim: Path, claim_id: str) -> Path:
    """Where a claim's token waits to be taken by the job's supervisor (see `accept_claim`)."""
    return claim.with_name(f"{claim.name}.{claim_id}.token")


@dataclass(frozen=True, slots=True)
class Claim:
    """A job's claim, made by this dispatcher: its file, what it records, and its token."""

    path: Path
    record: dict[str, Any]
    token: Path

    def void(self) -> bool:
        """Make sure nothing ever starts from this claim: unlink the token, then the claim.

        Returns:
            True when voided; False when a supervisor had already taken the token (the job
            is then found by its status, and the claim stays).
        """
        try:
            self.token.unlink()
        except FileNotFoundError:
            return False
        self.path.unlink(missing_ok=True)
        return True


def make_claim(
    plan: LaunchPlan,
    job: JobDefinition,
    fields: dict[str, Any],
    token_status: Callable[[dict[str, Any]], dict[str, Any]],
) -> Claim | None:
    """Claim `job` exclusively, then write its files and its token.

    Args:
        plan: the job's launch plan (its run dir and file names).
        job: the job (its hyperparameters are written to the run dir).
        fields: what the dispatcher records in the claim besides the run id, the job's
            file name, the attempt, the claim id and the claim's time.
        token_status: given the claim's record, the job's first status (the token).

    Returns:
        The claim; None when the job was claimed before (nothing is written then).

    Raises:
        RunFilesError: the claim, the job's files or the token cannot be written (the
            claim is removed again).
    """
    claim = Path(job_file(plan.run_dir, plan.job_name, DISPATCH))
    try:
        make_private_dirs(plan.run_dir)
        fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # started before (the claim is the idempotency key)
        return None
    claim_id = uuid.uuid4().hex
    record: dict[str, Any] = {
        "run_id": job.run_id,
        "job": plan.job_name,
        "attempt": job.attempt,
        "claim_id": claim_id,
        "claimed_at": time.time(),
        **fields,
    }
    token = token_path(claim, claim_id)
    token_written = False
    try:
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(record))
            write_job_files(plan, job, make_run_dir=False)  # made above, for the claim
            # The token: the job's first status, taken (renamed) by its supervisor alone.
            write_json_atomic(token, token_status(record))
            token_written = True
        except OSError as exc:
            what = f"run {job.run_id}: cannot write the {plan.job_name} job's files"
            raise RunFilesError(what, exc) from exc
    except BaseException:
        if token_written:
            token.unlink(missing_ok=True)
        claim.unlink(missing_ok=True)
        raise
    return Claim(claim, record, token)


def check_incarnation(
    source: dict[str, Any] | None,
    incarnation: str | None,
    run_id: str,
    stem: str,
    run_dir: Path,
    experiment: str,
) -> None:
    """Refuse a claim or status of another incarnation (docs/design.md, "Identity of a run directory").

    Raises:
        DispatchError: `source` names an incarnation other than `incarnation`.
    """
    theirs = (source or {}).get("incarnation")
    if incarnation is not None and theirs is not None and theirs != incarnation:
        raise DispatchError(
            f"run {run_id}: {stem} files in {run_dir} belong to another experiment "
            f"named {experiment!r} (another store, or one deleted since); use another runs_dir"
        )


def settle_claim(
    run_id: str,
    stem: str,
    claim: Path,
    record: dict[str, Any] | None,
    dispatch_id_of: Callable[[dict[str, Any] | None], str | None],
) -> str | None:
    """A claim with no status: take it over unless a supervisor has taken its token meanwhile.

    Voiding the token (an unlink) and a supervisor taking it (a rename) are atomic
    and exclusive: exactly one succeeds, whatever the timing of a slow job host.

    Args:
        run_id: the run.
        stem: the job's file name (`train`, `eval.2`).
        claim: the claim file.
        record: what the claim holds (None when unreadable: every token beside it is voided).
        dispatch_id_of: the dispatch id a status names (None when it names no supervisor).

    Returns:
        The dispatch id when a supervisor took the job; None when the claim was taken over
        (set aside, renamed, never deleted blind) and the job may be dispatched anew.
    """
    claim_id = (record or {}).get("claim_id")
    tokens = (
        [token_path(claim, claim_id)]
        if isinstance(claim_id, str)
        else list(claim.parent.glob(f"{claim.name}.*.token"))  # an unreadable claim's
    )
    status_path = Path(job_file(claim.parent, stem, STATUS))
    for token in tokens:
        try:
            token.unlink()
        except FileNotFoundError:
            found = dispatch_id_of(read_status(status_path))
            if found is not None:
                return found
    found = dispatch_id_of(read_status(status_path))
    if found is not None:
        return found
    logger.info("run %s: the %s job was claimed but never started; it will be started now", run_id, stem)
    try:
        os.replace(claim, claim.with_name(f"{claim.name}.void-{uuid.uuid4().hex[:8]}"))
    except FileNotFoundError:
        pass
    return None


__all__ = ["Claim", "check_incarnation", "make_claim", "settle_claim", "token_path"]
