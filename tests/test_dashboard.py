"""The dashboard without a browser: its payloads, plots, escaping, token gate and error pages (issue 20).

Pages are asked of the real app (starlette's TestClient) over a real store written by a real
sweep in virtual time; the browser tests (tests/test_dashboard_browser.py) drive Chromium.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import cli, status_json
from dashboard_helpers import MARKUP, simulated_sweep
from sweepwise.core.errors import ConfigError
from sweepwise.dashboard import data
from sweepwise.dashboard.app import DashboardSettings, build_app
from sweepwise.dashboard.importance import parameter_importance
from sweepwise.dashboard.pages import embed_json
from sweepwise.dashboard.plots import pareto_front
from sweepwise.dashboard.security import is_loopback

HEAVY = ("starlette", "uvicorn", "plotly", "sklearn", "jinja2")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding experiment `sim`: 12 completed trials, one parameter a choice carrying markup."""
    directory = tmp_path_factory.mktemp("sim")
    simulated_sweep(directory)
    return directory


def client(directory: Path, token: str | None = None) -> TestClient:
    settings = DashboardSettings(store_url=f"sqlite:///{directory / 'sweepwise.db'}", token=token)
    return TestClient(build_app(settings), raise_server_exceptions=False)


def test_the_core_never_imports_the_dashboard_extra(tmp_path: Path) -> None:
    code = (
        "import sys, sweepwise, sweepwise.app.cli, sweepwise.app.views, sweepwise.stores.location;"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [["dashboard"], ["report", "sim", "--out", "r.html"]])
def test_a_missing_extra_is_one_line_naming_the_install(tmp_path: Path, command: list[str]) -> None:
    code = (
        "import sys; sys.modules['starlette'] = None; sys.argv = ['sweepwise', *sys.argv[1:]];"
        "from sweepwise._entry import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *command], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "starlette" in lines[0] and "pip install 'sweepwise[dashboard]'" in lines[0]


def test_embedded_json_cannot_end_its_script_element() -> None:
    value = {"name": "</script><script>alert(1)</script>", "note": "<!-- & -->", "nan": float("nan")}
    text = str(embed_json(value))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {**value, "nan": "NaN"}  # as `status --json` writes it


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "colour"}, "sort"),
        ({"order": "up"}, "order"),
        ({"status": "done"}, "status"),
        ({"page": "0"}, "page"),
        ({"per_page": "x"}, "per_page"),
        ({"per_page": "501"}, "per_page"),
    ],
)
def test_a_bad_table_query_names_its_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        data.TableQuery.from_params(params)
    assert caught.value.field == field


def _row(run_id: str, status: str, score: float | None, **params: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "status": status,
        "status_label": status.upper(),
        "suggestion": params,
        "score": score,
        "cost": 1.0,
        "runtime": 1.0,
        "train_exit_code": 0 if status == "completed" else None,
        "eval_exit_code": 0 if status == "completed" else None,
    }


def test_the_runs_table_sorts_filters_and_pages_on_the_server() -> None:
    rows = [
        _row("r1", "completed", 0.5, lr=0.1, act="relu"),
        _row("r2", "in_training", None, lr=0.3, act="tanh"),
        _row("r3", "completed", 0.9, lr=0.2, act="relu"),
        _row("r4", "failed", None, lr=0.4, act="relu"),
    ]
    by_score = data.table_page(rows, data.TableQuery(sort="score", descending=True))
    assert [row["run_id"] for row in by_score["rows"]] == ["r3", "r1", "r2", "r4"]  # missing scores last
    ascending = data.table_page(rows, data.TableQuery(sort="score"))
    assert [row["run_id"] for row in ascending["rows"]][:2] == ["r1", "r3"]
    by_lr = data.table_page(rows, data.TableQuery(sort="param:lr", descending=True))
    assert [row["run_id"] for row in by_lr["rows"]] == ["r4", "r2", "r3", "r1"]
    completed = data.table_page(rows, data.TableQuery(status="completed"))
    assert [row["run_id"] for row in completed["rows"]] == ["r1", "r3"]
    tanh = data.table_page(rows, data.TableQuery(text="act=TANH"))
    assert [row["run_id"] for row in tanh["rows"]] == ["r2"]
    second = data.table_page(rows, data.TableQuery(page=2, per_page=3))
    assert (second["total"], second["pages"], [row["run_id"] for row in second["rows"]]) == (4, 2, ["r4"])
    beyond = data.table_page(rows, data.TableQuery(page=9, per_page=3))
    assert beyond["page"] == 2
    running = data.table_page(rows, data.TableQuery(status="in_training"))["rows"][0]
    states = (running["train_state"], running["eval_state"], running["finished"])
    assert states == ("running", "pending", False)


