"""What the Ray dispatcher asks of Ray for one job: its submission id, entrypoint, env and resources.

Nothing here talks to a cluster: `build_submission` turns a `JobDefinition` into the
keywords of `JobSubmissionClient.submit_job` (and, for a job on several nodes, the
placement group its entrypoint reserves), so tests can check the request exactly.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import NOT_RECORDED, JobDefinition
from sweepwise.runtime import parse_stem
from sweepwise.runtime.ray_gang import HEAD_ADDR_ENV, NUM_NODES_ENV, PLACEMENT_ENV
from sweepwise.runtime.remote import CWD_ENV, JOB_ENV, PROTOCOL_ENV, RUNS_ROOT_ENV

REMOTE_RUNNER = "sweepwise.runtime.remote"
GANG_RUNNER = "sweepwise.runtime.ray_gang"

STRATEGIES = ("STRICT_SPREAD", "SPREAD", "STRICT_PACK", "PACK")
MODES = ("auto", "task", "job")
"""How jobs run: `task`s, Ray `job`s, or `auto` (Python callables as tasks, commands as jobs)."""
_CALLABLE_RUNNERS = ("sweepwise.runtime.call", "sweepwise.ax.run_function")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_OWN_ENV = PROTOCOL_ENV | {PLACEMENT_ENV, NUM_NODES_ENV, HEAD_ADDR_ENV}


@dataclass(frozen=True, slots=True)
class RayOptions:
    """The dispatcher's options, checked (see `RayDispatcher` for each one's meaning)."""

    num_cpus: float = 1.0
    resources: dict[str, float] = field(default_factory=dict)
    runtime_env: dict[str, Any] = field(default_factory=dict)
    remote_runs_dir: str | None = None
    python: str = "python"
    placement_strategy: str = "STRICT_SPREAD"
    mode: str = "auto"


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """The placement group of a job on several nodes: one bundle per node."""

    bundles: list[dict[str, float]]
    strategy: str

    def to_json(self) -> str:
        """As `PLACEMENT_ENV` carries it."""
        return json.dumps({"bundles": self.bundles, "strategy": self.strategy}, sort_keys=True)


@dataclass(frozen=True, slots=True)
class RaySubmission:
    """One job's `JobSubmissionClient.submit_job` request."""

    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    entrypoint_num_cpus: float
    entrypoint_num_gpus: float | None = None
    entrypoint_resources: dict[str, float] | None = None
    placement: PlacementRequest | None = None

    def request(self) -> dict[str, Any]:
        """The keywords of `submit_job` but `submission_id`."""
        return {
            "entrypoint": self.entrypoint,
            "runtime_env": self.runtime_env,
            "metadata": self.metadata,
            "entrypoint_num_cpus": self.entrypoint_num_cpus,
            "entrypoint_num_gpus": self.entrypoint_num_gpus,
            "entrypoint_resources": self.entrypoint_resources,
        }


def _number(name: str, value: Any, *, positive: bool = False) -> float:
    bad = isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    if bad or value < 0 or (positive and value == 0):
        expected = "a number > 0" if positive else "a number >= 0"
        raise ConfigError(f"dispatcher.{name}", f"expected {expected}, got {value!r}")
    return float(value)


