"""Dashboard benchmark: a 10,000-run experiment's page in Chromium, beside optuna-dashboard (issue 20).

1. sweepwise: `--runs` trials (4 parameters, scored, costed) run through the real controller in
   virtual time (the `simulated` dispatcher) into a SQLite store; a fresh `sweepwise dashboard`
   serves it, and Debian's Chromium (Playwright) opens the experiment page, cold (the dashboard's
   first request) then warm (again, same dashboard):
   - first paint: the page's first-contentful-paint, ms from the start of navigation;
   - runs table: when the first page of the runs table is in the page (it is in the HTML: the
     document's domInteractive);
   - plots drawn: when every plot is drawn (they come after the table: the page asks for them);
   - a page of the runs table: from a click on "next" to the next page's rows in place, the
     median of 5 clicks; and a sort by score (a click on its column header).
2. optuna-dashboard (`pip install optuna-dashboard`) on an Optuna study of as many trials with
   the same parameters (a JournalFileBackend: writing 10,000 trials to SQLite through Optuna
   takes minutes), opened the same way: first paint of its study page, when its history plot
   holds every trial, and when its trials-table page shows rows.

    python benchmarks/dashboard.py           # 10,000 runs: about 5 minutes on 2 cores
    python benchmarks/dashboard.py --quick   # 1,000 runs, a smoke test

Needs `pip install -e '.[dashboard,dev]' optuna-dashboard` and `/usr/bin/chromium` (.ci/install-chromium).
Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 600_000
ROWS: list[tuple[str, str, str]] = []

BEHAVIOUR = textwrap.dedent(
    """
    from sweepwise.dispatchers.simulated import SimOutcome

    def behaviour(job):
        x = float(job.overrides["x"])
        if job.type.value == "launch_training":
            return SimOutcome(duration=10 + 50 * x, result={"loss": 1 - x})
        return SimOutcome(duration=5, result={"score": x * float(job.overrides["width"]) ** 0.1})
    """
)
SPEC = textwrap.dedent(
    """
    name: big
    max_parallel: 100
    monitoring_interval: 1
    dispatcher: {{type: simulated, behaviour: benchjobs.behaviour}}
    scheduler: {{type: batched_synced, max_trials: {runs}, batch_size: 100}}
    optimizer: {{type: random, seed: 1}}
    metric: score
    train: {{cmd: [python, train.py]}}
    eval: {{cmd: [python, eval.py]}}
    parameters:
      x: {{distribution: uniform, min: 0.0, max: 1.0}}
      lr: {{distribution: log_normal, min: 1.0e-5, max: 1.0}}
      width: {{distribution: uniform_pow2, min: 4, max: 256}}
      kind: {{choices: [relu, tanh, plain]}}
    """
)


def row(tool: str, what: str, figure: str) -> None:
    ROWS.append((tool, what, figure))
    print(f"  {tool}: {what}: {figure}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(argv: list[str], cwd: Path, ready: str) -> Iterator[None]:
    """Run `argv` in `cwd` until the block ends; ready once `ready` (a URL) answers."""
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(ready, timeout=5).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{argv[0]} did not start") from None
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def sweepwise_store(directory: Path, runs: int) -> float:
    """Run the `runs`-trial sweep in `directory`; its wall time (s)."""
    (directory / "benchjobs.py").write_text(BEHAVIOUR)
    for script in ("train.py", "eval.py"):
        (directory / script).touch()
    (directory / "big.yaml").write_text(SPEC.format(runs=runs))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sweepwise", "run", "big.yaml", "--quiet"],
        cwd=directory,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def optuna_study(directory: Path, runs: int) -> Path:
    """An Optuna study `big` of `runs` complete trials in a journal file; the file."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = directory / "optuna.log"
    study = optuna.create_study(
        storage=JournalStorage(JournalFileBackend(str(path))), study_name="big", direction="maximize"
    )
    space = {
        "x": FloatDistribution(0, 1),
        "lr": FloatDistribution(1e-5, 1, log=True),
        "width": IntDistribution(4, 256, log=True),
        "kind": CategoricalDistribution(["relu", "tanh", "plain"]),
    }
    rng = random.Random(1)
    trials = []
    for _ in range(runs):
        params = {
            "x": rng.random(),
            "lr": 10 ** rng.uniform(-5, 0),
            "width": 2 ** rng.randint(2, 8),
            "kind": rng.choice(["relu", "tanh", "plain"]),
        }
        value = params["x"] * params["width"] ** 0.1
        trials.append(optuna.trial.create_trial(params=params, distributions=space, value=value))
    study.add_trials(trials)
    return path


def first_paint(page: Any) -> float:
    value: float = page.evaluate(
        "performance.getEntriesByName('first-contentful-paint').map(e => e.startTime)[0] ?? -1"
    )
    return value


