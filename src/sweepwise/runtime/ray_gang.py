"""Run one job on several Ray nodes: the entrypoint of a Ray job whose `nodes` is above 1.

The Ray dispatcher submits such a job as `python -m sweepwise.runtime.ray_gang`, with
the placement group to reserve in `$SWEEPWISE_RAY_PLACEMENT` (JSON: one bundle per node,
each the job's CPUs, GPUs and custom resources, and the strategy, `STRICT_SPREAD` by
default: one node per bundle). This driver reserves the group, then runs
`python -m sweepwise.runtime.remote` once per bundle, as a Ray task pinned to it, with
`SWEEPWISE_NODE_RANK` (0 to N-1), `SWEEPWISE_NUM_NODES` and `SWEEPWISE_HEAD_ADDR` (the
address of rank 0's node, for the job's own rendezvous) in its environment.

Each rank's output reaches the job's log (Ray prefixes it with the task's pid); rank 0's
final `SWEEPWISE_RESULT` line is printed again as the log's last line. The exit status is
the first failing rank's, else 0. Ray removes the placement group when this driver exits;
a rank's runner gets SIGTERM when its Ray worker dies, and the guard in its job's process
group (`sweepwise.runtime.group_guard`) stops the job if the runner is SIGKILLed with the
worker, so a stopped job stops everywhere.

Unlike most of `sweepwise.runtime` this imports Ray: it runs once per multi-node Ray job.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from typing import Any

from sweepwise.runtime import RESULT_LINE_PREFIX
from sweepwise.runtime.remote import NODE_RANK_ENV

PLACEMENT_ENV = "SWEEPWISE_RAY_PLACEMENT"
NUM_NODES_ENV = "SWEEPWISE_NUM_NODES"
HEAD_ADDR_ENV = "SWEEPWISE_HEAD_ADDR"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """SIGTERM to this process when its parent (the rank's Ray worker) dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def run_rank(rank: int, nodes: int, head: str) -> tuple[int, str | None]:
    """Run the job's rank `rank` (a Ray task): its exit status and its final result line, if any."""
    env = {**os.environ, NODE_RANK_ENV: str(rank), NUM_NODES_ENV: str(nodes), HEAD_ADDR_ENV: head}
    process = subprocess.Popen(
        [sys.executable, "-m", "sweepwise.runtime.remote"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    last = ""
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)
        last = line.rstrip("\n") if line.strip() else last
    code = process.wait()
    return code, last if last.startswith(RESULT_LINE_PREFIX) else None


def main() -> int:
    """Reserve the placement group, run every rank, report rank 0's result; see the module docstring.

    Returns:
        The first failing rank's exit status, else 0; 2 when there is no placement to reserve.
    """
    try:
        request: dict[str, Any] = json.loads(os.environ[PLACEMENT_ENV])
        bundles: list[dict[str, float]] = list(request["bundles"])
        strategy = str(request["strategy"])
    except (KeyError, TypeError, ValueError):
        print(f"sweepwise: error: {PLACEMENT_ENV} does not hold a placement group", file=sys.stderr)
        return 2
    import ray
    from ray.util.placement_group import placement_group, placement_group_table
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    ray.init(log_to_driver=True, configure_logging=False)  # the job's cluster (RAY_ADDRESS)
    group = placement_group(bundles, strategy=strategy)
    print(f"sweepwise: reserving {len(bundles)} bundles ({strategy}): {bundles}", flush=True)
    ray.get(group.ready())
    nodes = {node["NodeID"]: node["NodeManagerAddress"] for node in ray.nodes()}
    head = nodes.get(placement_group_table(group)["bundles_to_node_id"][0], "")
    rank_task = ray.remote(run_rank)
    ranks = []
    for rank, bundle in enumerate(bundles):
        custom = {name: amount for name, amount in bundle.items() if name not in ("CPU", "GPU")}
        options = rank_task.options(
            num_cpus=bundle.get("CPU", 0),
            num_gpus=bundle.get("GPU", 0),
            resources=custom or None,
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=rank),
        )
        ranks.append(options.remote(rank, len(bundles), head))
    outcomes: list[tuple[int, str | None]] = ray.get(ranks)
    code = next((status for status, _ in outcomes if status != 0), 0)
    result = outcomes[0][1]
    if result is not None:
        print(result, flush=True)
    return code


__all__ = ["HEAD_ADDR_ENV", "NUM_NODES_ENV", "PLACEMENT_ENV", "main", "run_rank"]

if __name__ == "__main__":
    sys.exit(main())
