"""Cancel benchmark: how long stopping jobs that take SIGTERM slowly holds up the caller.

Starts N jobs through the local dispatcher that ignore SIGTERM (as a job saving a checkpoint
does for a while), cancels them all as a controller's tick does when the stopper stops
several runs at once, and prints how long the `cancel` calls took and how long until every
job was gone. The floor for the second is one grace period: SIGKILL is sent once it is over
(docs/design.md, "Cancelling a job"). No peer runs here: Optuna prunes inside the trial's own
process, and Ray Tune stops an actor it owns.

    python benchmarks/cancels.py                 # 4 jobs, grace period 2 s
    python benchmarks/cancels.py --jobs 8 --grace 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from sweepwise.core.models import JobDefinition
from sweepwise.dispatchers.local import LocalDispatcher

_STUBBORN = textwrap.dedent(
    """
    import os, signal, time
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    open(os.path.join(os.environ["SWEEPWISE_RUN_DIR"], "pid"), "w").write(str(os.getpid()))
    time.sleep(600)
    """
)


def measure(jobs: int, grace: float) -> tuple[float, float]:
    """(seconds the cancel calls took, seconds until every job was gone)."""
    with tempfile.TemporaryDirectory() as root:
        dispatcher = LocalDispatcher(Path(root), "bench", grace_period=grace, heartbeat_interval=0.5)
        ids = [
            dispatcher.dispatch(JobDefinition(run_id=f"j{i}", cmd=[sys.executable, "-c", _STUBBORN]))
            for i in range(jobs)
        ]
        for i in range(jobs):  # every job runs and has taken over SIGTERM
            pid_file = Path(root) / "bench" / f"j{i}" / "pid"
            while not pid_file.exists() or not pid_file.read_text():
                time.sleep(0.01)
        start = time.monotonic()
        for dispatch_id in ids:
            dispatcher.cancel(dispatch_id)
        cancelled = time.monotonic() - start
        dispatcher.close()  # returns once every cancelled job is gone
        return cancelled, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="jobs to stop at once (default 4)")
    parser.add_argument("--grace", type=float, default=2.0, help="grace_period in s (default 2)")
    args = parser.parse_args()
    cancelled, gone = measure(args.jobs, args.grace)
    print(f"| jobs ignoring SIGTERM | grace period | the {args.jobs} cancel calls | every job gone |")
    print("| --- | --- | --- | --- |")
    print(f"| {args.jobs} | {args.grace:g} s | {cancelled:.2f} s | {gone:.2f} s |")


if __name__ == "__main__":
    main()
