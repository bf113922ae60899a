"""The SLURM dispatcher: each job a SLURM batch job running sweepwise's supervisor on a node.

The run directory must be on a filesystem the nodes share with the controller: the batch
script, the launch file, the job's log, status, metrics and result all live there, and the
controller reads them as the local dispatcher does (docs/backends.md, "SLURM"). What SLURM
adds is the word on jobs that wait or are gone: `squeue` (which lists a finished job for
`MinJobAge` seconds, 300 by default) says queued, running or how it ended.

Per job `<run_dir>/<job>.sbatch` is submitted with `sbatch --parsable`; its job name is
`<experiment>.<run_id>.<job>` (`job`: `train`, `eval`, `train.2`...), its comment
`sweepwise:<claim id>`, and its output is appended to the job's log. The script runs the
`setup` lines, then `python -m sweepwise.runtime.batch <run_dir>/<job>.launch.json`: the
job's argv is in that file, never in the script. The job's environment (its `env` and the
`SWEEPWISE_*` variables) goes through sbatch's own environment (`--export=ALL`).

SLURM's states, as the lifecycle sees them: PENDING, CONFIGURING, REQUEUED, held or
suspended jobs wait; RUNNING and COMPLETING run; PREEMPTED, NODE_FAIL, BOOT_FAIL and
REVOKED are lost (and retried); TIMEOUT and DEADLINE time out; OUT_OF_MEMORY fails with that
reason; CANCELLED is cancelled. A job SLURM requeues is followed: its first run's end is
lost (retried as a new attempt); its next run starts nothing (`sweepwise.runtime.batch`) and
is cancelled.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sweepwise.core.errors import ConfigError, DispatchError
from sweepwise.core.models import JobDefinition
from sweepwise.dispatchers import register_dispatcher
from sweepwise.dispatchers._engine import EngineEnd, EngineJob, EngineState, Phase
from sweepwise.dispatchers._engine_dispatcher import EngineDispatcher
from sweepwise.dispatchers.launch import build_launch

SCRIPT = "sbatch"
"""The kind of `<job>.sbatch`, the batch script of a job."""

_COMMAND_TIMEOUT = 60.0  # seconds a SLURM command may take before it counts as failed
_UNKNOWN_JOB = "Invalid job id specified"

_QUEUED = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESV_DEL_HOLD",
    "SPECIAL_EXIT",
    "SUSPENDED",
    "STOPPED",
}
_RUNNING = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING"}
_ENDS = {
    "COMPLETED": EngineEnd.DONE,
    "FAILED": EngineEnd.DONE,  # the batch script exited non-zero: the job's status says why
    "CANCELLED": EngineEnd.CANCELLED,
    "TIMEOUT": EngineEnd.TIMEOUT,
    "DEADLINE": EngineEnd.TIMEOUT,
    "PREEMPTED": EngineEnd.LOST,
    "NODE_FAIL": EngineEnd.LOST,
    "BOOT_FAIL": EngineEnd.LOST,
    "REVOKED": EngineEnd.LOST,
    "OUT_OF_MEMORY": EngineEnd.FAILED,
}
_TIME = re.compile(r"\d+|\d+:\d{2}(:\d{2})?|\d+-\d+(:\d{2}(:\d{2})?)?")


def slurm_state(state: str, reason: str = "", restarts: int = 0) -> EngineState:
    """What a SLURM job state (`squeue -O State`) means to sweepwise.

    Args:
        state: e.g. `RUNNING`, `PREEMPTED`, `OUT_OF_MEMORY`; an unknown one counts as running.
        reason: SLURM's reason (`TimeLimit`, `BeginTime`, `None`), for messages.
        restarts: how often SLURM restarted (requeued) the job.
    """
    detail = state if reason in ("", "None", "(null)") else f"{state} ({reason})"
    if state in _QUEUED:
        return EngineState(Phase.QUEUED, None, detail, restarts)
    end = _ENDS.get(state)
    if end is None:
        return EngineState(Phase.RUNNING, None, detail, restarts)
    return EngineState(Phase.ENDED, end, detail, restarts)


def parse_squeue(text: str) -> dict[str, EngineState]:
    """`squeue --noheader -O JobID:|,State:|,Reason:|,RestartCnt:|` output, by job id."""
    states: dict[str, EngineState] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 4 or not fields[0].strip():
            continue
        job_id, state, reason, restarts = (field.strip() for field in fields[:4])
        states[job_id] = slurm_state(state, reason, int(restarts) if restarts.isdigit() else 0)
    return states


def _run(argv: list[str], env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a SLURM command; DispatchError when it is missing or hangs."""
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise DispatchError(
            f"{argv[0]} not found: run sweepwise on a SLURM login node (SLURM's commands on PATH)"
        ) from None
    except subprocess.TimeoutExpired:
        raise DispatchError(f"{argv[0]} did not answer within {_COMMAND_TIMEOUT:g} s") from None


