"""What a mirror costs a sweep: the same sweep of trivial jobs unmirrored, mirrored to a real local
MLflow server, and mirrored to that server stopped (docs/stores.md, "Mirrors").

    python benchmarks/mirrors.py [--trials 24] [--repeats 3]

Each configuration runs `sweepwise run` as a fresh process in a fresh directory (store, runs
and process start-up included), interleaved, `--repeats` times with the server up (warmed by one
request) and then `--repeats` times with it stopped; the table shows the median wall time and its
ratio to the unmirrored one (median of both phases) (target: within 1.10x, the server up or down). The
server is tests/mlflow_server.py's (`$SWEEPWISE_MLFLOW_SERVER`, else a virtualenv of its own under
~/.cache/sweepwise-tests, made the first time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from mlflow_server import MlflowServer  # noqa: E402

TRAIN = (
    "import json, os, time\ntime.sleep(float(os.environ.get('JOB_SECONDS', '0')))\n"
    'print("SWEEPWISE_RESULT " + json.dumps({"score": 1.0}))\n'
)


def spec(trials: int, mirror: dict[str, Any] | None, job_seconds: float) -> dict[str, Any]:
    """A quickstart-like sweep: batches of 4 trivial training jobs, no eval."""
    data: dict[str, Any] = {
        "name": "bench",
        "max_parallel": 4,
        "monitoring_interval": 1,
        "scheduler": {"type": "batched_synced", "max_trials": trials, "batch_size": 4},
        "optimizer": {"type": "random", "seed": 0},
        "train": {"cmd": ["python", "train.py"], "env": {"JOB_SECONDS": str(job_seconds)}},
        "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
    }
    if mirror is not None:
        data["mirror"] = mirror
    return data


def run_once(trials: int, mirror: dict[str, Any] | None, job_seconds: float) -> float:
    """Wall seconds of one `sweepwise run` of the sweep in a fresh directory."""
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "train.py").write_text(TRAIN)
        (Path(work) / "sweep.yaml").write_text(yaml.safe_dump(spec(trials, mirror, job_seconds)))
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "sweepwise", "run", "sweep.yaml", "--quiet"],
            cwd=work,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"the sweep failed: {done.stderr[-2000:]}")
        return elapsed


def warm(uri: str) -> None:
    """One API call, so the server's own first-request start-up is not timed."""
    request = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/experiments/search",
        data=json.dumps({"max_results": 1}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--job-seconds", type=float, default=0.0, help="how long each job sleeps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as server_dir:
        server = MlflowServer(Path(server_dir))
        mirror = {"type": "mlflow", "tracking_uri": server.uri}
        no_wait = {**mirror, "flush_timeout": 0}
        times: dict[str, list[float]] = {
            "unmirrored": [],
            "mirror: mlflow": [],
            "mirror: mlflow, flush_timeout: 0": [],
            "mirror: mlflow, server down": [],
        }
        server.start()
        try:
            warm(server.uri)
            for _ in range(args.repeats):  # the server up
                times["unmirrored"].append(run_once(args.trials, None, args.job_seconds))
                times["mirror: mlflow"].append(run_once(args.trials, mirror, args.job_seconds))
                times["mirror: mlflow, flush_timeout: 0"].append(
                    run_once(args.trials, no_wait, args.job_seconds)
                )
        finally:
            server.stop()
        for _ in range(args.repeats):  # the server down
            times["unmirrored"].append(run_once(args.trials, None, args.job_seconds))
            times["mirror: mlflow, server down"].append(run_once(args.trials, mirror, args.job_seconds))
    base = statistics.median(times["unmirrored"])
    jobs = f"jobs of {args.job_seconds:g} s" if args.job_seconds else "trivial jobs"
    print(f"{args.trials} trials ({jobs}), batches of 4, median of {args.repeats} runs each\n")
    print("| configuration | wall s (median) | runs (s) | ratio |")
    print("| --- | --- | --- | --- |")
    for name, values in times.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {median:.2f} | {runs} | {median / base:.3f}x |")


if __name__ == "__main__":
    main()
