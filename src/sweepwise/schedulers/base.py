"""What every scheduler shares: the job templates of its config and how jobs are built."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sweepwise.core import keys
from sweepwise.core.container import ContainerSpec
from sweepwise.core.lifecycle import observation_of
from sweepwise.core.models import ArgStyle, JobDefinition, JobStatus, JobTypes, Observation, RunInfo
from sweepwise.core.protocols import Optimizer
from sweepwise.core.runs import changed_since
from sweepwise.runtime.call import OPTIONAL_KEYS_ENV
from sweepwise.schedulers.search import (
    RESOURCE_PARAMETERS,
    NoSearch,
    check_resource_parameters,
    search_of,
    split_resources,
)


class JobSpec(BaseModel):
    """How to run one kind of job: its command, resources and time limit.

    `cmd` is an argv list or a string split like a shell would (the command comes
    from the spec; hyperparameters are appended as separate argv words and never
    pass through a shell). `timeout` is the seconds a job may run before it is
    stopped and its run fails (none by default). The values of `env` are written to
    the store and `adaptive_config.json` only for the names in `record_env` (`"*"`:
    all); the others are recorded by name and taken from the spec again when a job
    is started anew (README, `train`). With `container`, the command runs in that
    container (`sweepwise.core.container.ContainerSpec`; docs/backends.md, "Containers").
    """

    model_config = ConfigDict(extra="forbid")

    cmd: str | list[str]
    gpus: int = Field(default=0, ge=0)
    nodes: int = Field(default=1, ge=1)
    arg_style: ArgStyle = ArgStyle.KEY_VALUE
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    record_env: list[str] = Field(default_factory=list)
    container: ContainerSpec | None = None


class TrainAndEvalConfig(BaseModel):
    """Seed 002's `TrainAndEvalConfig`: train a series of runs, evaluate each.

    A job runs either a command (`train` / `eval`) or, when those are not given,
    the entrypoint `recipe_module.train_entrypoint` / `recipe_module.eval_entrypoint`.
    """

    model_config = ConfigDict(extra="forbid")

    recipe_module: str | None = None
    train_entrypoint: str = "train"
    eval_entrypoint: str = "evaluate"
    max_trials: int = Field(default=1, ge=1)
    gpus: int = Field(default=0, ge=0)
    nodes: int = Field(default=1, ge=1)
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)  # of entrypoint jobs
    experiment_id: str = "train_and_eval"
    train_overrides: dict[str, Any] = Field(default_factory=dict)
    eval_overrides: dict[str, Any] = Field(default_factory=dict)
    train: JobSpec | None = None
    eval: JobSpec | None = None

    @property
    def needs_eval(self) -> bool:
        """Whether runs have an eval job (a command or an entrypoint) after their training."""
        return self.eval is not None or self.recipe_module is not None


ConfigT = TypeVar("ConfigT", bound=TrainAndEvalConfig)


class TemplateEnvironment(Generic[ConfigT]):
    """`JobEnvironment` for schedulers whose `config` is a `TrainAndEvalConfig`: the env of its templates."""

    config: ConfigT

    def job_env(self, job_type: JobTypes) -> dict[str, str]:
        """The env the spec gives jobs of `job_type` (`train.env` / `eval.env`)."""
        _, spec = _job_template(self.config, job_type)
        return dict(spec.env) if spec is not None else {}


def build_optimizer(config: Any, optimizer: Optimizer | None = None) -> Optimizer:
    """`optimizer`, or the one the config's search names (`search_of`: `parameters` or `protein_config`).

    An empty search space gives `NoSearch` (empty suggestions: every run trains with the
    fixed overrides).

    Raises:
        ConfigError: a bad search space, optimizer setting, or resource parameter.
    """
    if optimizer is not None:
        return optimizer
    from sweepwise.optimizers import make_optimizer
    from sweepwise.space import SearchSpace

    search = search_of(config)
    if not search.parameters:
        return NoSearch()
    space = SearchSpace.from_dict(search.parameters, field=search.field)
    check_resource_parameters(space, search.field)
    return make_optimizer(search.optimizer, space, goal=search.goal)


def generate_run_id(experiment_id: str, trial_num: int) -> str:
    """The run id of trial `trial_num` (1-based) of an experiment."""
    return f"{experiment_id}_trial_{trial_num:04d}"


def _job_template(config: TrainAndEvalConfig, job_type: JobTypes) -> tuple[str | list[str], JobSpec | None]:
    spec = config.train if job_type is JobTypes.LAUNCH_TRAINING else config.eval
    if spec is not None:
        return spec.cmd, spec
    entry = config.train_entrypoint if job_type is JobTypes.LAUNCH_TRAINING else config.eval_entrypoint
    return f"{config.recipe_module}.{entry}", None


def _stats_server_uri(config: TrainAndEvalConfig) -> dict[str, Any]:
    """The seed's `stats_server_uri` override for every job, when the config sets one."""
    uri = getattr(config, "stats_server_uri", None)
    return {"stats_server_uri": uri} if uri else {}