def _sbatch_value(field: str, value: Any) -> str:
    """A value for an `#SBATCH --flag=VALUE` line: quoted when it holds spaces."""
    text = str(value)
    if not text or "\n" in text or '"' in text:
        raise ConfigError(field, f"{text!r} cannot be an sbatch option value (empty, a newline or a quote)")
    return f'"{text}"' if any(char.isspace() for char in text) else text


def _time_limit(value: Any) -> str:
    """The `time_limit` option as sbatch's `--time`: minutes, or `[D-]HH:MM[:SS]` as written."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError("dispatcher.time_limit", f"expected minutes or [D-]HH:MM:SS, got {value!r}")
    if isinstance(value, int | float):
        if not value > 0 or not math.isfinite(value):
            raise ConfigError("dispatcher.time_limit", f"expected minutes > 0, got {value!r}")
        return str(math.ceil(value))
    if not _TIME.fullmatch(value.strip()):
        raise ConfigError("dispatcher.time_limit", f"{value!r} is not a SLURM time (minutes, [D-]HH:MM:SS)")
    return value.strip()


class SlurmEngine:
    """The SLURM steps of `EngineDispatcher`: sbatch, squeue, scancel (see `sweepwise.dispatchers._engine`).

    Args:
        partition, account, mem, cpus_per_task, ntasks_per_node, time_limit, gpu_flag,
        gpu_type, sbatch_lines, setup: see `SlurmDispatcher`.
    """

    name = "SLURM"
    status_env: Mapping[str, str] = {"engine_id": "SLURM_JOB_ID", "engine_run": "SLURM_RESTART_COUNT"}

    def __init__(
        self,
        *,
        partition: str | None = None,
        account: str | None = None,
        mem: str | int | None = None,
        cpus_per_task: int | None = None,
        ntasks_per_node: int = 1,
        time_limit: int | float | str | None = None,
        gpu_flag: str = "gpus",
        gpu_type: str | None = None,
        sbatch_lines: Sequence[str] = (),
        setup: str | Sequence[str] = (),
    ) -> None:
        if gpu_flag not in ("gpus", "gres"):
            raise ConfigError("dispatcher.gpu_flag", f"expected gpus or gres, got {gpu_flag!r}")
        for field, number in (("cpus_per_task", cpus_per_task), ("ntasks_per_node", ntasks_per_node)):
            if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 1):
                raise ConfigError(f"dispatcher.{field}", f"expected a whole number >= 1, got {number!r}")
        flags: list[str] = []
        for field, value in (("partition", partition), ("account", account), ("mem", mem)):
            if value is not None:
                flags.append(f"--{field}={_sbatch_value(f'dispatcher.{field}', value)}")
        if cpus_per_task is not None:
            flags.append(f"--cpus-per-task={cpus_per_task}")
        self._flags = flags
        self._ntasks_per_node = ntasks_per_node
        self._time_limit = _time_limit(time_limit) if time_limit is not None else None
        self._gpu_flag = gpu_flag
        self._gpu_type = _sbatch_value("dispatcher.gpu_type", gpu_type) if gpu_type else None
        lines = [sbatch_lines] if isinstance(sbatch_lines, str) else list(sbatch_lines)
        self._extra: list[str] = []
        for line in lines:
            text = str(line).strip()
            if not text or "\n" in text:
                raise ConfigError("dispatcher.sbatch_lines", f"{line!r} is not one sbatch option")
            self._extra.append(text if text.startswith("#SBATCH") else f"#SBATCH {text}")
        self._setup = [setup] if isinstance(setup, str) else [str(line) for line in setup]

    # -- submitting --------------------------------------------------------------------

    def script(self, job: EngineJob) -> str:
        """The batch script of `job` (what `submit` writes to `<run_dir>/<job>.sbatch`)."""
        spec = job.job
        plan = job.plan
        lines = [
            "#!/bin/bash",
            f"# sweepwise: the {plan.job_name} job of run {spec.run_id}; its argv is in the launch file",
            f"#SBATCH --job-name={_sbatch_value('name', job.name)}",
            f"#SBATCH --comment=sweepwise:{job.claim_id}",
            f"#SBATCH --output={_sbatch_value('runs_dir', plan.log_path)}",
            "#SBATCH --open-mode=append",
            f"#SBATCH --chdir={_sbatch_value('runs_dir', plan.run_dir)}",
            "#SBATCH --export=ALL",
            f"#SBATCH --nodes={spec.nodes}",
            f"#SBATCH --ntasks-per-node={self._ntasks_per_node}",
            *(f"#SBATCH {flag}" for flag in self._flags),
        ]
        limit = self._time_limit
        if limit is None and spec.timeout is not None:  # rounded up, plus the supervisor's kill grace
            limit = str(max(1, math.ceil((spec.timeout + job.kill_grace) / 60)))
        if limit is not None:
            lines.append(f"#SBATCH --time={limit}")
        if spec.gpus > 0:
            kind = f"{self._gpu_type}:" if self._gpu_type else ""
            if self._gpu_flag == "gres":  # per node
                lines.append(f"#SBATCH --gres=gpu:{kind}{math.ceil(spec.gpus / spec.nodes)}")
            else:  # for the whole job
                lines.append(f"#SBATCH --gpus={kind}{spec.gpus}")
        lines += self._extra
        lines += self._setup
        lines.append("exec " + shlex.join(job.command))
        return "\n".join(lines) + "\n"

    def submit(self, job: EngineJob) -> str:
        """Write the job's batch script and submit it with `sbatch --parsable`; return SLURM's job id.

        Raises:
            DispatchError: sbatch is missing, hangs or refuses the job.
        """
        path = Path(job.plan.run_dir) / f"{job.plan.job_name}.{SCRIPT}"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.script(job))
        os.replace(tmp, path)
        result = _run(["sbatch", "--parsable", str(path)], env={**os.environ, **job.env})
        job_id = result.stdout.strip().split(";")[0]
        if result.returncode != 0 or not job_id.isdigit():
            raise DispatchError(
                f"sbatch refused the {job.plan.job_name} job of run {job.job.run_id} "
                f"(exit code {result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
            )
        return job_id

    # -- asking ------------------------------------------------------------------------

    def states(self, engine_ids: Sequence[str]) -> dict[str, EngineState] | None:
        """SLURM's word on these jobs from one `squeue` (finished ones too, while SLURM lists them)."""
        if not engine_ids:
            return {}
        result = _run(
            [
                "squeue",
                "--noheader",
                "--states=all",
                f"--jobs={','.join(engine_ids)}",
                "--Format=JobID:|,State:|,Reason:|,RestartCnt:|",
            ]
        )
        if result.returncode != 0:
            if _UNKNOWN_JOB in result.stderr:
                return {}  # SLURM knows none of them any more
            return None
        return parse_squeue(result.stdout)

    def lookup(self, name: str, claim_id: str) -> str | None:
        """The id of the job named `name` whose comment names `claim_id` (from `squeue --name`).

        Raises:
            DispatchError: squeue failed.
        """
        query = ["squeue", "--noheader", "--states=all", f"--name={name}", "--Format=JobID:|,Comment:|"]
        result = _run(query)
        if result.returncode != 0:
            raise DispatchError(f"squeue cannot look up job {name!r}: {result.stderr.strip()}")
        for line in result.stdout.splitlines():
            job_id, _, rest = line.partition("|")
            if rest.split("|")[0].strip() == f"sweepwise:{claim_id}":
                return job_id.strip()
        return None

    def cancel(self, engine_id: str) -> None:
        """`scancel` the job; no error when SLURM has ended or forgotten it.

        Raises:
            DispatchError: scancel failed otherwise.
        """
        result = _run(["scancel", engine_id])
        if result.returncode != 0 and _UNKNOWN_JOB not in result.stderr:
            raise DispatchError(f"scancel {engine_id} failed: {result.stderr.strip()}")


