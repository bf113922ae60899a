"""`SlurmRunner`: seed 001's SLURM runner, as a `DispatcherRunner` over `SlurmDispatcher`.

An Ax loop moves from this machine to a cluster by changing the runner:
`AxScheduler(client, JobLibRunner(n_jobs=4))` becomes
`AxScheduler(client, SlurmRunner(partition="gpu", max_jobs=8))`. Each trial is one SLURM
batch job, run by sweepwise's supervisor (docs/backends.md, "SLURM"); functions are
cloudpickled into the trial's directory and run by `python -m sweepwise.ax.run_function`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweepwise.ax.base_runner import JobOutcome, TrialJob
from sweepwise.ax.runners import DispatcherRunner
from sweepwise.core.errors import ConfigError
from sweepwise.core.models import JobDefinition
from sweepwise.core.protocols import Clock

if TYPE_CHECKING:
    from sweepwise.dispatchers.slurm import SlurmDispatcher

CONFIG_KEYS = ("modules", "python_path", "conda_env", "init_env", "job_dir")
"""The `config` keys of the seed's `SlurmRunner`, all understood here."""

DEFAULT_MAX_JOBS = 4
"""Trials in SLURM at once by default: enough to keep a few nodes busy, few enough that
Ax's later trials still learn from the earlier ones (Ax's own BO steps default to 3)."""


def _lines(config: Mapping[str, Any], key: str) -> list[str]:
    value = config.get(key) or []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"config.{key}", f"expected a list of strings, got {value!r}")
    return list(value)


def setup_lines(config: Mapping[str, Any]) -> list[str]:
    """The batch script's setup lines from the seed's config, in the seed's order.

    `module load` for each of `modules`, the `init_env` lines as written, then
    `conda activate <conda_env>`.

    Raises:
        ConfigError: a key holds something other than a string or a list of strings.
    """
    lines = [f"module load {module}" for module in _lines(config, "modules")]
    lines += _lines(config, "init_env")
    conda = config.get("conda_env")
    if conda is not None:
        if not isinstance(conda, str) or not conda.strip():
            raise ConfigError("config.conda_env", f"expected an environment name, got {conda!r}")
        lines.append(f"conda activate {conda}")
    return lines


