"""Entrypoint functions of the recipe examples: a tiny numpy classifier, trained then evaluated.

sweepwise runs them in the job's process as
`python -m sweepwise.runtime.call examples.recipes.jobs.train run=... group=... trainer.lr=0.1`:
`trainer.lr=0.1` sets a field of the `trainer` parameter (a pydantic model), and the
returned dict becomes the job's result.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

MODEL_FILE = "model.npz"


class TrainerConfig(BaseModel):
    """Hyperparameters of the classifier: a one-hidden-layer tanh network."""

    lr: float = Field(default=0.3, gt=0, description="gradient step size")
    hidden: int = Field(default=16, ge=1, description="hidden units")
    steps: int = Field(default=300, ge=1, description="full-batch gradient steps")
    l2: float = Field(default=1e-4, ge=0, description="weight decay")


def make_rings(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy concentric rings in the plane: points `(n, 2)` and labels `(n,)` in {0, 1}."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    radius = 1.0 + labels + rng.normal(0.0, 0.25, n)
    angle = rng.uniform(0.0, 2 * np.pi, n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points, labels.astype(float)


def _forward(weights: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hidden = np.tanh(x @ weights["w1"] + weights["b1"])
    logits = (hidden @ weights["w2"] + weights["b2"])[:, 0]
    return hidden, 1.0 / (1.0 + np.exp(-logits))


def train(run: str, group: str, trainer: TrainerConfig | None = None, data_seed: int = 0) -> dict[str, float]:
    """Train the classifier and save it as `model.npz` in the run directory.

    Args:
        run: the run id (seeds the initial weights, so runs differ).
        group: the experiment the run belongs to.
        trainer: the hyperparameters (`trainer.lr=0.1` on the command line).
        data_seed: seeds the training data.

    Returns:
        The training metrics: final loss and wall time in seconds.
    """
    config = trainer or TrainerConfig()
    x, y = make_rings(400, seed=data_seed)
    rng = np.random.default_rng(zlib.crc32(run.encode()))
    weights = {
        "w1": rng.normal(0.0, 1.0, (2, config.hidden)),
        "b1": np.zeros(config.hidden),
        "w2": rng.normal(0.0, 1.0 / np.sqrt(config.hidden), (config.hidden, 1)),
        "b2": np.zeros(1),
    }
    start = time.perf_counter()
    loss = float("nan")
    for _ in range(config.steps):
        hidden, p = _forward(weights, x)
        loss = float(-np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9)))
        grad = ((p - y) / len(y))[:, None]
        grad_hidden = (grad @ weights["w2"].T) * (1 - hidden**2)
        weights["w2"] -= config.lr * (hidden.T @ grad + config.l2 * weights["w2"])
        weights["b2"] -= config.lr * grad.sum(0)
        weights["w1"] -= config.lr * (x.T @ grad_hidden + config.l2 * weights["w1"])
        weights["b1"] -= config.lr * grad_hidden.sum(0)
    run_dir = Path(os.environ.get("SWEEPWISE_RUN_DIR", "."))
    np.savez(run_dir / MODEL_FILE, **weights)
    print(f"{group}/{run}: trained {config.steps} steps, loss {loss:.4f}")
    return {"train_loss": loss, "train_seconds": time.perf_counter() - start}


def evaluate(policy_uri: str, data_seed: int = 1) -> dict[str, float]:
    """Score a trained classifier on held-out points.

    Args:
        policy_uri: the trained model: a `model.npz` file or the run directory holding
            it (sweepwise passes the run directory when training reported no
            `policy_uri`).
        data_seed: seeds the held-out data.

    Returns:
        `{"score": accuracy}`, the accuracy in [0, 1].
    """
    path = Path(policy_uri)
    if path.is_dir():
        path = path / MODEL_FILE
    with np.load(path) as saved:
        weights = {name: saved[name] for name in saved.files}
    x, y = make_rings(400, seed=data_seed)
    _, p = _forward(weights, x)
    accuracy = float(np.mean((p > 0.5) == (y > 0.5)))
    print(f"accuracy of {path}: {accuracy:.3f}")
    return {"score": accuracy}
