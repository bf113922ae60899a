"""`sweepwise report`: one self-contained HTML file with the experiment's plots and its best runs.

plotly.js, the styles and the drawing script are inlined, so the file opens with no network
and no dashboard running (docs/dashboard.md, "Report").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sweepwise.app.views import RunReader
from sweepwise.dashboard import data, pages, plots

BEST_RUNS = 10


def _inline_script(text: str) -> str:
    """`text` made safe to sit in an inline `<script>` element (no `</script` inside)."""
    return text.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def report_html(reader: RunReader, experiment: str, *, best_runs: int = BEST_RUNS) -> str:
    """The report of `experiment` as one HTML page.

    Raises:
        SweepwiseError: there is no such experiment.
    """
    view = data.experiment_view(reader, experiment)
    points = data.scored_points(view["runs"])
    sign = 1.0 if view["goal"] == "maximize" else -1.0
    best = sorted(points, key=lambda point: -sign * point["score"])[:best_runs]
    return pages.render(
        "report.html",
        view=view,
        best=best,
        figures=plots.experiment_figures(
            points, view["parameters"], view["metric"], view["goal"], view["log_parameters"]
        ),
        css=pages.asset("dashboard.css"),
        plotly=_inline_script(pages.plotly_js().decode("utf-8")),
        script=_inline_script(pages.asset("dashboard.js")),
        written=dt.datetime.now(dt.UTC),
    )


def write_report(reader: RunReader, experiment: str, out: Path) -> int:
    """Write the report of `experiment` to `out`; return its size in bytes."""
    text = report_html(reader, experiment)
    out.write_text(text, encoding="utf-8")
    return len(text.encode("utf-8"))


__all__ = ["BEST_RUNS", "report_html", "write_report"]
