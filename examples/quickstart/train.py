"""Quickstart training job: a small numpy MLP on a synthetic two-spirals task.

Hyperparameters arrive as key=value words (sweepwise appends them); the trained
weights go to $SWEEPWISE_RUN_DIR/model.npz, where eval.py finds them. More
`steps` and a larger `width` cost more time, so trials differ in cost.
"""

import os
import sys
import time

import numpy as np
from data import make_spirals

import sweepwise

params = dict(word.split("=", 1) for word in sys.argv[1:])
lr = float(params.get("lr", 0.1))
steps = int(params.get("steps", 200))
width = int(params.get("width", 16))
l2 = float(params.get("l2", 1e-4))

x, y = make_spirals(400, seed=0)
rng = np.random.default_rng(1)
w1 = rng.normal(0, 1 / np.sqrt(2), (2, width))
b1 = np.zeros(width)
w2 = rng.normal(0, 1 / np.sqrt(width), (width, 1))
b2 = np.zeros(1)

start = time.time()
for step in range(1, steps + 1):
    h = np.tanh(x @ w1 + b1)
    p = 1 / (1 + np.exp(-(h @ w2 + b2)))[:, 0]
    loss = -np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9))
    g = ((p - y) / len(y))[:, None]
    gh = (g @ w2.T) * (1 - h**2)
    w2 -= lr * (h.T @ g + l2 * w2)
    b2 -= lr * g.sum(0)
    w1 -= lr * (x.T @ gh + l2 * w1)
    b1 -= lr * gh.sum(0)
    if step % 50 == 0 or step == steps:
        sweepwise.report(step=step, loss=float(loss), progress=step / steps)

run_dir = os.environ.get("SWEEPWISE_RUN_DIR", ".")
np.savez(os.path.join(run_dir, "model.npz"), w1=w1, b1=b1, w2=w2, b2=b2)
print(f"trained {steps} steps, width {width}: loss {loss:.4f}")
print(f'SWEEPWISE_RESULT {{"train_loss": {float(loss)}, "train_seconds": {time.time() - start}}}')
