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

A dispatcher whose jobs run where the controller's files cannot be seen (SkyPilot) has no
token to hand over: it claims with `create_claim`, adds what the engine tells it of the
job (`update_claim`), and sets aside a claim whose job the engine never heard of
(`set_claim_aside`) before it starts the job again.
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
from sweepwise.core.models import JobDefinition, JobTypes
from sweepwise.core.private import make_private_dirs
from sweepwise.dispatchers.launch import LaunchPlan, write_job_files
from sweepwise.runtime import DISPATCH, STATUS, job_file, parse_stem
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


# -- claims without a token (engines that cannot see the controller's files) ----------


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


def owned_attempt(dispatch_id: str, id_run: str, stem: str, run_id: str, job_type: JobTypes) -> int:
    """The attempt of a dispatch id's job, checked to be run `run_id`'s job of `job_type`.

    Args:
        dispatch_id: the id, as given (named in the error).
        id_run: the run id parsed from it.
        stem: the job stem parsed from it (`train`, `eval.2`, ...).
        run_id: the run the caller means.
        job_type: the job type the caller means.

    Raises:
        DispatchError: the id belongs to another run or job type.
    """
    parsed = parse_stem(stem)
    if id_run != run_id or parsed is None or parsed[0] != job_type.short:
        raise DispatchError(f"dispatch id {dispatch_id!r} is not of run {run_id}'s {job_type.short} job")
    return parsed[1]


__all__ = [
    "Claim",
    "check_incarnation",
    "claimant",
    "create_claim",
    "make_claim",
    "new_claim",
    "owned_attempt",
    "read_claim",
    "set_claim_aside",
    "settle_claim",
    "token_path",
    "update_claim",
]
