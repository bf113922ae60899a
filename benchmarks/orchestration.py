"""Orchestration benchmark: what the controller and store cost per trial, beside Optuna and the raw floors.

One run prints one table:

1. controller + store overhead: trials of zero-length jobs through the simulated
   dispatcher on a real SQLite file, against Optuna (in memory, and RDBStorage on a
   SQLite file) running a trivial objective;
2. process trials: a trivial Python script as real processes through the local
   dispatcher, against spawning the same script with `subprocess` at the same width;
   1-second sleep jobs at width 8 against the ideal time; and Ray Tune running a
   function trainable that reports at once, 2 at a time (when `ray[tune]` is installed:
   `pip install -e '.[bench]'`);
3. scale: `status --json` / `best --json` on 10,000 finished runs (whole processes), one
   controller tick with 1,000 live runs, and the controller's RSS through a 10,000-trial
   simulated sweep.

    python benchmarks/orchestration.py            # about seven minutes on 2 cores (Ray: 3.5)
    python benchmarks/orchestration.py --quick    # smaller counts, for a smoke test
    python benchmarks/orchestration.py --no-ray   # leave Ray Tune out
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _ray_tune import ray_tune_trials

from sweepwise.app.experiment import Experiment
from sweepwise.core.clock import VirtualClock
from sweepwise.core.models import EventKind, JobEvent, JobTypes
from sweepwise.dispatchers.simulated import SimOutcome, SimulatedDispatcher
from sweepwise.engine.controller import AdaptiveController, ControllerSettings
from sweepwise.schedulers.base import JobSpec, TrainAndEvalConfig, create_training_job
from sweepwise.schedulers.batched_synced import BatchedSyncedOptimizingScheduler, BatchedSyncedSchedulerConfig
from sweepwise.schedulers.train_and_eval import TrainAndEvalScheduler
from sweepwise.stores.sql import SQLStore

ROWS: list[tuple[str, str, str]] = []  # (section, what, figure)


def row(section: str, what: str, figure: str) -> None:
    ROWS.append((section, what, figure))
    print(f"  {what}: {figure}", file=sys.stderr, flush=True)


def per_trial_marks(stamps: list[tuple[float, int]], n: int) -> tuple[float, float, float]:
    """ms per trial over the first 10 %, the last 10 % and all trials, from (time, finished) stamps."""

    def time_at(count: int) -> float:
        return next(t for t, done in stamps if done >= count)

    tenth = max(n // 10, 1)
    first = (time_at(tenth) - stamps[0][0]) / tenth * 1000
    last = (time_at(n) - time_at(n - tenth)) / tenth * 1000
    total = (time_at(n) - stamps[0][0]) / n * 1000
    return first, last, total


# -- 1. controller and store overhead ------------------------------------------------------------


def run_simulated_sweep(
    store: SQLStore,
    name: str,
    n: int,
    width: int,
    on_tick: Callable[[AdaptiveController, Any], None],
    *,
    with_eval: bool = True,
) -> None:
    """`n` trials of zero-length simulated jobs, in batches of `width`, random optimizer."""
    config = BatchedSyncedSchedulerConfig(
        experiment_id=name,
        max_trials=n,
        batch_size=width,
        train=JobSpec(cmd="train"),
        eval=JobSpec(cmd="eval") if with_eval else None,
        parameters={"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}},
        optimizer={"type": "random", "seed": 0},
    )
    clock = VirtualClock()
    AdaptiveController(
        name,
        BatchedSyncedOptimizingScheduler(config),
        SimulatedDispatcher(clock, lambda job: SimOutcome(result={"score": 1.0}), keep_history=False),
        store,
        settings=ControllerSettings(max_parallel=width),
        clock=clock,
        on_tick=on_tick,
    ).run()


def sweepwise_simulated(n: int, workdir: Path, *, with_eval: bool = True) -> tuple[float, float, float]:
    store = SQLStore(f"sqlite:///{workdir / 'overhead.db'}")
    store.ensure_experiment("overhead", {})
    stamps: list[tuple[float, int]] = [(time.perf_counter(), 0)]

    def on_tick(controller: AdaptiveController, _: Any) -> None:
        stamps.append((time.perf_counter(), controller.runs.how_many(*_finished())))

    run_simulated_sweep(store, "overhead", n, 8, on_tick, with_eval=with_eval)
    store.close()
    return per_trial_marks(stamps, n)


def _finished() -> tuple[Any, ...]:
    from sweepwise.core.runs import FINISHED

    return FINISHED


def _has_optuna() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


def optuna_trials(n: int, storage: str | None) -> tuple[float, float, float] | None:
    try:
        import optuna
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    stamps: list[tuple[float, int]] = [(time.perf_counter(), 0)]

    def stamp(study: Any, trial: Any) -> None:
        stamps.append((time.perf_counter(), trial.number + 1))

    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n, callbacks=[stamp])
    return per_trial_marks(stamps, n)


# -- 2. process trials -----------------------------------------------------------------------------

TRIVIAL = "import sys\nprint('SWEEPWISE_RESULT {\"score\": 1.0}')\n"
SLEEPER = "import time\ntime.sleep(1.0)\nprint('SWEEPWISE_RESULT {\"score\": 1.0}')\n"


def sweepwise_processes(
    workdir: Path, script: str, n: int, width: int, name: str, dispatcher: dict[str, Any] | None = None
) -> float:
    """Wall seconds for `n` trials of `script` through a dispatcher (default: local), `width` at a time."""
    path = workdir / f"{name}.py"
    path.write_text(script)
    spec = {
        "name": name,
        "max_parallel": width,
        "monitoring_interval": 5,
        "runs_dir": str(workdir / "runs"),
        "scheduler": {"type": "train_and_eval", "max_trials": n},
        "optimizer": {"type": "random", "seed": 0},
        "train": {"cmd": ["python", path.name]},
        "dispatcher": dispatcher or {"type": "local"},
    }
    experiment = Experiment.from_dict(spec, base_dir=workdir)
    store = SQLStore(f"sqlite:///{workdir / (name + '.db')}")
    store.ensure_experiment(name, experiment.record())
    controller = experiment.build_controller(store)
    start = time.perf_counter()
    runs = controller.run()
    wall = time.perf_counter() - start
    store.close()
    assert sum(run.status.value == "COMPLETED" for run in runs) == n, "not every process trial completed"
    return wall


def subprocess_floor(workdir: Path, script: str, n: int, width: int) -> float:
    path = workdir / "floor.py"
    path.write_text(script)

    def one(_: int) -> None:
        subprocess.run([sys.executable, str(path)], stdout=subprocess.DEVNULL, check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(width) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - start


# -- 3. scale ---------------------------------------------------------------------------------------


def make_finished_runs(url: str, n: int) -> None:
    store = SQLStore(url)
    config = TrainAndEvalConfig(
        experiment_id="big", max_trials=n, train=JobSpec(cmd="t"), eval=JobSpec(cmd="e")
    )
    store.ensure_experiment("big", {"spec": {"metric": "score", "goal": "maximize"}})
    now = time.time()
    with store.transaction() as tx:
        for i in range(n):
            job = create_training_job(
                config, f"big_trial_{i:05d}", {"lr": 10 ** (-4 + 3 * i / n), "layers": i % 7}
            )
            tx.record_training_intent("big", job, job.metadata["adaptive/suggestion"], i + 1)
    events = []
    for i in range(n):
        run_id = f"big_trial_{i:05d}"
        events.append(JobEvent(run_id, JobTypes.LAUNCH_TRAINING, EventKind.STARTED, now))
        events.append(
            JobEvent(
                run_id,
                JobTypes.LAUNCH_TRAINING,
                EventKind.FINISHED,
                now + 5,
                exit_code=0,
                result={"loss": 1.0 / (i + 1)},
                started_at=now,
            )
        )
        events.append(
            JobEvent(
                run_id,
                JobTypes.LAUNCH_EVAL,
                EventKind.FINISHED,
                now + 6,
                exit_code=0,
                result={"score": (i * 7919 % n) / n},
                started_at=now + 5,
            )
        )
    with store.transaction() as tx:
        for i in range(n):
            run_id = f"big_trial_{i:05d}"
            tx.record_dispatch_id(run_id, JobTypes.LAUNCH_TRAINING, f"sim:{run_id}:train")
        tx.apply_events(events[: 2 * n : 1][: 2 * n])
    with store.transaction() as tx:
        for i in range(n):
            job = create_training_job(config, f"big_trial_{i:05d}")
            tx.record_eval_intent(job.model_copy(update={"type": JobTypes.LAUNCH_EVAL}))
    store.apply_events([e for e in events if e.job_type is JobTypes.LAUNCH_EVAL])
    with store.transaction() as tx:
        for i in range(n):
            score = (i * 7919 % n) / n
            tx.update_run_summary(
                f"big_trial_{i:05d}",
                {"observation/score": score, "observation/cost": 5.0, "adaptive/post_eval_processed": True},
            )
    store.close()


def whole_process(args: list[str], cwd: Path, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "sweepwise", *args], cwd=cwd, capture_output=True, text=True
        )
        times.append(time.perf_counter() - start)
        assert done.returncode == 0, done.stderr
    return statistics.median(times)


def tick_with_live_runs(url: str, n: int) -> tuple[float, float]:
    """Median seconds of a quiet tick, and of a tick where 1 % of the jobs end, with `n` runs live."""
    store = SQLStore(url)
    store.ensure_experiment("live", {})
    clock = VirtualClock()
    durations = {}

    def behaviour(job: Any) -> SimOutcome:
        index = int(job.run_id.rsplit("_", 1)[1])
        durations[job.run_id] = 1000.0 + (index % 100) * 10.0
        return SimOutcome(duration=durations[job.run_id], result={"score": 1.0})

    dispatcher = SimulatedDispatcher(clock, behaviour)
    config = TrainAndEvalConfig(
        experiment_id="live", max_trials=2 * n, train=JobSpec(cmd="t"), eval=JobSpec(cmd="e")
    )
    controller = AdaptiveController(
        "live",
        TrainAndEvalScheduler(config),
        dispatcher,
        store,
        settings=ControllerSettings(max_parallel=n, lease_ttl=1e9),
        clock=clock,
    )
    controller.lease.acquire(clock)  # the benchmark drives ticks by hand
    controller._refresh()
    for _ in range(3):
        controller.tick()  # dispatch n trainings, then see them start
    quiet = []
    for _ in range(5):
        start = time.perf_counter()
        controller.tick()
        quiet.append(time.perf_counter() - start)
    busy = []
    for step in range(5):
        clock.advance_to(clock.now() + 10.0 * (step + 1) if step else clock.now() + 1000.0)
        start = time.perf_counter()
        controller.tick()
        busy.append(time.perf_counter() - start)
    store.close()
    return statistics.median(quiet), statistics.median(busy)


RSS_PROBE = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {bench!r})
    from orchestration import rss_sweep
    print(json.dumps(rss_sweep({n}, {workdir!r})))
    """
)


