"""The launcher: turns a `JobDefinition` into what a backend runs (argv, env, cwd, run dir).

This is the only module that knows how a job receives its hyperparameters
(README, "How a job sees the world"): as words appended to its command (`key=value` by default, `--key value`,
or `{key}` placeholders), as `SWEEPWISE_PARAMS` JSON in its environment, and as
`params.json` in its run directory. Values never pass through a shell: they are argv
elements, so `a; rm -rf / $(x)` reaches the job byte for byte.
"""

from __future__ import annotations

import json
import numbers
import os
import re
import shlex
import shutil
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import ArgStyle, JobDefinition, JobTypes
from sweepwise.core.private import make_private_dirs
from sweepwise.dispatchers.container import container_name, wrap_job
from sweepwise.runtime import LOG, METRICS, PARAMS, PARAMS_FILE, RESULT, STATUS, job_file, job_stem
from sweepwise.runtime.supervise import preallocate

_PYTHON_NAMES = frozenset({"python", "python3"})
# `{name}` with a parameter-like name (`lr`, `trainer.optimizer.lr`); `{{name}}` is a literal
# `{name}`. Other braces (JSON, Python dicts in `python -c`) are left alone.
_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][\w.\-/]*)\}\}|\{([A-Za-z_][\w.\-/]*)\}")
# `package.module.function`: at least two dotted Python identifiers, nothing else.
_ENTRYPOINT = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
ENTRYPOINT_RUNNER = "sweepwise.runtime.call"
"""The module that runs an entrypoint job: `python -m sweepwise.runtime.call module.function k=v ...`."""


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """Everything needed to start one job.

    Attributes:
        argv: the command, hyperparameters included; run it without a shell.
        env: only the variables to add to the launching process's environment.
        cwd: the job's working directory (absolute).
        run_dir: `<runs_root>/<experiment>/<run_id>` (absolute), shared by the run's jobs.
        job_name: the name of the job's files: `train` or `eval` (`train.2` for a second attempt).
        log_path: `<run_dir>/<job>.log`, the job's stdout and stderr.
        status_path: `<run_dir>/<job>.status.json`, written by the supervisor.
        params_path: `<run_dir>/params.json`, the current job's hyperparameters.
        params: what the job receives: its args and overrides, plus for an entrypoint
            eval job without a reported artefact `policy_uri` = the run dir.
    """

    argv: list[str]
    env: dict[str, str]
    cwd: str
    run_dir: Path
    job_name: str
    log_path: Path
    status_path: Path
    params_path: Path
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def result_path(self) -> Path:
        """`<run_dir>/<job>.result.json`."""
        return Path(job_file(self.run_dir, self.job_name, RESULT))

    @property
    def metrics_path(self) -> Path:
        """`<run_dir>/<job>.metrics.jsonl`."""
        return Path(job_file(self.run_dir, self.job_name, METRICS))


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def format_value(value: Any) -> str:
    """How a hyperparameter value is written on a command line.

    str as is, bool as `true` / `false`, None as `null`, int and float with `repr`
    (`1e-05`), lists and dicts as compact JSON; numpy scalars like their Python values.
    """
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    if isinstance(value, list | tuple | dict):
        return _dumps(value)
    item = getattr(value, "item", None)
    if callable(item):
        return format_value(item())
    if isinstance(value, numbers.Integral):
        return repr(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return str(value)


def _check_name(field: str, value: str) -> str:
    if not value or value in (".", "..") or "/" in value or "\0" in value:
        raise ConfigError(field, f"{value!r} cannot name a directory; use letters, digits, '-', '_' or '.'")
    return value


def run_dir_for(runs_root: Path, experiment: str, run_id: str) -> Path:
    """The run directory `<runs_root>/<experiment>/<run_id>` (absolute).

    Raises:
        ConfigError: if the experiment or run id cannot be a directory name.
    """
    return (
        Path(os.path.abspath(runs_root))
        / _check_name("experiment", experiment)
        / _check_name("run_id", run_id)
    )


def split_command(cmd: str | list[str], field: str) -> list[str]:
    """A job command as argv: a list as it is, a string split as a shell would (`shlex`, no shell).

    Raises:
        ConfigError: the string cannot be split (an unclosed quote).
    """
    if not isinstance(cmd, str):
        return [str(part) for part in cmd]
    try:
        return shlex.split(cmd)
    except ValueError as exc:
        raise ConfigError(field, f"cannot be split into words ({exc}); check its quotes") from None


def check_command(
    cmd: str | list[str], cwd: str | os.PathLike[str], field: str, *, path: str | None = None
) -> list[str]:
    """Split a job command and check that its program can be found.

    Args:
        cmd: a list (the argv) or a string (split with `shlex.split`, no shell).
        cwd: the directory a relative program path (`./train.sh`) is resolved against.
        field: the spec field named in errors, e.g. `train.cmd`.
        path: the PATH to search (default: this process's PATH).

    Returns:
        The argv, with `python` / `python3` replaced by this interpreter
        (`sys.executable`) so jobs run in the same environment.

    Raises:
        ConfigError: the command is empty, cannot be split, or its program is not
            found or not executable.
    """
    argv = split_command(cmd, field)
    if not argv or not argv[0]:
        raise ConfigError(field, "the command is empty; give the program to run, e.g. 'python train.py'")
    program = argv[0]
    if program in _PYTHON_NAMES and sys.executable:
        argv[0] = sys.executable
        return argv
    base = os.fspath(cwd)
    if "/" in program:
        candidate = program if os.path.isabs(program) else os.path.join(base, program)
        if not os.path.exists(candidate):
            raise ConfigError(field, f"command {program!r} not found; no such file (relative to {base})")
        if os.path.isdir(candidate) or not os.access(candidate, os.X_OK):
            raise ConfigError(
                field,
                f"command {program!r} is not executable; run 'chmod +x {program}' "
                f"or put its interpreter first, e.g. 'bash {program}'",
            )
        return argv
    if shutil.which(program, path=path) is None:
        hint = (
            f"did you mean './{program}'?"
            if os.path.exists(os.path.join(base, program))
            else "install it, fix PATH, or give its full path"
        )
        raise ConfigError(field, f"command {program!r} not found on PATH; {hint}")
    return argv


def entrypoint_target(cmd: str | list[str], cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The `module.function` a job's `cmd` names, or None when `cmd` is a command to run.

    An entrypoint is one string of dotted Python identifiers with at least one dot
    (`examples.recipes.jobs.train`), as `create_training_job` makes from
    `recipe_module`. A string that is also an existing file in `cwd` or a program on
    PATH (`train.sh`, `run.py`) stays a command.
    """
    if not isinstance(cmd, str) or not _ENTRYPOINT.fullmatch(cmd):
        return None
    base = os.fspath(cwd) if cwd is not None else os.getcwd()
    if os.path.exists(os.path.join(base, cmd)) or shutil.which(cmd) is not None:
        return None
    return cmd


def _fill_template(argv: list[str], params: Mapping[str, Any], field: str) -> list[str]:
    """Replace `{name}` placeholders in the arguments (never in the program itself).

    Only parameter-like names count (`{lr}`, `{trainer.optimizer.lr}`); other braces,
    such as a dict in `python -c` code, are left alone; `{{name}}` gives a literal
    `{name}`. An unknown name is a ConfigError on `field`.
    """

    def substitute(match: re.Match[str]) -> str:
        escaped, key = match.groups()
        if escaped is not None:
            return "{" + escaped + "}"
        if key not in params:
            known = ", ".join(sorted(params)) or "none"
            raise ConfigError(
                field,
                f"unknown placeholder {{{key}}} (parameters: {known}); "
                f"write {{{{{key}}}}} for a literal {{{key}}}",
            )
        return format_value(params[key])

    return [argv[0], *(_PLACEHOLDER.sub(substitute, arg) for arg in argv[1:])]


def build_launch(job: JobDefinition, *, experiment: str, runs_root: Path) -> LaunchPlan:
    """Turn a job definition into a launch plan.

    Args:
        job: the job to launch.
        experiment: the experiment's name (a directory under `runs_root`).
        runs_root: the root of all run directories.

    A job whose `cmd` is an entrypoint (`package.module.function`, see
    `entrypoint_target`) runs as `python -m sweepwise.runtime.call module.function
    key=value ...` with this interpreter; an entrypoint eval job without a
    `policy_uri` argument gets the run dir as its `policy_uri`.

    A job with a `container` runs its command (not looked up on this machine; `python`
    is the image's) inside that container: `argv` is the engine's command line
    (`sweepwise.dispatchers.container.wrap_job`), with the run dir mounted at its own path.

    Returns:
        The plan: argv with the hyperparameters in `job.arg_style`, the variables to
        add to the environment (`SWEEPWISE_PARAMS`, `SWEEPWISE_RUN_ID`,
        `SWEEPWISE_EXPERIMENT`, `SWEEPWISE_JOB_TYPE`, `SWEEPWISE_ATTEMPT`, `SWEEPWISE_RUN_DIR`,
        `JOB_PARAMS_FILE`, `SWEEPWISE_METRICS_FILE`, `SWEEPWISE_RESULT_FILE`, on top
        of `job.env`, which cannot override them), the working directory and the
        job's file paths.

    Raises:
        ConfigError: bad command, working directory, run id or template placeholder.
    """
    short = job.type.short
    job_name = job_stem(short, job.attempt)  # the name of this attempt's files
    cwd = os.path.abspath(job.cwd) if job.cwd else os.getcwd()
    if not os.path.isdir(cwd):
        raise ConfigError(f"{short}.cwd", f"directory {cwd!r} does not exist; create it or fix cwd")
    field = f"{short}.cmd"
    run_dir = run_dir_for(runs_root, experiment, job.run_id)
    params = job.params
    target = entrypoint_target(job.cmd, cwd)
    if target is not None:
        # A Python function, run in the job's process by the entrypoint runner; it
        # takes key=value words only. An eval job whose training reported no
        # `policy_uri` evaluates what training left in the run dir.
        if job.type is JobTypes.LAUNCH_EVAL and "policy_uri" not in params:
            params = {"policy_uri": str(run_dir), **params}
        python = "python" if job.container is not None else sys.executable  # the image's own
        argv = [python, "-m", ENTRYPOINT_RUNNER, target]
        argv += [f"{key}={format_value(value)}" for key, value in params.items()]
    else:
        if job.container is not None:  # the program is in the image: not looked up here
            argv = split_command(job.cmd, field)
            if not argv or not argv[0]:
                raise ConfigError(field, "the command is empty; give the program to run in the container")
        else:
            argv = check_command(job.cmd, cwd, field, path=job.env.get("PATH"))
        if job.arg_style is ArgStyle.TEMPLATE:
            argv = _fill_template(argv, params, field)
        elif job.arg_style is ArgStyle.DASHDASH:
            for key, value in params.items():
                argv += [f"--{key}", format_value(value)]
        else:
            argv += [f"{key}={format_value(value)}" for key, value in params.items()]

    params_path = run_dir / PARAMS_FILE
    env = dict(job.env)
    env.update(
        SWEEPWISE_PARAMS=_dumps(params),
        SWEEPWISE_RUN_ID=job.run_id,
        SWEEPWISE_EXPERIMENT=experiment,
        SWEEPWISE_JOB_TYPE=short,
        SWEEPWISE_ATTEMPT=str(job.attempt),
        SWEEPWISE_RUN_DIR=str(run_dir),
        JOB_PARAMS_FILE=str(params_path),
        SWEEPWISE_METRICS_FILE=job_file(run_dir, job_name, METRICS),
        SWEEPWISE_RESULT_FILE=job_file(run_dir, job_name, RESULT),
    )
    if job.container is not None:  # the one place a job is wrapped in its container
        argv, env = wrap_job(
            job.container,
            argv,
            env=env,
            job_env=list(job.env),
            run_dir=str(run_dir),
            name=container_name(experiment, job.run_id, job_name),
            gpus=job.gpus,
            base_dir=cwd,
        )
    return LaunchPlan(
        argv=argv,
        env=env,
        cwd=cwd,
        run_dir=run_dir,
        job_name=job_name,
        log_path=Path(job_file(run_dir, job_name, LOG)),
        status_path=Path(job_file(run_dir, job_name, STATUS)),
        params_path=params_path,
        params=dict(params),
    )


def _write_atomic(path: Path, text: str, *, also: Path | None = None) -> None:
    """Write `text` to `path` through a temporary file and a rename; `also` gets a hard link."""
    tmp = f"{path.parent}/.{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            data = text.encode()
            preallocate(fd, len(data))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        if also is not None:
            also.unlink(missing_ok=True)
            os.link(tmp, also)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_job_files(plan: LaunchPlan, job: JobDefinition, *, make_run_dir: bool = True) -> None:
    """Create the run dir and write the job's `params.json` and `<job>.params.json` atomically.

    `<job>.params.json` is a hard link to the same file, so the train job's copy stays
    when the eval job's `params.json` replaces it (one write, not two).

    Args:
        plan: the plan `build_launch` returned for `job`.
        job: the job whose hyperparameters are written.
        make_run_dir: False when the caller has just created the run dir.
    """
    if make_run_dir:
        make_private_dirs(plan.run_dir)
    params = plan.params or job.params  # a plan built by hand may leave `params` empty
    text = json.dumps(params, default=_json_default, indent=2) + "\n"
    _write_atomic(plan.params_path, text, also=Path(job_file(plan.run_dir, plan.job_name, PARAMS)))


__all__ = [
    "ENTRYPOINT_RUNNER",
    "LaunchPlan",
    "build_launch",
    "check_command",
    "entrypoint_target",
    "format_value",
    "run_dir_for",
    "split_command",
    "write_job_files",
]