class SlurmRunner(DispatcherRunner):
    """Runs each trial as a SLURM batch job; the seed's `SlurmRunner`, same signature.

    The trial's directory (under the scheduler's `job_output_dir`) is the job's run
    directory: it must be on a filesystem the compute nodes share. The SLURM dispatcher
    is made at the first trial, rooted at that directory's grandparent.

    Args:
        name: a label for the runner (the seed's; SLURM job names are sweepwise's
            `<experiment>.<run id>.train`).
        partition: `--partition`.
        time_limit: `--time`, `[D-]HH:MM:SS` or minutes.
        memory: `--mem` (memory per node; the seed asked `--mem-per-cpu`, the same
            for its default of one CPU).
        cpus_per_task: `--cpus-per-task`.
        nodes: `--nodes` of each trial's job.
        ntasks_per_node: `--ntasks-per-node`.
        account: `--account`.
        qos: `--qos` (an extra `#SBATCH` line).
        config: the seed's keys: `modules` (each loaded with `module load`), `init_env`
            (shell lines run before the job), `conda_env` (activated), `python_path`
            (the interpreter on the nodes that runs the supervisor, function objectives
            and `.py` scripts; default this one, which must then exist on the nodes),
            `job_dir` (where jobs given to `run_job` without a working directory run,
            default `~/slurm_jobs`).
        max_jobs: how many trials may be in SLURM (queued or running) at once
            (`DEFAULT_MAX_JOBS`, 4).
        poll_interval: seconds between two `squeue` calls.
        sbatch_lines: more sbatch options (`--constraint=a100`).
        clock: where times come from (default: the real clock).

    Raises:
        ConfigError: an unknown `config` key or an invalid option (the field is named).
    """

    def __init__(
        self,
        name: str | None = None,
        partition: str = "batch",
        time_limit: str = "01:00:00",
        memory: str = "4G",
        cpus_per_task: int = 1,
        nodes: int = 1,
        ntasks_per_node: int = 1,
        account: str | None = None,
        qos: str | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        max_jobs: int = DEFAULT_MAX_JOBS,
        poll_interval: float = 10.0,
        sbatch_lines: Sequence[str] = (),
        clock: Clock | None = None,
    ) -> None:
        settings = dict(config or {})
        unknown = sorted(set(settings) - set(CONFIG_KEYS))
        if unknown:
            keys = ", ".join(CONFIG_KEYS)
            raise ConfigError(f"config.{unknown[0]}", f"unknown key; valid keys are: {keys}")
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
            raise ConfigError("nodes", f"expected a whole number >= 1, got {nodes!r}")
        python = settings.get("python_path")
        if python is not None and (not isinstance(python, str) or not python.strip()):
            raise ConfigError("config.python_path", f"expected an interpreter path, got {python!r}")
        from sweepwise.dispatchers.slurm import SlurmEngine

        options: dict[str, Any] = {
            "partition": partition,
            "account": account,
            "mem": memory,
            "cpus_per_task": cpus_per_task,
            "ntasks_per_node": ntasks_per_node,
            "time_limit": time_limit,
            "sbatch_lines": [*sbatch_lines, *([f"--qos={qos}"] if qos else [])],
            "setup": setup_lines(settings),
        }
        SlurmEngine(**options)  # checks every option now, not at the first trial
        self._options = options
        self._poll_interval = poll_interval
        self._root: tuple[Path, str] | None = None
        # DispatcherRunner's dispatcher is set at the first trial (`_definition`).
        super().__init__(None, max_jobs, clock=clock, python=python)  # type: ignore[arg-type]
        self.config = {"tmp_dir": os.path.expanduser(str(settings.get("job_dir") or "~/slurm_jobs"))}
        self.name = name or "slurm_runner"
        self.partition = partition
        self.time_limit = time_limit
        self.memory = memory
        self.cpus_per_task = cpus_per_task
        self.nodes = nodes
        self.ntasks_per_node = ntasks_per_node
        self.account = account
        self.qos = qos

    def _slurm(self, workdir: Path) -> SlurmDispatcher:
        """The dispatcher whose run directory for a trial is its `workdir`, made on first use."""
        root = (workdir.parent.parent, workdir.parent.name)
        if self._root is None:
            from sweepwise.dispatchers.slurm import SlurmDispatcher

            python = self.python
            self.dispatcher = SlurmDispatcher(
                root[0], root[1], poll_interval=self._poll_interval, python=python, **self._options
            )
            self._root = root
        elif root != self._root:
            raise ConfigError(
                "workdir",
                f"{workdir} is not under {self._root[0] / self._root[1]}, where this runner's jobs run; "
                "use one SlurmRunner per experiment",
            )
        return self.dispatcher  # type: ignore[return-value]

    def _definition(self, job: TrialJob) -> JobDefinition:
        self._slurm(job.workdir)
        definition = super()._definition(job)
        return definition.model_copy(update={"nodes": self.nodes})

    def poll(self) -> list[JobOutcome]:
        """The trials that ended since the last poll (none before the first trial)."""
        return super().poll() if self._root is not None else []

    def wait(self, timeout: float) -> None:
        """Wait on the SLURM dispatcher (or let `timeout` pass before the first trial)."""
        if self._root is None:
            self._clock.sleep(timeout)
        else:
            super().wait(timeout)

    def cancel(self, dispatch_id: str) -> None:
        """`scancel` a trial's job (no error if it has ended)."""
        if self._root is not None:
            super().cancel(dispatch_id)

    def close(self) -> None:
        """Close the SLURM dispatcher (jobs still in SLURM go on)."""
        if self._root is not None:
            super().close()


__all__ = ["CONFIG_KEYS", "DEFAULT_MAX_JOBS", "SlurmRunner", "setup_lines"]
