"""Recipe functions: each builds a typed scheduler config and returns an `AdaptiveTool`.

Run one from the repository root:

    sweepwise run examples.recipes.sweeps.train_and_eval max_trials=3 dispatcher_type=local
    sweepwise run examples.recipes.sweeps.batched_synced batch_size=2 scheduler.max_trials=4

Words naming a parameter go to the function; the others override the returned tool
(`max_parallel=2`, `scheduler.batch_size=8`, `train_overrides.trainer.steps=100`).
"""

from __future__ import annotations

from sweepwise.optimizers import OptimizerSpec
from sweepwise.recipes import AdaptiveTool
from sweepwise.schedulers.base import TrainAndEvalConfig
from sweepwise.schedulers.batched_synced import BatchedSyncedSchedulerConfig

JOBS = "examples.recipes.jobs"  # where the train / evaluate entrypoints live


def train_and_eval(max_trials: int = 3, gpus: int = 0, dispatcher_type: str = "local") -> AdaptiveTool:
    """Train `max_trials` runs of the example classifier and evaluate each one.

    Args:
        max_trials: how many runs to train.
        gpus: GPUs per training job.
        dispatcher_type: where jobs run (`local`).
    """
    config = TrainAndEvalConfig(
        recipe_module=JOBS,
        train_entrypoint="train",
        eval_entrypoint="evaluate",
        max_trials=max_trials,
        gpus=gpus,
        experiment_id="recipes_train_and_eval",
        train_overrides={"trainer.steps": 200},
    )
    return AdaptiveTool(
        scheduler_type="train_and_eval",
        scheduler=config,
        dispatcher_type=dispatcher_type,
        monitoring_interval=1.0,
    )


def batched_synced(batch_size: int = 4, max_trials: int = 8, dispatcher_type: str = "local") -> AdaptiveTool:
    """Sweep the classifier's `trainer.*` hyperparameters with Protein, in synchronised batches.

    Args:
        batch_size: trainings per batch; a batch starts once the previous one is evaluated.
        max_trials: trainings in all.
        dispatcher_type: where jobs run (`local`).
    """
    config = BatchedSyncedSchedulerConfig(
        recipe_module=JOBS,
        max_trials=max_trials,
        batch_size=batch_size,
        experiment_id="recipes_batched_synced",
        parameters={
            "trainer.lr": {"distribution": "log_normal", "min": 0.01, "max": 3.0, "mean": 0.3},
            "trainer.hidden": {"distribution": "uniform_pow2", "min": 4, "max": 32},
            "trainer.steps": {"distribution": "int_uniform", "min": 50, "max": 400},
        },
        optimizer=OptimizerSpec(type="protein", seed=0),
    )
    return AdaptiveTool(
        scheduler_type="batched_synced",
        scheduler=config,
        dispatcher_type=dispatcher_type,
        max_parallel=batch_size,
        monitoring_interval=1.0,
        goal="maximize",
    )