@register_dispatcher("slurm")
class SlurmDispatcher(EngineDispatcher):
    """Runs each job as a SLURM batch job under sweepwise's supervisor.

    Not thread-safe: one controller thread drives it. The options are the spec's
    `dispatcher:` mapping (`dispatcher: {type: slurm, partition: gpu, ...}`).

    Args:
        runs_root: the root of the run directories, on a filesystem shared with the nodes.
        experiment: the experiment's name; runs live in `<runs_root>/<experiment>/`.
        incarnation: the experiment's incarnation id, written in every claim and status.
        partition: `--partition` (default: the cluster's default partition).
        account: `--account`.
        time_limit: `--time`, in minutes or as `[D-]HH:MM:SS` (default: the job's `timeout`
            plus `grace_period`, rounded up to minutes; none without a timeout).
        mem: `--mem` (e.g. `16G`).
        cpus_per_task: `--cpus-per-task`.
        ntasks_per_node: `--ntasks-per-node` (1 by default; `--nodes` is the job's `nodes`).
        gpu_flag: how the job's `gpus` are asked for: `gpus` (`--gpus=N` for the whole job,
            the default) or `gres` (`--gres=gpu:N` per node, N = gpus / nodes rounded up).
        gpu_type: a GPU type for either flag (`--gpus=a100:2`).
        sbatch_lines: more sbatch options, one per line (`--qos=high` or `#SBATCH --qos=high`).
        setup: shell lines the script runs before the job (`module load cuda`, `conda activate x`).
        poll_interval: seconds between two `squeue` calls (one for all jobs).
        heartbeat_interval: seconds between the supervisor's heartbeats.
        grace_period: seconds the supervisor gives a job past its `timeout` before SIGKILL.
        python: the interpreter that runs the supervisor on the nodes (default: this one).

    Raises:
        ConfigError: an option is invalid (named in the error).
    """

    def __init__(
        self,
        runs_root: Path,
        experiment: str,
        *,
        incarnation: str | None = None,
        partition: str | None = None,
        account: str | None = None,
        time_limit: int | float | str | None = None,
        mem: str | int | None = None,
        cpus_per_task: int | None = None,
        ntasks_per_node: int = 1,
        gpu_flag: str = "gpus",
        gpu_type: str | None = None,
        sbatch_lines: Sequence[str] = (),
        setup: str | Sequence[str] = (),
        poll_interval: float = 10.0,
        heartbeat_interval: float = 5.0,
        grace_period: float = 10.0,
        python: str | None = None,
    ) -> None:
        self._slurm = SlurmEngine(
            partition=partition,
            account=account,
            mem=mem,
            cpus_per_task=cpus_per_task,
            ntasks_per_node=ntasks_per_node,
            time_limit=time_limit,
            gpu_flag=gpu_flag,
            gpu_type=gpu_type,
            sbatch_lines=sbatch_lines,
            setup=setup,
        )
        super().__init__(
            runs_root,
            experiment,
            self._slurm,
            incarnation=incarnation,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            poll_interval=poll_interval,
            python=python,
        )

    def batch_script(self, job: JobDefinition) -> str:
        """The batch script `dispatch` would submit for `job` (nothing is written or submitted).

        Raises:
            ConfigError: the job's command, cwd or run id is invalid.
        """
        plan = build_launch(job, experiment=self._experiment, runs_root=self._runs_root)
        return self._slurm.script(self.engine_job(plan, job, "<claim id>"))


__all__ = ["SCRIPT", "SlurmDispatcher", "SlurmEngine", "parse_squeue", "slurm_state"]
