"""The quickstart's data: two interleaved spirals, a small task a tiny MLP can learn."""

import numpy as np


def make_spirals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` points of two spirals with a little noise, and their 0/1 labels."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    label = rng.integers(0, 2, n)
    sign = np.where(label == 1, 1.0, -1.0)
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) / (3 * np.pi)
    x += rng.normal(0, 0.05, x.shape)
    return x, label.astype(float)
