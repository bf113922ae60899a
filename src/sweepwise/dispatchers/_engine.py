"""The engine interface: the few steps a remote backend (SLURM, Ray, ...) writes to run sweepwise's jobs.

A remote dispatcher keeps the local dispatcher's crash-safe file protocol and changes only
where the supervisor runs and who vouches that it is alive. `EngineDispatcher`
(`sweepwise.dispatchers._engine_dispatcher`) does everything that does not depend on the engine:

- the claim `<job>.dispatch.json` and its token (`sweepwise.dispatchers._claims`): a job is
  started by at most one supervisor per (run, job, attempt), and `dispatch` is idempotent;
- the launch file `<job>.launch.json` (argv, cwd, limits, token; parameter values never pass
  through a shell) and the supervisor command that reads it, `python -m sweepwise.runtime.batch
  <launch file>`, which runs the job on a node and records its life in `<job>.status.json`
  (the run directory is on a filesystem the nodes share with the controller);
- the events those files give (`sweepwise.dispatchers._job_files`): started, heartbeats,
  metrics, finished with exit code and result;
- reattaching after a restart (`find`, `reattach`), `cancel` (the `<job>.cancel` marker, then
  the engine's cancel), and the verdict on a job whose supervisor is gone without a final
  status, judged from the engine's word and written to the status file so every later
  reader sees the same (docs/design.md, "Liveness from evidence").

An `Engine` supplies the rest — four methods and two attributes:

- `name`: the engine's name in messages (`"SLURM"`).
- `status_env`: status fields the supervisor copies from its environment on the node, e.g.
  `{"engine_id": "SLURM_JOB_ID", "engine_run": "SLURM_RESTART_COUNT"}`. `engine_id` lets a
  restarted controller find a job whose claim lacks the engine's id; `engine_run` (how often
  the engine had restarted the job when this supervisor started) tells a requeued job from
  the run that holds the job.
- `submit(job) -> engine id`: start `job.command` (the supervisor) with `job.env` added to its
  environment, named `job.name` and tagged with `job.claim_id` so `lookup` can tell it from
  another job of that name; resources come from `job.job` (gpus, nodes, timeout). Raises
  `DispatchError` when the engine refuses.
- `states(engine_ids) -> {engine id: EngineState}`: what the engine says of each job; a job it
  does not know is left out; None when the engine could not be asked (no verdict is drawn then).
- `lookup(name, claim_id) -> engine id | None`: the job of that name and claim, for a claim
  written before `submit` returned. Raises `DispatchError` when the engine cannot be asked
  (a claim is never taken over on a guess).
- `cancel(engine_id)`: stop the job, queued or running; no error when it has already ended.

The engine runs the supervisor once; when it runs it again (a requeue), the second run finds
the claim's token gone and starts nothing (`sweepwise.runtime.batch`), and the dispatcher
reports the first run's end as lost, so the lifecycle retries it as a new attempt.

A backend plugs in as `SlurmDispatcher` does (`sweepwise.dispatchers.slurm`): a registered
subclass of `EngineDispatcher` whose constructor takes `(runs_root, experiment, *,
incarnation=None, **its options)` and passes its engine to `EngineDispatcher.__init__`.
`LocalDispatcher` shares the claim protocol and the files-to-events translation but keeps its
own engine steps (a job host or a supervisor process per job, liveness from pids and pidfds,
signals), which is what lets it wake the moment a job ends.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sweepwise.core.models import JobDefinition
from sweepwise.dispatchers.launch import LaunchPlan


class Phase(enum.StrEnum):
    """Where an engine's job is in its life."""

    QUEUED = "queued"  # waiting: for resources, held, suspended, requeued and waiting again
    RUNNING = "running"  # its supervisor runs (or is being stopped)
    ENDED = "ended"  # over; `EngineState.end` says how


class EngineEnd(enum.StrEnum):
    """How an engine says a job ended, as the lifecycle needs it."""

    DONE = "done"  # ended by itself: the job's status file has its exit code
    CANCELLED = "cancelled"  # cancelled in the engine
    TIMEOUT = "timeout"  # stopped at the engine's time limit
    LOST = "lost"  # preempted, its node failed or never booted: run it again
    FAILED = "failed"  # stopped for a reason that would recur (out of memory)


@dataclass(frozen=True, slots=True)
class EngineState:
    """What an engine says of one job.

    Attributes:
        phase: queued, running or ended.
        end: how it ended (None unless `phase` is ENDED).
        detail: the engine's own words, for messages (`"PREEMPTED"`, `"TIMEOUT (TimeLimit)"`).
        restarts: how often the engine restarted (requeued) the job.
    """

    phase: Phase
    end: EngineEnd | None = None
    detail: str = ""
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class EngineJob:
    """One job for `Engine.submit`.

    Attributes:
        name: the engine's name for the job, `<experiment>.<run_id>.<job>` (`job`: `train`,
            `eval`, `train.2`): reattaching looks it up.
        claim_id: the id of the job's claim; tag the engine's job with it.
        command: what to run on a node: the supervisor, which reads the launch file.
        env: variables to add to the command's environment (the job's own `env` and the
            `SWEEPWISE_*` variables); they are not written to the run directory.
        plan: the job's launch plan (its run dir, `log_path` for the engine's own output).
        job: the job definition (gpus, nodes, timeout).
        kill_grace: seconds the supervisor gives a job past its timeout before SIGKILL.
    """

    name: str
    claim_id: str
    command: list[str]
    env: dict[str, str]
    plan: LaunchPlan
    job: JobDefinition
    kill_grace: float


class Engine(Protocol):
    """The engine-specific steps of a remote dispatcher (see the module docstring)."""

    name: str
    status_env: Mapping[str, str]

    def submit(self, job: EngineJob) -> str:
        """Start `job.command` as the engine's job `job.name`; return the engine's id for it."""
        ...

    def states(self, engine_ids: Sequence[str]) -> Mapping[str, EngineState] | None:
        """What the engine says of these jobs (unknown ones left out); None if it could not be asked."""
        ...

    def lookup(self, name: str, claim_id: str) -> str | None:
        """The engine id of the job named `name` and tagged with `claim_id`, if the engine has one."""
        ...

    def cancel(self, engine_id: str) -> None:
        """Stop the job (queued or running); no error when it has ended."""
        ...


__all__ = ["Engine", "EngineEnd", "EngineJob", "EngineState", "Phase"]
