"""Ray Tune row for the orchestration benchmark: what a local Ray costs to start and per trivial trial.

`ray_tune_trials(n, width)` starts a local Ray with `width` CPUs, runs `n` trials of a function
trainable that reports one result at once through `tune.Tuner` (Ray's defaults, less the
per-trial CSV/JSON/TensorBoard loggers and the console output), and returns the seconds
`ray.init` and `tuner.fit()` took. Ray is imported only inside the function.

    python benchmarks/_ray_tune.py [n]      # width 2; prints the figures as JSON
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# Set only while the function runs, before Ray is imported; restored afterwards.
_QUIET_ENV = {
    "RAY_AIR_NEW_OUTPUT": "0",  # the old reporter, which verbose=0 silences fully
    "RAY_DEDUP_LOGS": "0",  # no "repeated Nx across cluster" banners
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no CSV/JSON/TensorBoard files per trial
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage-stats notice, no attempt to reach the network
    "RAY_AUTH_MODE": "token",  # Ray's default mode, set explicitly so ray.init does not warn about it
}
# Without the auto loggers there is no result.json per trial, so ResultGrid warns once per trial
# that it cannot read metrics from disk; it still has them in memory, which is all we use.
_NOISY_LOGGER = "ray.tune.analysis.experiment_analysis"


@contextmanager
def _quiet_ray() -> Iterator[None]:
    """Set `_QUIET_ENV`, mute `_NOISY_LOGGER` and warnings for the block; then restore them all."""
    saved = {key: os.environ.get(key) for key in _QUIET_ENV}
    noisy = logging.getLogger(_NOISY_LOGGER)
    level = noisy.level
    os.environ.update(_QUIET_ENV)
    noisy.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        noisy.setLevel(level)
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def ray_tune_trials(n: int, width: int) -> dict[str, float] | None:
    """Run `n` trivial Ray Tune trials at concurrency `width` on a fresh local Ray.

    Returns {"init_s", "fit_s", "per_trial_ms"}, or None when Ray Tune is not installed.
    """
    with _quiet_ray():
        try:
            import ray
            from ray import tune
        except ImportError:
            return None

        def trainable(config: dict[str, float]) -> None:
            # Nested, so cloudpickle ships it by value: workers need not import this module.
            tune.report({"score": 1.0})

        started = time.perf_counter()
        ray.init(
            address="local",  # always a fresh instance, never a cluster named by RAY_ADDRESS
            num_cpus=width,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        init_s = time.perf_counter() - started
        try:
            with tempfile.TemporaryDirectory(prefix="sweepwise-ray-") as storage:
                tuner = tune.Tuner(
                    trainable,
                    param_space={"x": tune.uniform(0, 1)},
                    tune_config=tune.TuneConfig(
                        num_samples=n, max_concurrent_trials=width, metric="score", mode="max"
                    ),
                    run_config=tune.RunConfig(
                        name="bench",
                        storage_path=storage,
                        verbose=0,
                        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0),
                    ),
                )
                started = time.perf_counter()
                results = tuner.fit()
                fit_s = time.perf_counter() - started
                assert len(results) == n, f"{len(results)} of {n} trials"
                assert results.num_errors == 0, f"{results.num_errors} trials failed"
                assert all(r.metrics.get("score") == 1.0 for r in results), "a trial did not report"
        finally:
            ray.shutdown()
    return {"init_s": init_s, "fit_s": fit_s, "per_trial_ms": fit_s / n * 1000}


if __name__ == "__main__":
    print(json.dumps(ray_tune_trials(int(sys.argv[1]) if len(sys.argv) > 1 else 20, 2)))
