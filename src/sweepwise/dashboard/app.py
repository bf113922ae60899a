"""The dashboard's ASGI app: its routes, each a thin wrapper over `data`, `plots` and `run_view`.

Each request opens the store's reader (`sweepwise.stores.location.open_reader`, what
`sweepwise status` opens) and closes it when done; a cancel opens the full store and calls
`cancel_target`, what `sweepwise cancel` calls (docs/dashboard.md).
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sweepwise.app.views import RunReader, experiment_record
from sweepwise.core.errors import ConfigError, SweepwiseError
from sweepwise.core.jsonsafe import dumps_strict
from sweepwise.dashboard import data, pages, plots
from sweepwise.dashboard.reads import ViewCache, stamp_of
from sweepwise.dashboard.run_view import run_view
from sweepwise.dashboard.security import LoopbackHostGate, TokenGate, new_token, same_token

POLL_MS = 2000


@dataclass(frozen=True)
class DashboardSettings:
    """How a dashboard serves.

    Attributes:
        store_url: the store it reads.
        token: the token every request must carry; None on loopback without `--token`.
        action_token: the token a POST's form must carry (`token`, else a secret of this process).
        poll_ms: how often a live page asks for news (ms).
        loopback_only: answer only requests whose Host is a loopback name (a dashboard on
            loopback without a token: `security.LoopbackHostGate`).
    """

    store_url: str
    token: str | None = None
    action_token: str = ""
    poll_ms: int = POLL_MS
    loopback_only: bool = False


class StoreNotReadable(SweepwiseError):
    """The store cannot be opened or holds no sweepwise runs."""


@contextmanager
def open_store_reader(url: str) -> Iterator[RunReader]:
    """The reader `sweepwise status` uses on `url`, closed afterwards.

    Raises:
        StoreNotReadable: the store cannot be opened or holds no sweepwise schema.
    """
    from sweepwise.stores.location import open_reader

    reader: Any = None
    try:
        reader = open_reader(url)
        found = reader.exists()
    except Exception as exc:
        if reader is not None:
            reader.close()
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreNotReadable(f"could not open the store {url}: {reason}") from None
    if not found:
        reader.close()
        raise StoreNotReadable(
            f"no sweepwise store at {reader.url}; run a sweep first, or start the dashboard with --store URL"
        )
    try:
        yield reader
    finally:
        reader.close()


def _settings(request: Request) -> DashboardSettings:
    settings: DashboardSettings = request.app.state.settings
    return settings


def _json(value: Any, status: int = 200) -> Response:
    return Response(dumps_strict(value, default=str), status_code=status, media_type="application/json")


def _page(template: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    note = request.query_params.get("note", "")
    return HTMLResponse(pages.render(template, note=note, **context), status_code=status)


def _cached_view(request: Request, reader: RunReader, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cache entry of experiment `name` as it is now, and its `data.experiment_view` (built once).

    Raises:
        SweepwiseError: there is no experiment `name`.
    """
    cache: ViewCache = request.app.state.cache
    record = experiment_record(reader, name)
    entry = cache.entry((_settings(request).store_url, name), stamp_of(record))
    view: dict[str, Any] = ViewCache.get(entry, "view", lambda: data.experiment_view(reader, name))
    return entry, view


def _figures(entry: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
    """The experiment's plots (`plots.experiment_figures`), built once per cache entry."""

    def build() -> dict[str, Any]:
        points = data.scored_points(view["runs"])
        return plots.experiment_figures(
            points, view["parameters"], view["metric"], view["goal"], view["log_parameters"]
        )

    figures: dict[str, Any] = ViewCache.get(entry, "figures", build)
    return figures


def experiments_page(request: Request) -> Response:
    """GET /: every experiment with its progress, best score, cost and last update."""
    with open_store_reader(_settings(request).store_url) as reader:
        names = [record.name for record in reader.list_experiments()]
        lines = [data.experiment_line(_cached_view(request, reader, name)[1]) for name in names]
        url = reader.url
    return _page("experiments.html", request, experiments=lines, store=url)


def _query_data(query: data.TableQuery) -> dict[str, Any]:
    return {
        "sort": query.sort,
        "order": "desc" if query.descending else "asc",
        "status": query.status,
        "q": query.text,
        "page": query.page,
        "per_page": query.per_page,
    }


def experiment_page(request: Request) -> Response:
    """GET /experiments/{name}: progress and the runs table (sorted, filtered, paged by the query).

    The plots are not in the page: its script asks `/live` for them at once, so a large
    experiment's page shows its table before its plots are built.
    """
    settings = _settings(request)
    name = request.path_params["name"]
    query = data.TableQuery.from_params(request.query_params)
    with open_store_reader(settings.store_url) as reader:
        _, view = _cached_view(request, reader, name)
    page_data = {
        "experiment": name,
        "parameters": view["parameters"],
        "seq": None,  # the first poll brings the plots
        "poll_ms": settings.poll_ms,
        "query": _query_data(query),
        "action_token": settings.action_token,
    }
    return _page(
        "experiment.html",
        request,
        view=view,
        table=data.table_page(view["runs"], query),
        page_data=page_data,
        statuses=list(data.STATUS_BY_KEY),
        action_token=settings.action_token,
        query=query,
        figures=None,
    )


def runs_json(request: Request) -> Response:
    """GET /experiments/{name}/runs: one page of the runs table as JSON (`data.table_page`)."""
    query = data.TableQuery.from_params(request.query_params)
    with open_store_reader(_settings(request).store_url) as reader:
        _, view = _cached_view(request, reader, request.path_params["name"])
    return _json(data.table_page(view["runs"], query))


def live_json(request: Request) -> Response:
    """GET /experiments/{name}/live?seq=S: progress, a table page, the plots if runs changed since S."""
    query = data.TableQuery.from_params(request.query_params)
    with open_store_reader(_settings(request).store_url) as reader:
        entry, view = _cached_view(request, reader, request.path_params["name"])
    changed = request.query_params.get("seq") != str(view["seq"])
    best = view["best"]
    return _json(
        {
            "status": view["status"],
            "seq": view["seq"],
            "progress": view["progress"],
            "counts": view["counts"],
            "best_score": best["score"] if best else None,
            "total_cost": view["total_cost"],
            "table": data.table_page(view["runs"], query),
            "figures": _figures(entry, view) if changed else None,
        }
    )


def run_page(request: Request) -> Response:
    """GET /runs/{run_id}: parameters, summary, job timeline, log tails and reported curves."""
    settings = _settings(request)
    with open_store_reader(settings.store_url) as reader:
        view = run_view(reader, request.path_params["run_id"])
    return _page("run.html", request, run=view, action_token=settings.action_token)


def _local_path(target: str, fallback: str) -> str:
    """`target` if it is a path on this site (`/...`, not `//host/...`), else `fallback`."""
    parts = urllib.parse.urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.scheme and not parts.netloc:
        return target
    return fallback


async def cancel(request: Request) -> Response:
    """POST /cancel (`target`, `kind`: run or experiment, `token`): `sweepwise cancel`, then back."""
    settings = _settings(request)
    form = await request.form()
    given = form.get("token") or request.headers.get("x-sweepwise-token")
    if not isinstance(given, str) or not same_token(given, settings.action_token):
        return _json({"error": "token: this action needs the page's token; reload the page"}, 403)
    target, kind = form.get("target"), form.get("kind")
    if not isinstance(target, str) or not target or kind not in ("run", "experiment"):
        return _json(
            {"error": "target, kind: give a run id or an experiment name, and kind=run or experiment"}, 400
        )
    from starlette.concurrency import run_in_threadpool

    message = await run_in_threadpool(_cancel, settings.store_url, target, str(kind))
    if "application/json" in request.headers.get("accept", ""):
        return _json({"message": message})
    back = _local_path(str(form.get("next") or "/"), "/")
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}note={urllib.parse.quote(message)}", status_code=303)