def test_the_pareto_front_holds_the_trials_nothing_beats_on_score_and_cost() -> None:
    def point(run_id: str, score: float, cost: float) -> dict[str, Any]:
        return {"run_id": run_id, "score": score, "cost": cost, "params": {}}

    points = [point("a", 0.5, 1.0), point("b", 0.4, 2.0), point("c", 0.8, 3.0), point("d", 0.8, 4.0)]
    assert [p["run_id"] for p in pareto_front(points, "maximize")] == ["a", "c"]
    assert [p["run_id"] for p in pareto_front(points, "minimize")] == ["a", "b"]


@pytest.mark.slow
def test_importance_ranks_the_parameter_that_decides_the_score_first() -> None:
    points = [
        {"score": float(i % 7), "params": {"x": i % 7, "noise": i * 37 % 11, "c": "ab"[i % 2]}}
        for i in range(40)
    ]
    shares = parameter_importance(points, ["x", "noise", "c"])
    assert max(shares, key=lambda name: shares[name]) == "x"
    assert sum(shares.values()) == pytest.approx(1.0)
    assert parameter_importance(points[:1], ["x"]) == {}


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")


def test_the_runs_table_reads_what_status_json_shows(sim_dir: Path) -> None:
    status = status_json(sim_dir, "sim")
    table = client(sim_dir).get("/experiments/sim/runs", params={"per_page": "500"}).json()
    assert [row["run_id"] for row in table["rows"]] == [row["run_id"] for row in status["runs"]]
    assert [row["score"] for row in table["rows"]] == [row["score"] for row in status["runs"]]
    assert [row["status"] for row in table["rows"]] == ["completed"] * 12


def test_every_plot_has_one_point_per_finished_trial(sim_dir: Path) -> None:
    live = client(sim_dir).get("/experiments/sim/live").json()
    assert live["progress"] == {"finished": 12, "total": 12, "running": 0, "failed": 0}
    figures = live["figures"]
    assert len(figures["plot-history"]["data"][0]["y"]) == 12
    assert len(figures["plot-pareto"]["data"][0]["x"]) == 12
    assert 1 <= len(figures["plot-pareto"]["data"][1]["x"]) <= 12
    assert all(len(axis["values"]) == 12 for axis in figures["plot-parallel"]["data"][0]["dimensions"])
    assert len(figures["plot-slice-0"]["data"][0]["x"]) == len(figures["plot-slice-1"]["data"][0]["x"]) == 12
    assert sorted(figures["plot-importance"]["data"][0]["y"]) == ["kind", "x"]
    again = client(sim_dir).get("/experiments/sim/live", params={"seq": str(live["seq"])}).json()
    assert again["figures"] is None  # nothing changed since: the plots are not sent again


def test_markup_from_runs_is_text_on_every_page(sim_dir: Path) -> None:
    app = client(sim_dir)
    runs = status_json(sim_dir, "sim")["runs"]
    marked = next(row["run_id"] for row in runs if row["suggestion"]["kind"] == MARKUP)
    for path in ("/", "/experiments/sim", f"/runs/{marked}", "/experiments/sim?q=%3Cscript%3E"):
        page = app.get(path)
        assert page.status_code == 200, (path, page.text)
        assert MARKUP not in page.text and "<script>alert" not in page.text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in app.get(f"/runs/{marked}").text


