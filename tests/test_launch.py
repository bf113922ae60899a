"""The launcher: argv styles, value formatting, env, params files, command checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sweepwise.core.errors import ConfigError
from sweepwise.core.models import ArgStyle, JobDefinition, JobTypes
from sweepwise.dispatchers.launch import (
    LaunchPlan,
    build_launch,
    check_command,
    format_value,
    write_job_files,
)

NASTY = "a; rm -rf / $(x) 'q\" `echo hi` | > out && \\ * ~ \n second line"

ECHO_ARGV = (
    "import json, os, sys; "
    "open(os.environ['OUT'], 'w').write(json.dumps({'argv': sys.argv[1:], "
    "'params': os.environ['SWEEPWISE_PARAMS'], 'cwd': os.getcwd()}))"
)


def _plan(tmp_path: Path, **fields: Any) -> LaunchPlan:
    fields.setdefault("run_id", "r1")
    fields.setdefault("cmd", ["python", "train.py"])
    return build_launch(JobDefinition(**fields), experiment="exp", runs_root=tmp_path / "runs")


def _run(plan: LaunchPlan, out: Path) -> dict[str, Any]:
    subprocess.run(plan.argv, env={**os.environ, **plan.env, "OUT": str(out)}, cwd=plan.cwd, check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_key_value_style_appends_formatted_words(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        cmd="python train.py --fixed 'two words'",
        args={"run": "r1"},
        overrides={
            "lr": 1e-05,
            "steps": 10,
            "flag": True,
            "off": False,
            "none": None,
            "layers": [1, 2],
            "cfg": {"a": 1},
            "name": "x y",
        },
    )
    assert plan.argv == [
        sys.executable,
        "train.py",
        "--fixed",
        "two words",
        "run=r1",
        "lr=1e-05",
        "steps=10",
        "flag=true",
        "off=false",
        "none=null",
        "layers=[1,2]",
        'cfg={"a":1}',
        "name=x y",
    ]


def test_overrides_win_over_args_with_the_same_key(tmp_path: Path) -> None:
    plan = _plan(tmp_path, args={"lr": 1, "run": "r1"}, overrides={"lr": 2})
    assert plan.argv[2:] == ["lr=2", "run=r1"]


def test_dashdash_style(tmp_path: Path) -> None:
    plan = _plan(tmp_path, overrides={"trainer.lr": 0.5, "flag": True}, arg_style=ArgStyle.DASHDASH)
    assert plan.argv[2:] == ["--trainer.lr", "0.5", "--flag", "true"]


def test_template_style_fills_placeholders_and_appends_nothing(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        cmd=["python", "train.py", "--lr={trainer.lr}", "--tag", "{tag}-{tag}", "{{tag}}", "{'a': {1}}"],
        overrides={"trainer.lr": 1e-05, "tag": "t", "unused": 3},
        arg_style=ArgStyle.TEMPLATE,
    )
    assert plan.argv == [sys.executable, "train.py", "--lr=1e-05", "--tag", "t-t", "{tag}", "{'a': {1}}"]


def test_template_with_unknown_placeholder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _plan(tmp_path, cmd="python train.py {nope}", overrides={"lr": 1}, arg_style=ArgStyle.TEMPLATE)
    assert info.value.field == "train.cmd"
    assert "{nope}" in str(info.value) and "lr" in str(info.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s p a c e", "s p a c e"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (3, "3"),
        (1e-05, "1e-05"),
        (0.1, "0.1"),
        (2.0, "2.0"),
        ([1, "a"], '[1,"a"]'),
        ({"k": [1]}, '{"k":[1]}'),
        ((1, 2), "[1,2]"),
    ],
)
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize("style", [ArgStyle.KEY_VALUE, ArgStyle.DASHDASH, ArgStyle.TEMPLATE])
def test_shell_metacharacters_reach_a_real_job_literally(tmp_path: Path, style: ArgStyle) -> None:
    cmd = ["python", "-c", ECHO_ARGV]
    if style is ArgStyle.TEMPLATE:
        cmd.append("{v}")
    plan = _plan(tmp_path, cmd=cmd, overrides={"v": NASTY}, arg_style=style)
    seen = _run(plan, tmp_path / "out.json")
    expected = {
        ArgStyle.KEY_VALUE: [f"v={NASTY}"],
        ArgStyle.DASHDASH: ["--v", NASTY],
        ArgStyle.TEMPLATE: [NASTY],
    }[style]
    assert seen["argv"] == expected
    assert json.loads(seen["params"]) == {"v": NASTY}
    assert not (Path(plan.cwd) / "out").exists()


def test_env_and_params_files(tmp_path: Path) -> None:
    job = JobDefinition(
        run_id="r7",
        cmd=["python", "-c", ECHO_ARGV],
        type=JobTypes.LAUNCH_EVAL,
        args={"policy_uri": "file:///x"},
        overrides={"lr": 0.25},
        env={"MY_VAR": "1", "SWEEPWISE_RUN_ID": "spoofed"},
    )
    plan = build_launch(job, experiment="exp", runs_root=Path(os.path.relpath(tmp_path / "runs")))
    run_dir = (tmp_path / "runs" / "exp" / "r7").resolve()
    assert plan.run_dir.resolve() == run_dir and plan.run_dir.is_absolute()
    assert plan.job_name == "eval"
    assert plan.log_path == plan.run_dir / "eval.log"
    assert plan.status_path == plan.run_dir / "eval.status.json"
    assert plan.params_path == plan.run_dir / "params.json"
    assert plan.cwd == os.getcwd()
    env = plan.env
    assert json.loads(env["SWEEPWISE_PARAMS"]) == {"policy_uri": "file:///x", "lr": 0.25}
    assert env["SWEEPWISE_RUN_ID"] == "r7"
    assert env["SWEEPWISE_EXPERIMENT"] == "exp"
    assert env["SWEEPWISE_JOB_TYPE"] == "eval"
    assert env["SWEEPWISE_RUN_DIR"] == str(plan.run_dir)
    assert env["JOB_PARAMS_FILE"] == str(plan.run_dir / "params.json")
    assert env["SWEEPWISE_METRICS_FILE"] == str(plan.run_dir / "eval.metrics.jsonl")
    assert env["SWEEPWISE_RESULT_FILE"] == str(plan.run_dir / "eval.result.json")
    assert env["MY_VAR"] == "1"
    assert "PATH" not in env  # only what is added

    write_job_files(plan, job)
    params = {"policy_uri": "file:///x", "lr": 0.25}
    assert json.loads((run_dir / "params.json").read_text()) == params
    assert json.loads((run_dir / "eval.params.json").read_text()) == params
    assert sorted(p.name for p in run_dir.iterdir()) == ["eval.params.json", "params.json"]


def test_cwd_is_made_absolute(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    plan = _plan(tmp_path, cmd=["python", "-c", ECHO_ARGV], cwd=str(work))
    assert plan.cwd == str(work)
    assert Path(_run(plan, tmp_path / "o.json")["cwd"]).resolve() == work.resolve()


def test_missing_cwd_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _plan(tmp_path, cwd=str(tmp_path / "nope"))
    assert info.value.field == "train.cwd"


@pytest.mark.parametrize("name", ["python", "python3"])
def test_python_is_this_interpreter(tmp_path: Path, name: str) -> None:
    assert _plan(tmp_path, cmd=f"{name} -m x").argv[:3] == [sys.executable, "-m", "x"]


def test_missing_command_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _plan(tmp_path, cmd="definitely-not-a-command-xyz --flag")
    assert info.value.field == "train.cmd"
    assert "'definitely-not-a-command-xyz' not found" in str(info.value)
    with pytest.raises(ConfigError) as info:
        _plan(tmp_path, cmd=["./missing.sh"], type=JobTypes.LAUNCH_EVAL)
    assert info.value.field == "eval.cmd"


def test_check_command_relative_paths_and_hints(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(ConfigError, match="not executable"):
        check_command("./run.sh", tmp_path, "train.cmd")
    with pytest.raises(ConfigError, match=r"did you mean './run.sh'"):
        check_command("run.sh", tmp_path, "train.cmd")
    script.chmod(0o755)
    assert check_command("./run.sh a=1", tmp_path, "train.cmd") == ["./run.sh", "a=1"]
    assert check_command(["sh", "-c", "true"], tmp_path, "x")[0] == "sh"
    with pytest.raises(ConfigError, match="quotes"):
        check_command("python 'unclosed", tmp_path, "train.cmd")
    with pytest.raises(ConfigError, match="empty"):
        check_command("  ", tmp_path, "train.cmd")


@pytest.mark.parametrize("run_id", ["a/b", "..", ""])
def test_run_ids_that_cannot_be_directories(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(ConfigError) as info:
        _plan(tmp_path, run_id=run_id)
    assert info.value.field == "run_id"
