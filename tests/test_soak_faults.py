"""Soak under faults: 200 process trials through 20 controller kills, 5 job host kills, 5 reboots
and one controller absence longer than `stale_after`; nothing lost, nothing run twice per attempt.

The faults land at seeded random moments: each after 1-5 more training jobs have started. The
jobs judge the outcome: each appends `run_id attempt` to markers/train.txt / eval.txt when it
starts (`faults_helpers.JOB`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import cli
from faults_helpers import (
    Controller,
    alive,
    describe,
    integrity_ok,
    kill_everything_under,
    leases,
    marker_lines,
    processes_under,
    reboot,
    rows_of,
    sigkill,
    started,
    statuses,
    wait_for,
    write_sweep,
)

TRIALS = 200
STALE_AFTER = 4
FAULTS = ["controller"] * 20 + ["host"] * 5 + ["reboot"] * 5 + ["away"]


@pytest.fixture(autouse=True)
def _no_process_left(tmp_path: Path) -> Iterator[None]:
    yield
    kill_everything_under(tmp_path)


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _host_of(controller: Controller) -> int | None:
    """The job host the controller started (its child running sweepwise.runtime.jobhost)."""
    for pid in processes_under(controller.cwd):
        if _ppid(pid) == controller.pid:
            try:
                if b"sweepwise.runtime.jobhost" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
            except OSError:
                continue
    return None


@pytest.mark.slow
def test_soak_200_trials_through_31_faults(tmp_path: Path) -> None:
    spec = write_sweep(
        tmp_path,
        "soak",
        env={"TRAIN_SLEEPS": "0.3", "EVAL_SLEEPS": "0"},
        max_parallel=4,
        monitoring_interval=1,
        stale_after=STALE_AFTER,
        retries={"max_attempts": 6},
        scheduler={"type": "async_capped", "max_trials": TRIALS, "max_concurrent_evals": 2},
        optimizer={"type": "random", "seed": 7},
    )
    rng = random.Random(2027)
    faults = list(FAULTS)
    rng.shuffle(faults)
    controller: Controller | None = None
    injected: list[str] = []
    for fault in faults:
        if controller is None or not controller.alive():
            if controller is not None:
                code = controller.proc.wait()
                assert code in (0, -9), f"the controller failed (exit {code}):\n{controller.stderr()[-3000:]}"
                if code == 0:
                    break  # the sweep is over: checked below
            controller = Controller(spec, tmp_path)
        # Each fault lands a random way into the sweep's progress: after 1-5 more training jobs start.
        progress = len(marker_lines(tmp_path, "train")) + rng.randint(1, 5)
        wait_for(
            lambda c=controller, n=progress: len(marker_lines(tmp_path, "train")) >= n or not c.alive(),
            "the sweep to make progress",
            timeout=120,
        )
        time.sleep(rng.uniform(0, 0.5))
        if not controller.alive():
            continue  # it ended (checked when the next fault starts one again)
        if fault == "controller":
            controller.kill()
        elif fault == "away":
            controller.kill()
            time.sleep(STALE_AFTER + 2)  # longer than stale_after, while the jobs run on
        elif fault == "reboot":
            reboot(tmp_path)
            controller.kill()
        else:
            host = wait_for(
                lambda c=controller: _host_of(c) or not c.alive(), "the controller's job host", timeout=60
            )
            if host is True:
                continue
            sigkill(host)
            wait_for(lambda h=host: not alive(h), "the job host to die")
        injected.append(fault)
    if controller is not None and controller.alive():
        controller.kill()
    assert len(injected) >= len(faults) - 3, f"only {len(injected)} faults landed before the sweep ended"

    final = cli("run", str(spec), "--quiet", cwd=tmp_path, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    rows = rows_of(tmp_path, "soak")
    assert len(rows) == TRIALS, f"{len(rows)} runs"  # attempts are not trials
    assert {row["status"] for row in rows} == {"completed"}, {
        run: status for run, status in statuses(rows).items() if not status.startswith("completed")
    }
    trained, evaluated = started(tmp_path, "train"), started(tmp_path, "eval")
    twice = {key: n for key, n in (trained + evaluated).items() if n > 1}
    assert max(trained.values()) == 1, f"(run, attempt) trained more than once: {twice}"
    assert max(evaluated.values()) == 1, f"(run, attempt) evaluated more than once: {twice}"
    for row in rows:  # the attempts that succeeded ran (a lost eval runs again, not its training)
        final_train = (row["run_id"], str(row["train_attempt"]))
        final_eval = (row["run_id"], str(row["eval_attempt"]))
        assert final_train in trained, f"{final_train}: no train job ran for the final attempt"
        assert final_eval in evaluated, f"{final_eval}: no eval job ran for the final attempt"

    db = tmp_path / "sweepwise.db"
    assert integrity_ok(db)
    assert leases(db, "soak") == 0
    deadline = time.monotonic() + 30  # a job host exits just after its last job
    while processes_under(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_under(tmp_path), f"orphans:\n{describe(processes_under(tmp_path))}"