def test_an_unknown_experiment_or_run_gets_a_page_that_says_so(sim_dir: Path) -> None:
    app = client(sim_dir)
    page = app.get("/experiments/nope")
    assert page.status_code == 404
    assert "no experiment named &#39;nope&#39;" in page.text and "experiments: sim" in page.text
    run = app.get("/runs/nope")
    assert run.status_code == 404 and "no run &#39;nope&#39;" in run.text
    assert app.get("/experiments/nope/runs").json()["error"].startswith("no experiment named")
    assert "Traceback" not in page.text + run.text


def test_a_store_that_cannot_be_read_gets_a_page_that_says_so(tmp_path: Path) -> None:
    missing = client(tmp_path / "nowhere").get("/")
    assert missing.status_code == 503 and "no sweepwise store at" in missing.text
    (tmp_path / "sweepwise.db").write_text("not a database")
    broken = client(tmp_path).get("/experiments/x")
    assert broken.status_code == 503 and "The store cannot be read" in broken.text
    assert "Traceback" not in missing.text + broken.text


ROUTES = [
    "/",
    "/experiments/sim",
    "/experiments/sim/runs",
    "/experiments/sim/live",
    "/runs/sim_trial_0001",
    "/static/plotly.min.js",
    "/static/dashboard.js",
    "/no/such/page",
]


def test_with_a_token_every_request_without_it_gets_401(sim_dir: Path) -> None:
    app = client(sim_dir, token="s3cret")
    for path in ROUTES:
        assert app.get(path).status_code == 401, path
        assert app.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
    assert app.post("/cancel", data={"target": "sim", "kind": "experiment"}).status_code == 401
    assert app.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert app.get("/", headers={"X-Sweepwise-Token": "s3cret"}).status_code == 200
    first = app.get("/experiments/sim", params={"token": "s3cret"})
    assert first.status_code == 200 and "sweepwise_token" in first.headers["set-cookie"]
    assert app.get("/runs/sim_trial_0001").status_code == 200  # the cookie carries it now


def test_on_loopback_without_a_token_only_loopback_host_names_are_answered(sim_dir: Path) -> None:
    # a page of another site that made its own name point at 127.0.0.1 (DNS rebinding) sends
    # that name as Host: refused, on every route
    settings = DashboardSettings(store_url=f"sqlite:///{sim_dir / 'sweepwise.db'}", loopback_only=True)
    app = TestClient(build_app(settings), base_url="http://127.0.0.1:8080", raise_server_exceptions=False)
    assert app.get("/").status_code == 200
    for host in ("localhost:8080", "[::1]:8080", "127.0.0.1"):
        assert app.get("/", headers={"Host": host}).status_code == 200, host
    for path in ROUTES:
        assert app.get(path, headers={"Host": "evil.example:8080"}).status_code == 421, path
    post = app.post("/cancel", data={"target": "sim"}, headers={"Host": "evil.example"})
    assert post.status_code == 421


def test_a_cancel_must_carry_the_page_token(sim_dir: Path) -> None:
    app = client(sim_dir)
    page = app.get("/experiments/sim").text
    token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
    form = {"target": "sim_trial_0001", "kind": "run"}
    assert app.post("/cancel", data=form).status_code == 403
    assert app.post("/cancel", data={**form, "token": "guess"}).status_code == 403
    done = app.post("/cancel", data={**form, "token": token}, headers={"Accept": "application/json"})
    assert done.json()["message"].endswith("had already finished (COMPLETED); nothing to cancel")
    elsewhere = {**form, "token": token, "next": "//evil.example/"}
    back = app.post("/cancel", data=elsewhere, follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"].startswith("/?note=")


@pytest.mark.slow
def test_the_report_is_one_file_that_needs_nothing_else(sim_dir: Path) -> None:
    result = cli("report", "sim", "--out", "report.html", cwd=sim_dir)
    assert result.returncode == 0, result.stderr
    text = (sim_dir / "report.html").read_text()
    assert "<script src" not in text and "<link" not in text and "http://" not in text.split("<script>")[0]
    assert text.count('<div class="plot') == 4 + 2 and MARKUP not in text
    assert text.count("<tr><td>") == 10  # the best runs


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["report", "sim", "--out", "missing/report.html"], "--out"),
        (["dashboard", "--port", "70000"], "--port"),
        (["dashboard", "--token", " "], "--token"),
    ],
)
def test_bad_options_are_one_line_naming_the_option(sim_dir: Path, args: list[str], field: str) -> None:
    result = cli(*args, cwd=sim_dir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}"), result.stderr


