"""Quickstart eval job: scores the model that train.py left in the run directory."""

import json
import os

import numpy as np
from data import make_spirals

run_dir = os.environ.get("SWEEPWISE_RUN_DIR", ".")
model = np.load(os.path.join(run_dir, "model.npz"))
x, y = make_spirals(400, seed=1)  # held-out points
h = np.tanh(x @ model["w1"] + model["b1"])
p = 1 / (1 + np.exp(-(h @ model["w2"] + model["b2"])))[:, 0]
accuracy = float(np.mean((p > 0.5) == (y > 0.5)))
print(f"accuracy on held-out data: {accuracy:.3f}")
with open(os.path.join(run_dir, "result.json"), "w") as f:
    json.dump({"accuracy": accuracy}, f)