def _str_map(name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise ConfigError(f"dispatcher.{name}", f"expected a mapping of names to strings, got {value!r}")
    return dict(value)


def _runtime_env(value: Any) -> dict[str, Any]:
    """The `runtime_env` option, checked by Ray's own `RuntimeEnv`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("dispatcher.runtime_env", f"expected a mapping (Ray's runtime_env), got {value!r}")
    runtime_env = dict(value)
    env_vars = _str_map("runtime_env.env_vars", runtime_env.get("env_vars"))
    if own := sorted(_OWN_ENV & set(env_vars)):
        raise ConfigError("dispatcher.runtime_env.env_vars", f"{own[0]} is sweepwise's own; remove it")
    try:
        from ray.runtime_env import RuntimeEnv

        RuntimeEnv(**runtime_env)
    except ImportError:
        pass  # connecting says Ray is missing
    except Exception as exc:  # Ray raises TypeError, ValueError, its own errors
        text = str(exc).strip().splitlines()
        raise ConfigError("dispatcher.runtime_env", f"Ray refuses it: {text[0] if text else exc}") from None
    return runtime_env


def parse_options(
    *,
    num_cpus: Any = 1,
    resources: Any = None,
    runtime_env: Any = None,
    remote_runs_dir: Any = None,
    python: Any = None,
    placement_strategy: Any = None,
    mode: Any = "auto",
) -> RayOptions:
    """Check the spec's options and gather them.

    Raises:
        ConfigError: an option is wrong (one line naming it).
    """
    amounts: dict[str, float] = {}
    if resources is not None and not isinstance(resources, Mapping):
        raise ConfigError(
            "dispatcher.resources", f"expected a mapping of resource names to amounts, got {resources!r}"
        )
    for name, amount in (resources or {}).items():
        if name in ("CPU", "GPU"):
            raise ConfigError(
                f"dispatcher.resources.{name}",
                "is set by num_cpus (per job) and the job's gpus; remove it here",
            )
        amounts[str(name)] = _number(f"resources.{name}", amount)
    for name, text in (("remote_runs_dir", remote_runs_dir), ("python", python)):
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise ConfigError(f"dispatcher.{name}", f"expected a non-empty string, got {text!r}")
    strategy = "STRICT_SPREAD" if placement_strategy is None else placement_strategy
    if strategy not in STRATEGIES:
        raise ConfigError(
            "dispatcher.placement_strategy", f"expected one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    if mode not in MODES:
        raise ConfigError("dispatcher.mode", f"expected one of {', '.join(MODES)}, got {mode!r}")
    return RayOptions(
        mode=mode,
        num_cpus=_number("num_cpus", num_cpus),
        resources=amounts,
        runtime_env=_runtime_env(runtime_env),
        remote_runs_dir=remote_runs_dir.strip() if isinstance(remote_runs_dir, str) else None,
        python=python.strip() if isinstance(python, str) else "python",
        placement_strategy=strategy,
    )


def is_python_callable(job: JobDefinition) -> bool:
    """Whether `job` calls a Python function: a recipe's entrypoint, or the Ax facade's function objective."""
    from sweepwise.dispatchers.launch import entrypoint_target

    if entrypoint_target(job.cmd, job.cwd) is not None:
        return True
    words = job.cmd.split() if isinstance(job.cmd, str) else list(job.cmd)
    return any(words[i] == "-m" and words[i + 1] in _CALLABLE_RUNNERS for i in range(len(words) - 1))


def route(job: JobDefinition, mode: str) -> str:
    """`task` or `job`: how the job runs on Ray under `mode` (a job on several nodes is always a Ray job)."""
    if job.nodes > 1 or mode == "job":
        return "job"
    return "task" if mode == "task" or is_python_callable(job) else "job"


def task_request(submission: RaySubmission, job: JobDefinition, options: RayOptions) -> dict[str, Any]:
    """The options of the Ray task that runs `job` (`RemoteFunction.options`), from its job submission."""
    request: dict[str, Any] = {"num_cpus": submission.entrypoint_num_cpus}
    if job.gpus:
        request["num_gpus"] = float(job.gpus)
    if options.resources:
        request["resources"] = dict(options.resources)
    if options.runtime_env:
        request["runtime_env"] = dict(options.runtime_env)
    return request


def id_prefix(experiment: str, incarnation: str | None) -> str:
    """What every submission id of this experiment (incarnation) starts with: `sweepwise-<exp>-<inc>-`."""
    short = re.sub(r"[^A-Za-z0-9]", "", incarnation or "")[:8]
    return f"sweepwise-{experiment}-{short}-" if short else f"sweepwise-{experiment}-"


def submission_id(prefix: str, run_id: str, stem: str) -> str:
    """The job's submission id: `<prefix><run id>-<stem>` (`train`, `eval`, `train.2`).

    Raises:
        ConfigError: the id has characters Ray's URLs and log file names cannot take.
    """
    value = f"{prefix}{run_id}-{stem}"
    if not _ID.fullmatch(value):
        raise ConfigError(
            "experiment",
            f"the Ray submission id {value!r} (sweepwise-<experiment>-<incarnation>-<run id>-<job>) may "
            "hold only letters, digits, '.', '-' and '_'; rename the experiment",
        )
    return value


def parse_submission_id(prefix: str, value: str) -> tuple[str, str] | None:
    """`(run id, stem)` of a submission id made by `submission_id`; None when it is not one."""
    if not value.startswith(prefix):
        return None
    run_id, _, stem = value[len(prefix) :].rpartition("-")
    return (run_id, stem) if run_id and parse_stem(stem) is not None else None


def placement_request(job: JobDefinition, options: RayOptions) -> PlacementRequest:
    """The placement group of a job on `job.nodes` nodes: per node its CPUs, GPUs and resources."""
    bundle = {"CPU": options.num_cpus, **({"GPU": float(job.gpus)} if job.gpus else {}), **options.resources}
    bundle = {name: amount for name, amount in bundle.items() if amount > 0}
    return PlacementRequest([dict(bundle) for _ in range(job.nodes)], options.placement_strategy)


def build_submission(
    job: JobDefinition,
    *,
    submission_id: str,
    experiment: str,
    runs_root: str,
    incarnation: str | None,
    options: RayOptions,
) -> RaySubmission:
    """The request that runs `job` as the Ray job `submission_id`.

    The entrypoint is fixed (`python -m sweepwise.runtime.remote`); the job travels in
    `runtime_env.env_vars`. A job on one node reserves its CPUs (`num_cpus`), GPUs
    (`gpus`) and custom resources for its entrypoint; a job on several runs
    `python -m sweepwise.runtime.ray_gang`, which reserves a placement group of one
    such bundle per node and runs the job on each.

    Args:
        job: the job.
        submission_id: its submission id (`submission_id`).
        experiment: the experiment's name.
        runs_root: where the job's run directory is made on the node.
        incarnation: the experiment's incarnation id (in the job's metadata).
        options: the dispatcher's options.
    """
    env_vars: dict[str, str] = dict(options.runtime_env.get("env_vars") or {})
    # The job's env values (filled in by the controller); a name the spec no longer gives stays out.
    env_vars.update({name: value for name, value in job.env.items() if value != NOT_RECORDED})
    env_vars.update(
        {
            JOB_ENV: job.recorded().model_dump_json(),
            RUNS_ROOT_ENV: runs_root,
            "SWEEPWISE_EXPERIMENT": experiment,
            "SWEEPWISE_RUN_ID": job.run_id,
            "SWEEPWISE_JOB_TYPE": job.type.short,
            "SWEEPWISE_ATTEMPT": str(job.attempt),
        }
    )
    if job.cwd and "working_dir" not in options.runtime_env:
        env_vars[CWD_ENV] = job.cwd  # the spec's directory, on a filesystem the node shares
    placement = placement_request(job, options) if job.nodes > 1 else None
    if placement is not None:
        env_vars[PLACEMENT_ENV] = placement.to_json()
    runtime_env = {**options.runtime_env, "env_vars": env_vars}
    metadata = {
        "sweepwise_experiment": experiment,
        "sweepwise_run_id": job.run_id,
        "sweepwise_job": submission_id.rpartition("-")[2],
        "sweepwise_incarnation": incarnation or "",
    }
    python = shlex.quote(options.python)
    if placement is not None:
        return RaySubmission(
            submission_id,
            f"{python} -m {GANG_RUNNER}",
            runtime_env,
            metadata,
            entrypoint_num_cpus=0.0,  # the bundles hold the job's resources
            placement=placement,
        )
    return RaySubmission(
        submission_id,
        f"{python} -m {REMOTE_RUNNER}",
        runtime_env,
        metadata,
        entrypoint_num_cpus=options.num_cpus,
        entrypoint_num_gpus=float(job.gpus) if job.gpus else None,
        entrypoint_resources=dict(options.resources) or None,
    )


__all__ = [
    "GANG_RUNNER",
    "MODES",
    "REMOTE_RUNNER",
    "STRATEGIES",
    "PlacementRequest",
    "RayOptions",
    "RaySubmission",
    "build_submission",
    "id_prefix",
    "is_python_callable",
    "parse_options",
    "parse_submission_id",
    "placement_request",
    "route",
    "submission_id",
    "task_request",
]
