"""Entrypoint jobs for the custom scheduler: training writes `x`, evaluation scores it."""

from __future__ import annotations

import json
import os
from pathlib import Path


def train(run: str, group: str, x: float) -> dict[str, float]:
    """Write `x` into the run directory."""
    Path(os.environ["SWEEPWISE_RUN_DIR"], "x.json").write_text(
        json.dumps({"x": x, "run": run, "group": group})
    )
    return {"train_x": x}


def evaluate(policy_uri: str) -> dict[str, float]:
    """Score the run from what training wrote (policy_uri is the run directory)."""
    return {"score": 10 * json.loads(Path(policy_uri, "x.json").read_text())["x"]}
