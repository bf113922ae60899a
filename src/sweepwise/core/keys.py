"""Standard summary keys: the one place their spelling lives.

Schedulers and hooks read and write run summaries only through these names, so an
experiment can be understood from its summaries alone.
"""

from __future__ import annotations

# Observation fields, written by the post-eval hook (suggestion: at training dispatch).
OBSERVATION_SCORE = "observation/score"
OBSERVATION_COST = "observation/cost"
OBSERVATION_SUGGESTION = "observation/suggestion"
OBSERVATION_IS_FAILURE = "observation/is_failure"

# Controller-managed flags, namespaced so user metrics never collide with them.
POST_EVAL_PROCESSED = "adaptive/post_eval_processed"
POST_EVAL_PROCESSED_AT = "adaptive/post_eval_processed_at"
POST_TRAINING_PROCESSED = "adaptive/post_training_processed"
POST_TRAINING_PROCESSED_AT = "adaptive/post_training_processed_at"

# A run's status flags, as a W&B store keeps them in the W&B run's summary (docs/stores.md,
# "WandbStore"); a run's status is derived from them by `sweepwise.core.status.status_of`.
TRAINING_STARTED = "adaptive/training_started"
TRAINING_COMPLETED = "adaptive/training_completed"
EVAL_STARTED = "adaptive/eval_started"
EVAL_COMPLETED = "adaptive/eval_completed"
RUN_FAILED = "adaptive/failed"
RUN_STALE = "adaptive/stale"
RUN_CANCELLED = "adaptive/cancelled"
RUN_STOPPED = "adaptive/stopped"

# Early stopping (docs/optimizers.md, "Early stopping"): the metric's value at each rung a
# run reached ({"3": 0.71, "9": 0.80}), and the stopper's decision ({step, value, at}),
# committed before the job is cancelled.
RUNGS = "adaptive/rungs"
STOP = "adaptive/stop"
# The same values when the stopper judges the experiment's metric: the run's scores at the
# rungs it passed, which the optimizer learns as lower-fidelity observations.
OBSERVATION_RUNGS = "observation/rungs"

# In a training job's metadata: the optimizer's suggestion it runs (its overrides may add more).
SUGGESTION_METADATA = "adaptive/suggestion"

# The ledger of a run's unsuccessful attempts: [{job, attempt, reason, error, at}, ...].
ATTEMPTS = "adaptive/attempts"

# What the jobs themselves reported.
TRAIN_RESULT = "train/result"
TRAIN_RUNTIME = "train/runtime"
TRAIN_EXIT_CODE = "train/exit_code"
EVAL_RESULT = "eval/result"
EVAL_RUNTIME = "eval/runtime"
EVAL_EXIT_CODE = "eval/exit_code"
TRAIN_METRICS = "train/metrics"  # the latest row a job reported with `sweepwise.report`
TRAIN_STEP = "train/step"
EVAL_METRICS = "eval/metrics"
EVAL_STEP = "eval/step"

# Where an eval job finds the trained artefact (the seed's `policy_uri`).
POLICY_URI = "train/policy_uri"

__all__ = [
    "ATTEMPTS",
    "EVAL_COMPLETED",
    "EVAL_EXIT_CODE",
    "EVAL_METRICS",
    "EVAL_RESULT",
    "EVAL_RUNTIME",
    "EVAL_STARTED",
    "EVAL_STEP",
    "OBSERVATION_COST",
    "OBSERVATION_IS_FAILURE",
    "OBSERVATION_RUNGS",
    "OBSERVATION_SCORE",
    "OBSERVATION_SUGGESTION",
    "POLICY_URI",
    "POST_EVAL_PROCESSED",
    "POST_EVAL_PROCESSED_AT",
    "POST_TRAINING_PROCESSED",
    "POST_TRAINING_PROCESSED_AT",
    "RUNGS",
    "RUN_CANCELLED",
    "RUN_FAILED",
    "RUN_STALE",
    "RUN_STOPPED",
    "STOP",
    "SUGGESTION_METADATA",
    "TRAINING_COMPLETED",
    "TRAINING_STARTED",
    "TRAIN_EXIT_CODE",
    "TRAIN_METRICS",
    "TRAIN_RESULT",
    "TRAIN_RUNTIME",
    "TRAIN_STEP",
]
