"""The dashboard in a real browser: Debian's Chromium driven by Playwright (issue 20, acceptance 1, 2, 3, 5).

Every test runs real sweeps and a real `sweepwise dashboard` process, and asserts what a person
would see. Chromium comes from Debian (`.ci/install-chromium`); a missing one fails the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import services
from conftest import REPO, cli, status_json
from dashboard_helpers import dashboard
from faults_helpers import wait_for
from services import CHROMIUM

pytestmark = pytest.mark.slow

SCREENSHOT = REPO / "docs" / "dashboard-experiment.png"
PLOTS_DRAWN = "Number(document.body.dataset.plotsDrawn || 0) >= 1"
WAIT_MS = 120_000  # the longest a page may take to show what is awaited (a deadline, not a measure)


@pytest.fixture(scope="module")
def browser(pytestconfig: pytest.Config) -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (no browser download)."""
    services.ensure("chromium", pytestconfig)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Watched:
    """A browser page, with the dialogs it opened and the script errors it raised."""

    def __init__(self, browser: Any, **options: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, **options)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watched(browser: Any) -> Iterator[Callable[..., Watched]]:
    opened: list[Watched] = []

    def open_page(**options: Any) -> Watched:
        opened.append(Watched(browser, **options))
        return opened[-1]

    yield open_page
    for page in opened:
        page.context.close()


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where the README's quickstart sweep ran to the end."""
    directory = tmp_path_factory.mktemp("quickstart")
    result = cli("run", str(REPO / "examples" / "quickstart" / "sweep.yaml"), "--quiet", cwd=directory)
    assert result.returncode == 0, result.stderr
    return directory