def create_training_job(
    config: TrainAndEvalConfig, run_id: str, suggestion: dict[str, Any] | None = None
) -> JobDefinition:
    """A training job: the shared train overrides with the suggestion merged on top.

    A suggested `gpus` / `nodes` is the job's resource request instead of the config's
    (it is recorded in the run's suggestion, not passed as an override). The config's
    `stats_server_uri` is passed as an override, as the seed does; an entrypoint that
    does not take it is not given it.

    Raises:
        ConfigError: a suggested `gpus` / `nodes` is not a whole number of devices.
    """
    cmd, spec = _job_template(config, JobTypes.LAUNCH_TRAINING)
    resources, hyperparameters = split_resources(suggestion or {})
    stats = _stats_server_uri(config)
    overrides = {**config.train_overrides, **hyperparameters, **stats}
    args: dict[str, Any] = {}
    env = dict(spec.env) if spec else {}
    if spec is None:  # entrypoint jobs get the seed's run/group arguments
        args = {"run": run_id, "group": config.experiment_id}
        if stats:
            env[OPTIONAL_KEYS_ENV] = json.dumps(sorted(stats))
    job = JobDefinition(
        run_id=run_id,
        cmd=cmd,
        gpus=resources.get("gpus", spec.gpus if spec else config.gpus),
        nodes=resources.get("nodes", spec.nodes if spec else config.nodes),
        args=args,
        overrides=overrides,
        type=JobTypes.LAUNCH_TRAINING,
        arg_style=spec.arg_style if spec else ArgStyle.KEY_VALUE,
        env=env,
        cwd=spec.cwd if spec else None,
        timeout=spec.timeout if spec else config.timeout,
        record_env=list(spec.record_env) if spec else [key for key in (OPTIONAL_KEYS_ENV,) if key in env],
        container=spec.container if spec else None,
    )
    if suggestion is not None:
        job.metadata[keys.SUGGESTION_METADATA] = dict(suggestion)
    return job


def create_eval_job(config: TrainAndEvalConfig, run: RunInfo) -> JobDefinition:
    """An eval job for `run`: the run's suggestion, `eval_overrides` and its trained artefact.

    Like its training job, the eval job receives the run's hyperparameters (the
    optimizer's suggestion), with `eval_overrides` on top. `policy_uri` is what the
    training job reported under that name; when it reported none, an entrypoint eval
    job gets the run directory from the launcher (which is the one part that knows
    where run directories live). A searched `gpus` / `nodes` is left out (it was the
    training job's resource request) and the config's `stats_server_uri` is added. An
    entrypoint eval function is passed only the suggested keys (and `stats_server_uri`)
    it takes (see `sweepwise.runtime.call`).
    """
    cmd, spec = _job_template(config, JobTypes.LAUNCH_EVAL)
    train_result = run.summary.get(keys.TRAIN_RESULT) or {}
    policy_uri = train_result.get("policy_uri") if isinstance(train_result, dict) else None
    args: dict[str, Any] = {}
    if policy_uri is not None:
        args["policy_uri"] = policy_uri
    skip = {*args, *RESOURCE_PARAMETERS}  # a searched `gpus` / `nodes` was training's resource request
    suggestion = {key: value for key, value in run.suggestion.items() if key not in skip}
    stats = _stats_server_uri(config)
    env = dict(spec.env) if spec else {}
    if spec is None and (suggestion or stats):  # an entrypoint: it may take only some of them
        env[OPTIONAL_KEYS_ENV] = json.dumps(sorted({*suggestion, *stats}))
    return JobDefinition(
        run_id=run.run_id,
        cmd=cmd,
        gpus=spec.gpus if spec else config.gpus,
        nodes=spec.nodes if spec else config.nodes,
        args=args,
        overrides={**suggestion, **config.eval_overrides, **stats},
        type=JobTypes.LAUNCH_EVAL,
        arg_style=spec.arg_style if spec else ArgStyle.KEY_VALUE,
        env=env,
        cwd=spec.cwd if spec else None,
        timeout=spec.timeout if spec else config.timeout,
        record_env=list(spec.record_env) if spec else [OPTIONAL_KEYS_ENV],  # sweepwise's own: recorded
        container=spec.container if spec else None,
    )


def collect_observations(runs: Sequence[RunInfo]) -> list[Observation]:
    """Observations of every run that has one (see `observation_of`)."""
    return [obs for obs in map(observation_of, runs) if obs is not None]


class ObservationLog:
    """`collect_observations`, incrementally: a finished run's observation is read once, and
    again only when scores at more rungs arrive for it (`observation/rungs`, written when its
    reports are read after its end), so it holds what a restarted controller would read."""

    def __init__(self) -> None:
        self._done: set[str] = set()
        self._observations: list[Observation] = []
        self._at: dict[str, int] = {}  # run id -> its observation's index
        self._seen = 0

    def collect(self, runs: Sequence[RunInfo]) -> list[Observation]:
        """Observations of every run that has one, in the order they were first seen (a new list)."""
        changed, self._seen = changed_since(runs, self._seen)
        for run in changed:
            if run.run_id in self._done:
                index = self._at.get(run.run_id)
                if index is not None and _more_rungs(run, self._observations[index]):
                    self._observations[index] = observation_of(run) or self._observations[index]
                continue
            obs = observation_of(run)
            if obs is not None or run.status.is_finished():  # final: never look at it again
                if obs is not None or run.status is not JobStatus.COMPLETED:
                    self._done.add(run.run_id)
                    if obs is not None:
                        self._at[run.run_id] = len(self._observations)
                        self._observations.append(obs)
        return list(self._observations)


def _more_rungs(run: RunInfo, observation: Observation) -> bool:
    """Whether `run` has scores at more rungs than `observation` holds."""
    recorded = run.summary.get(keys.OBSERVATION_RUNGS)
    return isinstance(recorded, dict) and len(recorded) > len(observation.rungs or {})


__all__ = [
    "JobSpec",
    "ObservationLog",
    "TemplateEnvironment",
    "TrainAndEvalConfig",
    "build_optimizer",
    "collect_observations",
    "create_eval_job",
    "create_training_job",
    "generate_run_id",
    "observation_of",
]
