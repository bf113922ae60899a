"""The SLURM dispatcher's checks: its commands, the controller, a partition, and the runs dir seen from a job.

The last check submits one tiny batch job (`sbatch --wrap 'touch FILE'`) that writes a file
in the runs dir, and waits for that file: it is the only way to know that the compute
nodes see the runs dir, where the dispatcher's jobs leave their status and results.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweepwise.app.doctor._probe import nearest_existing, on_path, run, writable
from sweepwise.core.models import Check

COMMANDS = ("sbatch", "squeue", "scancel", "sinfo")
JOB_DEADLINE = 60.0
"""Seconds the test job may take, queued and running, before the check gives up on it."""
_STEP = 0.25


def check_slurm(runs_root: Path, options: Mapping[str, Any]) -> list[Check]:
    """Whether sweepwise can run jobs through this machine's SLURM (`partition`, `account` from `options`)."""
    found = on_path(
        COMMANDS, "install SLURM's client commands (Debian: apt install slurm-client) and put them on PATH"
    )
    if not found.ok:
        return [found]
    checks = [found]
    code, text = run(["sinfo", "--noheader", "--format=%P|%a"])
    if code != 0:
        fix = "start slurmctld (and munge), or point SLURM_CONF at your cluster's slurm.conf"
        return [*checks, Check("sinfo answers", False, text or f"exit code {code}", fix)]
    partitions: dict[str, str] = {}  # name (the default's `*` removed) -> `up`, `down`, ...
    for line in text.splitlines():
        name, _, avail = line.strip().partition("|")
        if name:
            partitions[name.rstrip("*")] = avail
    checks.append(Check("sinfo answers", True, f"partitions: {', '.join(partitions) or 'none'}"))
    partition = _partition_up(partitions, options.get("partition"))
    local = writable(runs_root)
    checks += [partition, local]
    if partition.ok and local.ok:  # else the test job could not run, or not write
        checks.append(_writable_from_a_job(runs_root, options))
    return checks


def _partition_up(partitions: Mapping[str, str], wanted: Any) -> Check:
    up = [name for name, avail in partitions.items() if avail == "up"]
    if wanted is not None:
        state = partitions.get(str(wanted))
        if state == "up":
            return Check("partition up", True, f"partition {wanted} is up")
        detail = (
            f"partition {wanted} is {state}"
            if state
            else f"no partition {wanted} (there are: {', '.join(partitions)})"
        )
        fix = f"scontrol update PartitionName={wanted} State=UP, or set dispatcher.partition to one of: " + (
            ", ".join(up) or "none is up"
        )
        return Check("partition up", False, detail, fix)
    if up:
        return Check("partition up", True, f"up: {', '.join(up)}")
    return Check(
        "partition up",
        False,
        f"no partition is up ({', '.join(f'{n} {a}' for n, a in partitions.items()) or 'none defined'})",
        "bring one up (scontrol update PartitionName=NAME State=UP), or define one in slurm.conf",
    )


def _writable_from_a_job(runs_root: Path, options: Mapping[str, Any]) -> Check:
    """Submit a job that touches a file in the runs dir; wait for the file, the job's end, or the deadline."""
    name = "runs dir writable from a job"
    probe_dir = Path(tempfile.mkdtemp(prefix=".sweepwise-doctor-", dir=nearest_existing(runs_root)))
    target = probe_dir / "written-by-job"
    argv = ["sbatch", "--parsable", "--job-name=sweepwise-doctor", "--output=/dev/null", "--time=1"]
    argv += [f"--{key}={options[key]}" for key in ("partition", "account") if options.get(key) is not None]
    argv += [f"--chdir={probe_dir}", "--wrap", f"touch {shlex.quote(str(target))}"]
    try:
        code, text = run(argv)
        if code != 0:
            return Check(
                name,
                False,
                f"sbatch refused the test job: {text}",
                "fix what sbatch says, then run doctor again",
            )
        job_id = text.strip().split(";")[0]
        return _wait_for(job_id, target, probe_dir, name)
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


def _wait_for(job_id: str, target: Path, probe_dir: Path, name: str) -> Check:
    started = time.monotonic()
    state, reason = "PENDING", ""
    while time.monotonic() - started < JOB_DEADLINE:
        if target.exists():
            return Check(name, True, f"test job {job_id} wrote in {probe_dir.parent}")
        code, text = run(["squeue", "--noheader", f"--jobs={job_id}", "--format=%T|%r"])
        if code == 0 and not text.strip() and not target.exists():  # ended (squeue forgets it)
            return Check(
                name,
                False,
                f"test job {job_id} ended without writing in {probe_dir.parent}",
                "put runs_dir on a file system the compute nodes mount at the same path (NFS, Lustre, ...)",
            )
        if code == 0:
            state, _, reason = text.strip().partition("|")
        time.sleep(_STEP)
    run(["scancel", job_id])
    if target.exists():
        return Check(name, True, f"test job {job_id} wrote in {probe_dir.parent}")
    if state == "PENDING":
        return Check(
            name,
            False,
            f"the queue is busy: test job {job_id} was still pending ({reason or 'no reason given'}) "
            f"after {JOB_DEADLINE:g} s, so this could not be checked; it was cancelled",
            "run doctor again when the queue has room, or set dispatcher.partition to one with idle nodes",
        )
    return Check(
        name,
        False,
        f"test job {job_id} was {state} for {JOB_DEADLINE:g} s without writing in {probe_dir.parent}; "
        "cancelled",
        "check the node's log (scontrol show job, slurmd.log) and that the nodes mount runs_dir",
    )


__all__ = ["COMMANDS", "JOB_DEADLINE", "check_slurm"]