OPTUNA_RSS_PROBE = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {bench!r})
    from orchestration import optuna_rss
    print(json.dumps(optuna_rss({n})))
    """
)


def optuna_rss(n: int) -> dict[str, Any]:
    """RSS after every 1,000 trials of an in-memory Optuna study (random sampler, one parameter)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    samples: dict[int, float] = {}

    def sample(study: Any, trial: Any) -> None:
        if (trial.number + 1) % 1000 == 0:
            samples[trial.number + 1] = rss_mb()

    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n, callbacks=[sample])
    return {"samples": samples, "peak_mb": _status_mb("VmHWM:")}


def _rss_row(what: str, probe: str) -> None:
    """Run `probe` in a fresh process and add its RSS samples, peak and slope as a row."""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    rss = json.loads(out.stdout.strip().splitlines()[-1])
    samples = {int(k): v for k, v in rss["samples"].items()}
    marks = sorted(samples)
    shown = ", ".join(f"{k // 1000}k: {samples[k]:.0f}" for k in marks)
    slope = (samples[marks[-1]] - samples[marks[0]]) / max(1, (marks[-1] - marks[0]) // 1000)
    row(
        "scale",
        what,
        f"{shown}; peak {rss['peak_mb']:.0f} MB; after the first 1k: +{slope:.1f} MB per 1,000 trials",
    )


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    return _status_mb("VmRSS:")


def rss_sweep(n: int, workdir: str) -> dict[str, Any]:
    """Run an n-trial simulated sweep in this process; RSS after every 1,000 finished trials."""
    store = SQLStore(f"sqlite:///{workdir}/rss.db")
    store.ensure_experiment("rss", {})
    samples: dict[int, float] = {}

    def on_tick(controller: AdaptiveController, _: Any) -> None:
        done = controller.runs.how_many(*_finished())
        mark = done // 1000 * 1000
        if mark and mark not in samples:
            samples[mark] = rss_mb()

    run_simulated_sweep(store, "rss", n, 16, on_tick)
    # VmHWM, not getrusage's ru_maxrss: on Linux that keeps the peak of the process this one was
    # forked from (here the benchmark itself, with Optuna and Ray loaded).
    return {"samples": samples, "peak_mb": _status_mb("VmHWM:")}


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke test, not the figures)")
    parser.add_argument("--no-ray", action="store_true", help="leave out Ray Tune (its row takes minutes)")
    args = parser.parse_args(argv)
    q = args.quick
    n_sim, n_optuna_db, n_proc, n_sleep, n_big, n_live, n_rss, n_ray = (
        (200, 100, 40, 16, 1000, 100, 2000, 10) if q else (2000, 1000, 500, 200, 10_000, 1000, 10_000, 200)
    )
    work = Path(tempfile.mkdtemp(prefix="sweepwise-bench-"))
    print(f"working in {work}", file=sys.stderr)

    print("1. controller + store overhead", file=sys.stderr)
    first, last, total = sweepwise_simulated(n_sim, work)
    row(
        "overhead",
        f"sweepwise, {n_sim} trials (train + eval each), simulated jobs, SQLite file",
        f"{total:.2f} ms/trial (first 10 %: {first:.2f}, last 10 %: {last:.2f}, ratio {last / first:.2f})",
    )
    mem = optuna_trials(n_sim, None)
    if mem:
        row(
            "overhead",
            f"Optuna in memory, random sampler, {n_sim} trials",
            f"{mem[2]:.2f} ms/trial (first 10 %: {mem[0]:.2f}, last 10 %: {mem[1]:.2f})",
        )
    disk = optuna_trials(n_optuna_db, f"sqlite:///{work / 'optuna.db'}")
    if disk:
        row(
            "overhead",
            f"Optuna RDBStorage on a SQLite file, random sampler, {n_optuna_db} trials",
            f"{disk[2]:.2f} ms/trial (first 10 %: {disk[0]:.2f}, last 10 %: {disk[1]:.2f}); "
            f"sweepwise is {disk[2] / total:.0f}x cheaper",
        )

    print("2. process trials", file=sys.stderr)
    # The floor is timed just before and just after sweepwise, and averaged: this machine's own
    # speed drifts by several per cent over a minute, which would otherwise skew the ratio.
    floor_before = subprocess_floor(work, TRIVIAL, n_proc, 2)
    ours = sweepwise_processes(work, TRIVIAL, n_proc, 2, "trivial")
    floor = (floor_before + subprocess_floor(work, TRIVIAL, n_proc, 2)) / 2
    row(
        "processes",
        f"sweepwise local dispatcher, {n_proc} trivial Python trials, 2 at a time",
        f"{ours / n_proc * 1000:.1f} ms/trial",
    )
    row(
        "processes",
        "subprocess floor, same script, 2 at a time (timed before and after sweepwise)",
        f"{floor / n_proc * 1000:.1f} ms/trial (sweepwise / floor = {ours / floor:.2f})",
    )
    ray = None if args.no_ray else ray_tune_trials(n_ray, 2)
    if ray is not None:
        row(
            "processes",
            f"Ray Tune, {n_ray} function trials reporting at once, 2 at a time (per-trial loggers off)",
            f"{ray['per_trial_ms']:.0f} ms/trial (`ray.init` {ray['init_s']:.1f} s); "
            f"sweepwise's process trials are {ray['per_trial_ms'] / (ours / n_proc * 1000):.0f}x cheaper",
        )
    sleep_wall = sweepwise_processes(work, SLEEPER, n_sleep, 8, "sleepers")
    ideal = n_sleep / 8 * 1.0
    row(
        "processes",
        f"sweepwise, {n_sleep} jobs sleeping 1 s, 8 at a time",
        f"{sleep_wall:.1f} s (ideal {ideal:.0f} s, ratio {sleep_wall / ideal:.3f})",
    )

    print("3. scale", file=sys.stderr)
    big_url = f"sqlite:///{work / 'big.db'}"
    make_finished_runs(big_url, n_big)
    status = whole_process(["status", "big", "--json", "--store", big_url], work)
    best = whole_process(["best", "big", "--json", "--store", big_url], work)
    row("scale", f"`sweepwise status big --json`, {n_big} finished runs, whole process", f"{status:.2f} s")
    row("scale", f"`sweepwise best big --json`, {n_big} finished runs, whole process", f"{best:.2f} s")
    quiet, busy = tick_with_live_runs(f"sqlite:///{work / 'live.db'}", n_live)
    row(
        "scale",
        f"one controller tick, {n_live} live runs: nothing happened / 1 % of jobs ended",
        f"{quiet * 1000:.1f} ms / {busy * 1000:.1f} ms",
    )
    bench = str(Path(__file__).parent)
    _rss_row(
        f"controller RSS through a {n_rss}-trial simulated sweep (MB)",
        RSS_PROBE.format(bench=bench, n=n_rss, workdir=str(work)),
    )
    if _has_optuna():
        _rss_row(
            f"Optuna in-memory study RSS through {n_rss} trials, random sampler (MB)",
            OPTUNA_RSS_PROBE.format(bench=bench, n=n_rss),
        )

    print()
    print(
        f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, SQLite WAL + synchronous=NORMAL"
    )
    print()
    print("| section | what | figure |")
    print("| --- | --- | --- |")
    for section, what, figure in ROWS:
        print(f"| {section} | {what} | {figure} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