def _cancel(url: str, target: str, kind: str) -> str:
    from sweepwise.app.cancel import cancel_target
    from sweepwise.stores.location import open_store

    store = open_store(url)
    try:
        return cancel_target(store, target, kind)
    finally:
        store.close()


def plotly_asset(request: Request) -> Response:
    """GET /static/plotly.min.js: the plotly package's own copy."""
    return Response(
        pages.plotly_js(), media_type="text/javascript", headers={"cache-control": "max-age=86400"}
    )


def no_icon(request: Request) -> Response:
    """GET /favicon.ico: none (a browser asks for one on every page)."""
    return Response(status_code=204)


def own_asset(request: Request) -> Response:
    """GET /static/dashboard.js or dashboard.css."""
    name = request.path_params["name"]
    types = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
    if name not in types:
        return Response("no such file", status_code=404, media_type="text/plain")
    return Response(pages.asset(name), media_type=types[name])


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    if request.url.path.endswith(("/runs", "/live")) or request.method == "POST":
        return _json({"error": message}, status)
    return HTMLResponse(pages.render("error.html", title=title, message=message, note=""), status_code=status)


async def _on_sweepwise_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StoreNotReadable):
        return _error_page(request, 503, "The store cannot be read", str(exc))
    if isinstance(exc, ConfigError):
        return _error_page(request, 400, "Bad request", str(exc))
    return _error_page(request, 404, "Not found", str(exc))


async def _on_any_error(request: Request, exc: Exception) -> Response:
    reason = " ".join(str(exc).split())
    message = f"{type(exc).__name__}: {reason}; the dashboard's terminal has the details"
    import logging

    logging.getLogger(__name__).exception("dashboard request %s failed", request.url.path)
    return _error_page(request, 500, "Something went wrong", message)


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error_page(
        request, 404, "Not found", f"no page at {html.unescape(request.url.path)}; start from /"
    )


def build_app(settings: DashboardSettings) -> Starlette:
    """The dashboard app for `settings` (a token gate in front when `settings.token` is set)."""
    if not settings.action_token:
        settings = DashboardSettings(
            settings.store_url,
            settings.token,
            settings.token or new_token(),
            settings.poll_ms,
            settings.loopback_only,
        )
    routes = [
        Route("/", experiments_page),
        Route("/experiments/{name}", experiment_page),
        Route("/experiments/{name}/runs", runs_json),
        Route("/experiments/{name}/live", live_json),
        Route("/runs/{run_id}", run_page),
        Route("/cancel", cancel, methods=["POST"]),
        Route("/favicon.ico", no_icon),
        Route("/static/plotly.min.js", plotly_asset),
        Route("/static/{name}", own_asset),
    ]
    handlers: dict[Any, Callable[..., Any]] = {
        SweepwiseError: _on_sweepwise_error,
        404: _not_found,
        Exception: _on_any_error,
    }
    app = Starlette(
        routes=routes,
        middleware=[
            *([Middleware(LoopbackHostGate)] if settings.loopback_only else []),
            Middleware(TokenGate, token=settings.token),
        ],
        exception_handlers=handlers,
    )
    app.state.settings = settings
    app.state.cache = ViewCache()
    return app


__all__ = ["POLL_MS", "DashboardSettings", "StoreNotReadable", "build_app", "open_store_reader"]
