"""The dashboard's HTML: Jinja2 templates with autoescaping, and JSON embedded in a page safely.

Everything a run brings (parameter values, metric names, log lines) reaches a page through
an autoescaped template or `embed_json`, never spliced into markup (docs/dashboard.md, "Security").
"""

from __future__ import annotations

import datetime as dt
import math
from functools import cache
from importlib.resources import files
from typing import Any

import jinja2
from markupsafe import Markup

from sweepwise.core.jsonsafe import dumps_strict

_SCRIPT_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def embed_json(value: Any) -> Markup:
    """`value` as JSON that can sit inside a `<script>` element: no `</script>`, no `<!--`, strict JSON."""
    return Markup(dumps_strict(value, default=str).translate(_SCRIPT_SAFE))


def as_text(value: Any) -> str:
    """`value` as JSON text, for a page to show (and escape) as it is."""
    return value if isinstance(value, str) else dumps_strict(value, default=str)


def number(value: Any, digits: int = 4) -> str:
    """A score or a cost for a table cell: 4 significant digits, `-` when there is none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def moment(value: Any) -> str:
    """A datetime (or epoch seconds) as `2026-12-02 10:30:38 UTC`, `-` when there is none."""
    from sweepwise.dashboard.run_view import when

    stamp = when(value)
    return "-" if stamp is None else stamp.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def precise_moment(value: Any) -> str:
    """A datetime as `10:30:38.455`, for a run's timeline."""
    from sweepwise.dashboard.run_view import when

    stamp = when(value)
    return "-" if stamp is None else stamp.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@cache
def environment() -> jinja2.Environment:
    """The templates of `sweepwise/dashboard/templates`, autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sweepwise.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(json=embed_json, text=as_text, number=number, moment=moment, precise=precise_moment)
    return env


def render(template: str, **context: Any) -> str:
    """The page `template` rendered with `context`."""
    return environment().get_template(template).render(**context)


def asset(name: str) -> str:
    """A file of `sweepwise/dashboard/static` (`dashboard.js`, `dashboard.css`) as text."""
    return files("sweepwise.dashboard").joinpath("static", name).read_text(encoding="utf-8")


def plotly_js() -> bytes:
    """plotly.js as the plotly package ships it (`plotly/package_data/plotly.min.js`): no CDN."""
    return files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()


__all__ = [
    "as_text",
    "asset",
    "embed_json",
    "environment",
    "moment",
    "number",
    "plotly_js",
    "precise_moment",
    "render",
]
