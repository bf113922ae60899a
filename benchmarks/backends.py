"""Backends benchmark: sweepwise's jobs on a Ray cluster, beside Ray Tune on the same cluster.

One run starts its own local Ray cluster (`ray start --head` on 127.0.0.1, 4 CPUs, stopped
at the end by its own processes' ids) and prints one table:

1. trivial trials: `n` trials whose job prints its result and exits, through sweepwise's
   Ray dispatcher with each job a Ray task (`mode: task`: the experiment's supervisor
   actor submits it; the task runs the job's own process), at the cluster's width,
   against Ray Tune (`tune.Tuner` with its default settings, a function trainable that
   reports at once) on the same cluster; per-trial wall time for each. Also fewer trials
   with each job a Ray job (`mode: job`, the Jobs API), beside the same script as bare Ray
   jobs (no claim, store or controller): the floor under that mode;
2. width: 100 jobs sleeping 1 s, 8 at a time, as Ray tasks (each reserving half a CPU,
   so that 8 fit on the 4-CPU cluster), against the ideal 100 / 8 x 1 s. A sweep of 16
   trivial jobs 8 at a time runs first, so that the cluster has 8 warm workers, as a
   cluster that has run a sweep has (its time is shown: Ray starting 8 worker processes
   on this machine);
3. SLURM (unless `--no-slurm`): 50 trivial trials through sweepwise's SLURM dispatcher against
   a bare `sbatch --wrap true` loop at the same width (`_slurm_bench.slurm_rows`; needs the
   running SLURM that `.ci/start-slurm` starts).

    python benchmarks/backends.py            # about ten minutes on 2 cores
    python benchmarks/backends.py --quick    # smaller counts, for a smoke test

Needs `pip install -e '.[ray,bench]'` (Ray's Jobs API client and Ray Tune).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from orchestration import SLEEPER, TRIVIAL, sweepwise_processes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from ray_cluster import LocalRayCluster  # noqa: E402  (the tests' throwaway cluster)

ROWS: list[tuple[str, str, str]] = []  # (section, what, figure)
CLUSTER_CPUS = 4


def row(section: str, what: str, figure: str) -> None:
    ROWS.append((section, what, figure))
    print(f"  {what}: {figure}", file=sys.stderr, flush=True)


def ray_tune_on(cluster: LocalRayCluster, n: int) -> float | None:
    """Wall seconds of `tuner.fit()` for `n` trivial function trials, Tune's defaults, on `cluster`.

    None when Ray Tune is not installed (`pip install -e '.[bench]'`).
    """
    import ray

    if ray.is_initialized():  # joined by sweepwise's tasks: Tune joins the cluster its own way
        ray.shutdown()
    try:
        from ray import tune
    except ImportError as exc:
        print(f"  Ray Tune left out: {str(exc).splitlines()[0]}", file=sys.stderr)
        return None

    def trainable(config: dict[str, float]) -> None:
        # Nested, so cloudpickle ships it by value: workers need not import this module.
        tune.report({"score": 1.0})

    ray.init(address=cluster.gcs_address, logging_level=logging.WARNING, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="sweepwise-tune-") as storage, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tuner = tune.Tuner(
                trainable,
                param_space={"x": tune.uniform(0, 1)},
                tune_config=tune.TuneConfig(num_samples=n, metric="score", mode="max"),
                run_config=tune.RunConfig(name="bench", storage_path=storage, verbose=0),
            )
            started = time.perf_counter()
            results = tuner.fit()
            fit_s = time.perf_counter() - started
        assert len(results) == n and results.num_errors == 0, f"{results.num_errors} of {n} trials failed"
    finally:
        ray.shutdown()
    return fit_s


def jobs_api_floor(
    cluster: LocalRayCluster, workdir: Path, script: str, n: int, width: int, cpus: float
) -> float:
    """Wall seconds for `n` Ray jobs running `script` submitted straight to the Jobs API, `width` at a time.

    The floor under sweepwise's Ray dispatcher: the same Ray job per trial (`python script.py`),
    with no claim, no supervisor, no store and no controller; statuses read every 0.1 s.
    """
    path = workdir / "floor.py"
    path.write_text(script)
    client = cluster.client()
    entrypoint = f"{sys.executable} {path}"
    submitted, running = 0, set()
    started = time.perf_counter()
    while submitted < n or running:
        while submitted < n and len(running) < width:
            running.add(client.submit_job(entrypoint=entrypoint, entrypoint_num_cpus=cpus))
            submitted += 1
        time.sleep(0.1)
        for sid in list(running):
            status = client.get_job_status(sid)
            if status.is_terminal():
                assert status.value == "SUCCEEDED", f"floor job {sid} ended {status}"
                running.discard(sid)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke test, not the figures)")
    parser.add_argument("--no-slurm", action="store_true", help="leave out the SLURM section")
    args = parser.parse_args(argv)
    n_trivial, n_jobs, n_sleep = (12, 8, 16) if args.quick else (200, 50, 100)
    work = Path(tempfile.mkdtemp(prefix="sweepwise-bench-"))
    print(f"working in {work}", file=sys.stderr)
    cluster = LocalRayCluster(num_cpus=CLUSTER_CPUS)
    started = time.perf_counter()
    cluster.start()
    print(f"Ray cluster at {cluster.address} up in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    tasks = {"type": "ray", "address": cluster.gcs_address, "mode": "task"}
    jobs = {"type": "ray", "address": cluster.address, "mode": "job"}
    try:
        print("1. trivial trials", file=sys.stderr)
        ours = sweepwise_processes(work, TRIVIAL, n_trivial, CLUSTER_CPUS, "ray-trivial", tasks)
        tune_s = ray_tune_on(cluster, n_trivial)
        row(
            "trivial",
            f"sweepwise on Ray (tasks), {n_trivial} trivial trials, {CLUSTER_CPUS} at a time",
            f"{ours / n_trivial * 1000:.0f} ms/trial ({ours:.1f} s)",
        )
        row(
            "trivial",
            f"Ray Tune, default settings, {n_trivial} trivial function trials, same cluster "
            f"({CLUSTER_CPUS} CPUs: {CLUSTER_CPUS} at a time)",
            "not installed (pip install 'ray[tune]')"
            if tune_s is None
            else f"{tune_s / n_trivial * 1000:.0f} ms/trial ({tune_s:.1f} s); "
            f"sweepwise / Tune = {ours / tune_s:.3f} (target <= 0.1)",
        )
        as_jobs = sweepwise_processes(work, TRIVIAL, n_jobs, CLUSTER_CPUS, "ray-jobs", jobs)
        floor = jobs_api_floor(cluster, work, TRIVIAL, n_jobs, CLUSTER_CPUS, 1.0)
        row(
            "trivial",
            f"sweepwise on Ray (Ray jobs, the Jobs API), {n_jobs} trivial trials, {CLUSTER_CPUS} at a time",
            f"{as_jobs / n_jobs * 1000:.0f} ms/trial ({as_jobs:.1f} s)",
        )
        row(
            "trivial",
            f"Ray Jobs API floor: the same script as {n_jobs} bare Ray jobs, {CLUSTER_CPUS} at a time",
            f"{floor / n_jobs * 1000:.0f} ms/trial ({floor:.1f} s); "
            f"sweepwise / floor = {as_jobs / floor:.2f}",
        )
        print("2. width", file=sys.stderr)
        warm = sweepwise_processes(work, TRIVIAL, 16, 8, "ray-warm-up", {**tasks, "num_cpus": 0.5})
        row("width", "warm-up: 16 trivial tasks, 8 at a time (0.5 CPU each)", f"{warm:.1f} s")
        wall = sweepwise_processes(work, SLEEPER, n_sleep, 8, "ray-sleepers", {**tasks, "num_cpus": 0.5})
        ideal = n_sleep / 8 * 1.0
        row(
            "width",
            f"sweepwise on Ray (tasks), {n_sleep} jobs sleeping 1 s, 8 at a time (0.5 CPU each)",
            f"{wall:.1f} s (ideal {ideal:.1f} s, ratio {wall / ideal:.2f}; target <= 1.15)",
        )
    finally:
        cluster.stop()
    if not args.no_slurm:
        from _slurm_bench import slurm_rows

        print("3. SLURM", file=sys.stderr)
        for entry in slurm_rows(trials=12 if args.quick else 50, width=4):
            row("slurm", entry["what"], entry["figure"])

    print()
    python = sys.version.split()[0]
    print(f"Machine: {os.cpu_count()} cores, Python {python}, a local Ray cluster of {CLUSTER_CPUS} CPUs")
    print()
    print("| section | what | figure |")
    print("| --- | --- | --- |")
    for section, what, figure in ROWS:
        print(f"| {section} | {what} | {figure} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