def test_report_of_an_unknown_experiment_says_which_there_are(sim_dir: Path) -> None:
    result = cli("report", "nope", "--out", "r.html", cwd=sim_dir)
    assert result.returncode == 1 and "experiments: sim" in result.stderr


def test_the_lean_reader_reads_job_events_as_the_full_store_does(sim_dir: Path) -> None:
    from sweepwise.stores.sql import SQLStore
    from sweepwise.stores.sqlite_reader import SQLiteReader

    lean, full = SQLiteReader(sim_dir / "sweepwise.db"), SQLStore(f"sqlite:///{sim_dir / 'sweepwise.db'}")
    try:
        events = lean.fetch_job_events("sim_trial_0001")
        assert events == full.fetch_job_events("sim_trial_0001")
        assert [event["kind"] for event in events][:1] == ["started"]
    finally:
        lean.close()
        full.close()


@pytest.mark.slow
def test_a_postgresql_store_reads_as_status_reads_it(tmp_path: Path, postgres_server: Any) -> None:
    from conftest import fresh_postgres_database

    databases = fresh_postgres_database(postgres_server.url)
    url = next(databases)
    try:
        simulated_sweep(tmp_path, trials=6, store=url)
        status = json.loads(cli("status", "sim", "--json", "--store", url, cwd=tmp_path).stdout)
        app = TestClient(build_app(DashboardSettings(store_url=url)), raise_server_exceptions=False)
        table = app.get("/experiments/sim/runs").json()
        assert [row["run_id"] for row in table["rows"]] == [row["run_id"] for row in status["runs"]]
        assert [row["score"] for row in table["rows"]] == [row["score"] for row in status["runs"]]
        assert len(app.get("/experiments/sim/live").json()["figures"]["plot-history"]["data"][0]["y"]) == 6
        run = app.get("/runs/sim_trial_0001")
        assert run.status_code == 200 and "recorded by the controller: finished" in run.text
        assert "sim" in app.get("/").text
    finally:
        next(databases, None)


def test_a_curve_of_a_hundred_thousand_reports_is_thinned_to_real_points_ending_at_the_last(
    tmp_path: Path,
) -> None:
    # A job reporting its loss every step, and a validation metric every 10,000 steps: the run
    # page draws at most about CURVE_POINTS of each, all of them reported values, the sparse
    # metric whole, and each curve ends at the job's last report.
    from types import SimpleNamespace

    from sweepwise.core.records import RunInfo
    from sweepwise.dashboard.run_view import CURVE_POINTS, metric_curves

    run_dir = tmp_path / "runs" / "exp" / "r1"
    run_dir.mkdir(parents=True)
    steps = 100_000
    with open(run_dir / "train.metrics.jsonl", "w") as rows:
        for step in range(1, steps + 1):
            rows.write(json.dumps({"step": step, "time": 1.0, "loss": 1.0 / step}) + "\n")
            if step % 10_000 == 0:
                rows.write(json.dumps({"step": step, "time": 1.0, "val": step / steps}) + "\n")
            if step == 5:
                rows.write('{"step": 5, "loss": \n')  # a malformed row is passed over
    record = SimpleNamespace(name="exp", spec={"runs_root": str(tmp_path / "runs")})
    figure = metric_curves(record, RunInfo("r1", has_started_training=True))
    assert figure is not None
    traces = {trace["name"]: trace for trace in figure["data"]}
    loss, val = traces["train: loss"], traces["train: val"]
    assert CURVE_POINTS // 2 <= len(loss["x"]) <= CURVE_POINTS + 1
    assert loss["x"][0] == 1 and loss["x"][-1] == steps and loss["x"] == sorted(set(loss["x"]))
    assert loss["y"] == [1.0 / step for step in loss["x"]]  # values reported, not averaged
    assert val["x"] == list(range(10_000, steps + 1, 10_000))
