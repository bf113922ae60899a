"""SLURM backend benchmark: trivial trials through sweepwise on SLURM against a bare sbatch loop.

One run measures, at the same width and polling interval:

1. sweepwise: `trials` trivial trials (a command that prints a `SWEEPWISE_RESULT` line and
   exits) run by the real CLI, `python -m sweepwise run spec.yaml`, with
   `dispatcher: {type: slurm, partition: debug, poll_interval: P}`, `max_parallel: width`, the
   `async_capped` scheduler and no eval; the wall time of the whole command;
2. the bare floor: a loop that keeps `width` `sbatch --parsable --wrap true` jobs in flight and
   polls `squeue` every P seconds until each has left it; the wall time for `trials` jobs.

It needs a SLURM that answers (`sudo .ci/start-slurm` starts a single-node one) and a partition
(`debug` here). `benchmarks/backends.py` calls `slurm_rows`; alone it prints the table:

    python benchmarks/_slurm_bench.py --trials 50 --width 4
    python benchmarks/_slurm_bench.py --trials 50 --width 4 --out benchmarks/results/slurm.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

TARGET = 1.2
"""sweepwise's per-trial time may be at most this many times the bare loop's (issue 17)."""

TRIVIAL = "print('SWEEPWISE_RESULT {\"score\": 1.0}')"


def _slurm(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def _cancel_named(prefix: str) -> None:
    """scancel every job SLURM still lists whose name starts with `prefix` (after a failed run)."""
    listed = _slurm("squeue", "--noheader", "--Format=JobID:|,Name:|")
    ids = [
        line.split("|")[0].strip()
        for line in listed.stdout.splitlines()
        if "|" in line and line.split("|")[1].strip().startswith(prefix)
    ]
    if ids:
        _slurm("scancel", *ids)


def sweepwise_on_slurm(work: Path, trials: int, width: int, partition: str, poll: float) -> float:
    """Wall seconds of `sweepwise run` for `trials` trivial trials on SLURM, `width` at a time."""
    name = f"slurmbench-{uuid.uuid4().hex[:8]}"
    spec = {
        "name": name,
        "max_parallel": width,
        "metric": "score",
        "goal": "maximize",
        "dispatcher": {"type": "slurm", "partition": partition, "poll_interval": poll},
        "scheduler": {"type": "async_capped", "max_trials": trials},
        "optimizer": {"type": "random", "seed": 0},
        "train": {"cmd": ["python", "-c", TRIVIAL]},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    env["SWEEPWISE_STORE"] = f"sqlite:///{work / 'sweepwise.db'}"
    command = [sys.executable, "-m", "sweepwise", "run", "spec.yaml", "--quiet"]
    started = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=3600)
    finally:
        wall = time.perf_counter() - started
        _cancel_named(f"{name}.")
    if result.returncode != 0:
        raise RuntimeError(f"sweepwise run failed ({result.returncode}): {result.stderr[-2000:]}")
    status = subprocess.run(
        [sys.executable, "-m", "sweepwise", "status", name, "--json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    done = [row for row in json.loads(status.stdout)["runs"] if row["status"] == "completed"]
    if len(done) != trials:
        raise RuntimeError(f"{len(done)} of {trials} sweepwise trials completed")
    return wall


def bare_sbatch_loop(work: Path, trials: int, width: int, partition: str, poll: float) -> float:
    """Wall seconds for `trials` `sbatch --wrap true` jobs, `width` in flight, polled every `poll` s."""
    name = f"barebench-{uuid.uuid4().hex[:8]}"
    submit = [
        "sbatch",
        "--parsable",
        f"--partition={partition}",
        f"--job-name={name}",
        f"--output={work / 'bare-%j.out'}",
        "--wrap",
        "true",
    ]
    in_flight: set[str] = set()
    submitted = finished = 0
    started = time.perf_counter()
    try:
        while finished < trials:
            while submitted < trials and len(in_flight) < width:
                result = _slurm(*submit)
                job_id = result.stdout.strip().split(";")[0]
                if result.returncode != 0 or not job_id.isdigit():
                    raise RuntimeError(f"sbatch failed: {result.stderr.strip()}")
                in_flight.add(job_id)
                submitted += 1
            time.sleep(poll)
            listed = _slurm("squeue", "--noheader", f"--jobs={','.join(sorted(in_flight))}", "--format=%i")
            if listed.returncode != 0 and "Invalid job id" not in listed.stderr:
                raise RuntimeError(f"squeue failed: {listed.stderr.strip()}")
            still = {line.strip() for line in listed.stdout.splitlines() if line.strip()}
            gone = in_flight - still
            finished += len(gone)
            in_flight -= gone
    finally:
        wall = time.perf_counter() - started
        _cancel_named(name)
    return wall


def slurm_rows(
    trials: int = 50, width: int = 4, *, partition: str = "debug", poll: float = 1.0
) -> list[dict[str, Any]]:
    """Measure sweepwise on SLURM against the bare sbatch loop; one row each.

    Args:
        trials: trials (sweepwise) and jobs (bare loop) to run.
        width: how many at a time (`max_parallel`; jobs in flight).
        partition: the SLURM partition both use.
        poll: seconds between two `squeue` calls, for both (the dispatcher's `poll_interval`).

    Returns:
        Two rows `{"section", "what", "figure", "wall_s", "per_trial_s"}`; the sweepwise one
        also has `ratio` (its per-trial time over the bare loop's) and `target` (1.2).

    Raises:
        RuntimeError: SLURM refused a job, or a sweepwise trial did not complete.
    """
    with tempfile.TemporaryDirectory(prefix="sweepwise-slurm-bench-", dir=Path.home()) as tmp:
        work = Path(tmp)  # under $HOME: the compute node must see it (shared filesystem)
        bare = bare_sbatch_loop(work, trials, width, partition, poll)
        ours = sweepwise_on_slurm(work, trials, width, partition, poll)
    ratio = ours / bare
    return [
        {
            "section": "slurm",
            "what": f"sweepwise on SLURM, {trials} trivial trials, {width} at a time, "
            f"squeue every {poll:g} s (`sweepwise run`, whole command)",
            "figure": f"{ours / trials:.3f} s/trial ({ours:.1f} s); sweepwise / bare = {ratio:.2f} "
            f"(target <= {TARGET})",
            "wall_s": ours,
            "per_trial_s": ours / trials,
            "ratio": ratio,
            "target": TARGET,
        },
        {
            "section": "slurm",
            "what": f"bare `sbatch --wrap true` loop, {trials} jobs, {width} in flight, "
            f"squeue every {poll:g} s",
            "figure": f"{bare / trials:.3f} s/trial ({bare:.1f} s)",
            "wall_s": bare,
            "per_trial_s": bare / trials,
        },
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=50, help="trials / jobs each (default 50)")
    parser.add_argument("--width", type=int, default=4, help="how many at a time (default 4)")
    parser.add_argument("--partition", default="debug", help="SLURM partition (default debug)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between squeue calls (default 1)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = slurm_rows(args.trials, args.width, partition=args.partition, poll=args.poll)
    print("| what | figure |\n| --- | --- |")
    for entry in rows:
        print(f"| {entry['what']} | {entry['figure']} |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if rows[0]["ratio"] <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["TARGET", "bare_sbatch_loop", "slurm_rows", "sweepwise_on_slurm"]