def figure_sizes(page: Any) -> dict[str, list[int]]:
    """Each drawn plot's id -> the number of points (or lines) of each of its traces."""
    sizes: dict[str, list[int]] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')].map(plot => [
            plot.id,
            plot.data.map(t => t.dimensions ? t.dimensions[0].values.length : (t.y || []).length),
        ]))"""
    )
    return sizes


def non_dominated(rows: list[dict[str, Any]]) -> set[str]:
    """The run ids no other run beats on both accuracy (higher) and cost (lower)."""
    return {
        row["run_id"]
        for row in rows
        if not any(
            other["score"] >= row["score"]
            and other["cost"] <= row["cost"]
            and (other["score"], other["cost"]) != (row["score"], row["cost"])
            for other in rows
        )
    }


def test_the_quickstart_as_a_person_sees_it(quickstart: Path, watched: Callable[..., Watched]) -> None:
    status = status_json(quickstart, "quickstart")
    view = watched()
    page = view.page
    with dashboard(quickstart) as dash:
        page.goto(dash.base + "/")
        line = page.locator('#experiments tr[data-experiment="quickstart"]')
        assert "complete" in line.inner_text() and "8 / 8" in line.inner_text()
        line.get_by_role("link", name="quickstart").click()
        page.wait_for_function(PLOTS_DRAWN, timeout=WAIT_MS)

        assert page.locator("#finished").inner_text() == "8"
        rows = page.locator("#runs-body tr")
        assert rows.count() == 8
        shown = {
            row.get_attribute("data-run"): (
                row.locator("td.status").inner_text(),
                float(row.locator("td").nth(8).inner_text()),
            )
            for row in rows.all()
        }
        for run in status["runs"]:
            label, score = shown[run["run_id"]]
            assert label == "COMPLETED" and score == pytest.approx(run["score"], rel=1e-3)

        sizes = figure_sizes(page)
        assert sizes["plot-history"] == [8, 8]  # every trial, and the best so far
        assert sizes["plot-pareto"][0] == 8
        assert sizes["plot-parallel"] == [8]
        assert [sizes[f"plot-slice-{i}"] for i in range(4)] == [[8]] * 4
        assert sizes["plot-importance"] == [4]  # a bar per parameter
        assert page.locator(".js-plotly-plot .main-svg").count() >= 8
        front = page.evaluate(
            "() => document.getElementById('plot-pareto').data.find(t => t.name === 'Pareto front').text"
        )
        assert set(front) == non_dominated(status["runs"])
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        best = max(status["runs"], key=lambda run: run["score"])["run_id"]
        page.get_by_role("link", name=best, exact=True).click()
        page.wait_for_function(PLOTS_DRAWN, timeout=WAIT_MS)
        assert page.locator("#run-status").inner_text() == "COMPLETED"
        timeline = page.locator("#timeline").inner_text()
        for job in ("train", "eval"):
            assert f"{job}\t1\tdispatched" in timeline and f"{job}\t1\tstarted" in timeline
            assert f"{job}\t1\tended, exit code 0" in timeline
        assert "post-eval hook ran" in timeline
        assert "accuracy on held-out data" in page.locator("#log-eval").inner_text()
        assert "SWEEPWISE_RESULT" in page.locator("#log-train").inner_text()
        sizes = figure_sizes(page)
        assert sizes["plot-jobs"] == [2]  # a bar for the train job and one for the eval job
        assert sizes["plot-curves"] and all(n > 1 for n in sizes["plot-curves"])  # loss, progress by step
    assert view.errors == [] and view.dialogs == []


def test_the_report_opens_offline_with_every_plot_drawn(
    quickstart: Path, watched: Callable[..., Watched]
) -> None:
    result = cli("report", "quickstart", "--out", "report.html", cwd=quickstart)
    assert result.returncode == 0, result.stderr
    view = watched(offline=True)
    asked: list[str] = []
    view.page.route("**/*", lambda route: (asked.append(route.request.url), route.continue_()))
    view.page.goto((quickstart / "report.html").as_uri())
    view.page.wait_for_function(PLOTS_DRAWN, timeout=WAIT_MS)
    sizes = figure_sizes(view.page)
    assert len(sizes) == 4 + 4  # history, Pareto, parallel, importance, a slice per parameter
    assert sizes["plot-history"] == [8, 8] and sizes["plot-parallel"] == [8]
    assert view.page.locator(".js-plotly-plot .main-svg").count() >= 8
    assert view.page.locator("#best-runs tbody tr").count() == 8
    assert [url for url in asked if not url.startswith("file://")] == []
    assert view.errors == []


def _start_sweep(spec: Path, cwd: Path, **env: str) -> subprocess.Popen[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SWEEPWISE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "sweepwise", "run", str(spec), "--quiet"],
        cwd=cwd,
        env={**clean, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _statuses(cwd: Path, experiment: str) -> list[str]:
    result = cli("status", experiment, "--json", cwd=cwd)
    return [row["status"] for row in json.loads(result.stdout)["runs"]] if result.returncode == 0 else []


# A training job that waits for its own gate file (`markers/<run id>.go`, at most 300 s).
GATED_TRAIN = textwrap.dedent(
    """
    import json, os, sys, time
    params = dict(word.split("=", 1) for word in sys.argv[1:])
    gate = os.path.join(os.environ["MARKERS"], os.environ["SWEEPWISE_RUN_ID"] + ".go")
    deadline = time.time() + 300
    while not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.05)
    with open(os.path.join(os.environ["SWEEPWISE_RUN_DIR"], "model.json"), "w") as f:
        json.dump({"x": float(params["x"])}, f)  # eval.py (tests/conftest.py) scores it
    """
)


def test_a_live_page_sees_the_finished_count_rise_without_reloading(
    tmp_path: Path, make_sweep: Callable[..., Path], watched: Callable[..., Watched]
) -> None:
    spec = make_sweep("live", scheduler={"type": "batched_synced", "max_trials": 4, "batch_size": 2})
    (tmp_path / "train.py").write_text(GATED_TRAIN)
    markers_dir = tmp_path / "markers"

    def open_gates() -> None:
        for row in status_json(tmp_path, "live")["runs"]:
            (markers_dir / f"{row['run_id']}.go").touch()

    sweep = _start_sweep(spec, tmp_path)
    try:
        wait_for(lambda: _statuses(tmp_path, "live").count("in_training") == 2, "the first batch training")
        view = watched()
        page = view.page
        with dashboard(tmp_path) as dash:
            page.goto(dash.base + "/experiments/live")
            page.wait_for_function(PLOTS_DRAWN, timeout=WAIT_MS)
            assert page.locator("#finished").inner_text() == "0"
            page.evaluate(
                """() => {
                    window.sameDocument = true;
                    window.finishedSeen = [];
                    const finished = document.getElementById('finished');
                    new MutationObserver(() => window.finishedSeen.push(Number(finished.textContent)))
                        .observe(finished, {childList: true, characterData: true, subtree: true});
                }"""
            )
            open_gates()
            page.wait_for_function("document.getElementById('finished').textContent === '2'", timeout=WAIT_MS)
            wait_for(lambda: len(_statuses(tmp_path, "live")) == 4, "the second batch")
            open_gates()
            page.wait_for_function("document.getElementById('finished').textContent === '4'", timeout=WAIT_MS)
            assert page.evaluate("window.sameDocument") is True  # never reloaded
            seen = page.evaluate("window.finishedSeen")
            assert seen == sorted(seen) and {2, 4} <= set(seen)
            page.wait_for_function(
                "document.getElementById('plot-history').data[0].y.length === 4", timeout=WAIT_MS
            )
            page.wait_for_function(
                "[...document.querySelectorAll('#runs-body td.status')]"
                ".every(td => td.textContent === 'COMPLETED')",
                timeout=WAIT_MS,
            )
        assert view.errors == []
    finally:
        open_gates()
        _, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err


# A training job that starts a child of its own, records both pids, and runs until stopped.
LONG_TRAIN = textwrap.dedent(
    """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    path = os.path.join(os.environ["MARKERS"], os.environ["SWEEPWISE_RUN_ID"] + ".pids")
    with open(path + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os.replace(path + ".tmp", path)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie waiting to be reaped has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _pids(markers_dir: Path, run_id: str) -> list[int]:
    path = markers_dir / f"{run_id}.pids"
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def test_cancelling_from_the_page_ends_the_jobs_process_group(
    tmp_path: Path, make_sweep: Callable[..., Path], watched: Callable[..., Watched]
) -> None:
    spec = make_sweep("stopme", scheduler={"type": "batched_synced", "max_trials": 2, "batch_size": 2})
    (tmp_path / "train.py").write_text(LONG_TRAIN)
    markers_dir = tmp_path / "markers"
    sweep = _start_sweep(spec, tmp_path)
    runs: list[str] = []
    try:
        wait_for(lambda: _statuses(tmp_path, "stopme").count("in_training") == 2, "two trainings running")
        runs = [row["run_id"] for row in status_json(tmp_path, "stopme")["runs"]]
        wait_for(lambda: all(len(_pids(markers_dir, run)) == 2 for run in runs), "the jobs' pid files")
        target, other = runs
        view = watched()
        page = view.page
        with dashboard(tmp_path) as dash:
            page.goto(dash.base + "/experiments/stopme")
            page.wait_for_function(PLOTS_DRAWN, timeout=WAIT_MS)
            page.locator(f'#runs-body tr[data-run="{target}"] button', has_text="Cancel").click()
            page.wait_for_url("**/experiments/stopme?note=*", timeout=WAIT_MS)
            assert page.locator("#note").inner_text() == f"cancelled run '{target}'"
            wait_for(lambda: not any(map(_alive, _pids(markers_dir, target))), "the cancelled job to end")
            assert all(map(_alive, _pids(markers_dir, other)))  # the other trial runs on
            page.wait_for_function(
                f"document.querySelector('#runs-body tr[data-run=\"{target}\"] td.status').textContent"
                " === 'CANCELLED'",
                timeout=WAIT_MS,
            )
            rows = {row["run_id"]: row["status"] for row in status_json(tmp_path, "stopme")["runs"]}
            assert rows == {target: "cancelled", other: "in_training"}

            page.locator("#cancel-experiment").click()
            page.wait_for_url("**/experiments/stopme?note=*", timeout=WAIT_MS)
            assert page.locator("#note").inner_text().startswith("cancelled experiment 'stopme'")
            wait_for(lambda: not any(map(_alive, _pids(markers_dir, other))), "the other job's processes")
            sweep.communicate(timeout=300)
            page.wait_for_function(
                "document.getElementById('experiment-status').textContent === 'cancelled'", timeout=WAIT_MS
            )
        assert view.errors == []
        assert [row["status"] for row in status_json(tmp_path, "stopme")["runs"]] == ["cancelled"] * 2
    finally:
        if sweep.poll() is None:
            sweep.terminate()
            sweep.communicate(timeout=60)
        for run in runs:
            for pid in _pids(markers_dir, run):
                if _alive(pid):
                    os.kill(pid, 9)


MARKUP_PARAM = "<script>alert('param')</script>"
MARKUP_IMG = '<img src="x" onerror="alert(2)">'
MARKUP_TRAIN = textwrap.dedent(
    """
    import json, os, sys
    params = dict(word.split("=", 1) for word in sys.argv[1:])
    print("<script>alert('log')</script>")
    print('<img src="x" onerror="alert(3)"> tag=' + params["tag"])
    with open(os.path.join(os.environ["SWEEPWISE_RUN_DIR"], "model.json"), "w") as f:
        json.dump({"x": float(params["x"])}, f)  # eval.py (tests/conftest.py) scores it
    """
)


def test_markup_from_runs_shows_as_text_in_the_browser(
    tmp_path: Path, make_sweep: Callable[..., Path], watched: Callable[..., Watched]
) -> None:
    spec = make_sweep(
        "markup",
        scheduler={"type": "batched_synced", "max_trials": 4, "batch_size": 4},
        parameters={
            "x": {"distribution": "uniform", "min": 0.0, "max": 1.0},
            "tag": {"choices": [MARKUP_PARAM, MARKUP_IMG]},
        },
    )
    (tmp_path / "train.py").write_text(MARKUP_TRAIN)
    result = cli("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = status_json(tmp_path, "markup")["runs"]
    view = watched()
    page = view.page
    with dashboard(tmp_path) as dash:
        page.goto(dash.base + "/experiments/markup")
        page.wait_for_function(PLOTS_DRAWN, timeout=WAIT_MS)
        table = page.locator("#runs").inner_text()
        for row in runs:
            assert row["suggestion"]["tag"] in table
        page.locator('#table-controls input[name="q"]').fill("<script>")  # the table drawn by the script
        page.locator("#table-controls button").click()
        page.wait_for_function(
            "[...document.querySelectorAll('#runs-body tr')].length === "
            + str(sum(row["suggestion"]["tag"] == MARKUP_PARAM for row in runs)),
            timeout=WAIT_MS,
        )
        assert MARKUP_PARAM in page.locator("#runs-body").inner_text()
        for row in runs:
            page.goto(f"{dash.base}/runs/{row['run_id']}")
            page.wait_for_function(PLOTS_DRAWN, timeout=WAIT_MS)
            log = page.locator("#log-train").inner_text()
            assert "<script>alert('log')</script>" in log and '<img src="x" onerror="alert(3)">' in log
            assert f"tag={row['suggestion']['tag']}" in log
            assert row["suggestion"]["tag"] in page.locator("#parameters").inner_text()
            injected = page.evaluate(
                """() => [...document.querySelectorAll('img, script')]
                    .filter(e => e.tagName === 'IMG' || e.textContent.includes('alert(')).length"""
            )
            assert injected == 0
    assert view.dialogs == [] and view.errors == []


ROUTES = [
    "/",
    "/experiments/quickstart",
    "/experiments/quickstart/runs",
    "/experiments/quickstart/live",
    "/runs/quickstart_trial_0001",
    "/static/plotly.min.js",
    "/static/dashboard.js",
    "/static/dashboard.css",
    "/favicon.ico",
    "/no/such/page",
]


def test_off_loopback_every_request_without_the_token_gets_401(
    quickstart: Path, watched: Callable[..., Watched]
) -> None:
    view = watched()
    page = view.page
    with dashboard(quickstart, host="0.0.0.0") as dash:
        token = dash.token
        assert token, dash.printed  # generated and printed, since none was given
        for route in ROUTES:
            response = page.goto(dash.base + route)
            assert response is not None and response.status == 401, route
            assert "needs its token" in page.content()
        posted = page.evaluate(
            """async () => (await fetch('/cancel', {method: 'POST',
                body: new URLSearchParams({target: 'quickstart', kind: 'experiment'})})).status"""
        )
        assert posted == 401
        assert page.goto(f"{dash.base}/?token=wrong-{token}").status == 401
        assert page.goto(f"{dash.base}/?token={token}").status == 200
        for route in ROUTES[:-2]:  # the cookie now carries the token
            assert page.goto(dash.base + route).status == 200, route
        page.goto(dash.base + "/experiments/quickstart")
        page.wait_for_function(PLOTS_DRAWN, timeout=WAIT_MS)
        page.wait_for_function("Number(document.body.dataset.polls || 0) >= 1", timeout=WAIT_MS)
    assert view.errors == []
    assert status_json(quickstart, "quickstart")["status"] == "complete"