CLICK_TO_ROWS = """async ([body, button]) => {
    body = document.querySelector(body);
    const before = body.firstElementChild.textContent;
    const start = performance.now();
    const changed = new Promise(resolve => new MutationObserver((_, observer) => {
        if (body.firstElementChild && body.firstElementChild.textContent !== before) {
            observer.disconnect();
            resolve(performance.now() - start);
        }
    }).observe(body, {childList: true, subtree: true, characterData: true}));
    document.querySelector(button).click();
    return await changed;
}"""


def measure_sweepwise(browser: Any, base: str, label: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(base + "/experiments/big", wait_until="commit")
    page.wait_for_selector("#runs-body tr", timeout=WAIT_MS)
    # the table is in the page's HTML: it is there once the document is parsed
    table = page.evaluate("performance.getEntriesByType('navigation')[0].domInteractive")
    page.wait_for_function("Number(document.body.dataset.plotsDrawn || 0) >= 1", timeout=WAIT_MS)
    drawn = page.evaluate("performance.now()")
    row("sweepwise", f"{label}: first paint", f"{first_paint(page):.0f} ms")
    row("sweepwise", f"{label}: runs table in the page (DOM interactive)", f"{table:.0f} ms")
    row("sweepwise", f"{label}: every plot drawn", f"{drawn:.0f} ms")
    pages = [page.evaluate(CLICK_TO_ROWS, ["#runs-body", "#next"]) for _ in range(5)]
    row(
        "sweepwise",
        f"{label}: a page of the runs table (next, median of 5)",
        f"{statistics.median(pages):.0f} ms",
    )
    sort = page.evaluate(CLICK_TO_ROWS, ["#runs-body", '#runs th[data-sort="score"] a'])
    row("sweepwise", f"{label}: runs table sorted by score", f"{sort:.0f} ms")
    page.close()


def measure_optuna_dashboard(browser: Any, base: str, label: str, runs: int, deadline_ms: int) -> None:
    """The study page (`/dashboard/studies/ID`): first paint, and when its history plot holds every trial.

    Its trials-table page (`/trialTable`) is opened too, the first time: when its rows show.
    A wait longer than `deadline_ms` is reported as such.
    """
    import json

    with urllib.request.urlopen(base + "/api/studies", timeout=60) as answer:
        study_id = json.load(answer)["study_summaries"][0]["study_id"]
    study = f"{base}/dashboard/studies/{study_id}"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(study, wait_until="commit")
    try:  # its history plot holds every trial once the study is loaded
        page.wait_for_function(
            f"[...document.querySelectorAll('.js-plotly-plot')].some(p => (p.data || [])"
            f".some(t => (t.x || []).length >= {runs}))",
            timeout=deadline_ms,
        )
        drawn = f"{page.evaluate('performance.now()'):.0f} ms"
    except Exception as exc:  # Playwright's TimeoutError
        drawn = f"not within {deadline_ms / 1000:.0f} s ({type(exc).__name__})"
    row("optuna-dashboard", f"{label}: first paint (study page)", f"{first_paint(page):.0f} ms")
    row("optuna-dashboard", f"{label}: history plot drawn with every trial (study page)", drawn)
    page.close()
    if label != "cold":
        return
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(study + "/trialTable", wait_until="commit")
    try:
        page.wait_for_function(
            "document.querySelectorAll('tbody tr, [role=row]').length > 1", timeout=deadline_ms
        )
        shown = f"{page.evaluate('performance.now()'):.0f} ms"
    except Exception as exc:  # Playwright's TimeoutError
        shown = f"no rows within {deadline_ms / 1000:.0f} s ({type(exc).__name__})"
    row("optuna-dashboard", "trialTable page: rows shown", shown)
    page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 runs")
    parser.add_argument("--no-optuna", action="store_true", help="leave optuna-dashboard out")
    args = parser.parse_args()
    runs = 1000 if args.quick else args.runs
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: run .ci/install-chromium (as root)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        seconds = sweepwise_store(directory, runs)
        row("sweepwise", f"sweep of {runs} runs in virtual time (store written)", f"{seconds:.1f} s")
        study = None
        if not args.no_optuna:
            start = time.perf_counter()
            study = optuna_study(directory, runs)
            row("optuna-dashboard", f"study of {runs} trials written", f"{time.perf_counter() - start:.1f} s")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            argv = [sys.executable, "-m", "sweepwise", "dashboard", "--port", str(port)]
            with server(argv, directory, base + "/static/dashboard.css"):
                for label in ("cold", "warm"):
                    measure_sweepwise(browser, base, label)
            if study is not None:
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                argv = [
                    os.path.join(os.path.dirname(sys.executable), "optuna-dashboard"),
                    str(study),
                    "--port",
                    str(port),
                    "--host",
                    "127.0.0.1",
                ]
                with server(argv, directory, base + "/api/meta"):
                    for label in ("cold", "warm"):
                        measure_optuna_dashboard(browser, base, label, runs, 120_000)
            browser.close()
    print(f"\n{runs} runs, {os.cpu_count()} cores\n")
    print("| tool | what | figure |")
    print("| --- | --- | --- |")
    for tool, what, figure in ROWS:
        print(f"| {tool} | {what} | {figure} |")


if __name__ == "__main__":
    main()
