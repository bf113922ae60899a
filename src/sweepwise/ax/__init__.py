"""The AxScheduler facade: Ax chooses the trials, sweepwise runs and records them.

Example:
    >>> from ax import Client, RangeParameterConfig  # doctest: +SKIP
    >>> from sweepwise.ax import AxScheduler, LocalRunner  # doctest: +SKIP
    >>> client = Client()  # doctest: +SKIP
    >>> x = RangeParameterConfig(name="x", bounds=(0, 1), parameter_type="float")  # doctest: +SKIP
    >>> client.configure_experiment(parameters=[x])  # doctest: +SKIP
    >>> client.configure_optimization(objective="-loss")  # doctest: +SKIP
    >>> scheduler = AxScheduler(client, LocalRunner(n_jobs=4))  # doctest: +SKIP
    >>> scheduler.set_objective_function(lambda p: {"loss": (p["x"] - 0.3) ** 2})  # doctest: +SKIP
    >>> best = scheduler.run_optimization(max_trials=8)  # doctest: +SKIP
"""

from __future__ import annotations

from sweepwise.ax.jobs import Job, JobState, JobType
from sweepwise.ax.objectives import ContainerObjective, FunctionObjective, ScriptObjective
from sweepwise.ax.runners import (
    BaseRunner,
    BaseRunnerAdapter,
    DispatcherRunner,
    JobLibRunner,
    JobOutcome,
    LocalRunner,
    TrialJob,
    TrialRunner,
    as_trial_runner,
)
from sweepwise.ax.scheduler import AxScheduler
from sweepwise.ax.slurm_runner import SlurmRunner
from sweepwise.ax.trials import BatchTrialContext, Trial, TrialState, TrialStatus

__all__ = [
    "AxScheduler",
    "BaseRunner",
    "BaseRunnerAdapter",
    "BatchTrialContext",
    "ContainerObjective",
    "DispatcherRunner",
    "FunctionObjective",
    "Job",
    "JobLibRunner",
    "JobOutcome",
    "JobState",
    "JobType",
    "LocalRunner",
    "ScriptObjective",
    "SlurmRunner",
    "Trial",
    "TrialJob",
    "TrialRunner",
    "TrialState",
    "TrialStatus",
    "as_trial_runner",
]
