"""The experiment's plots as plotly figure dicts (`{"data": [...], "layout": {...}}`), drawn by plotly.js.

Each figure takes the scored trials (`data.scored_points`), one point (or line) per trial, in
trial order. Building dicts, not `plotly.graph_objects`, keeps a page of 10,000 trials cheap.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sweepwise.dashboard.importance import parameter_importance

Point = Mapping[str, Any]

_LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
    "height": 360,
    "hovermode": "closest",
    "legend": {"orientation": "h", "y": -0.2},
}


def _text(value: Any) -> str:
    """`value` as text for plotly, which reads a few HTML tags in labels: markup shows as itself."""
    return html.escape(str(value))


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    return {
        **_LAYOUT,
        "title": {"text": _text(title)},
        "xaxis": {"title": {"text": _text(x)}},
        "yaxis": {"title": {"text": _text(y)}},
        **extra,
    }


def _better(goal: str) -> float:
    return 1.0 if goal == "maximize" else -1.0


def _trials(points: Sequence[Point], x: Sequence[Any], hover: str) -> dict[str, Any]:
    """One marker per trial at (`x`, its score), named by its run id on hover."""
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "trial",
        "x": list(x),
        "y": [point["score"] for point in points],
        "text": [_text(point["run_id"]) for point in points],
        "hovertemplate": hover,
    }


def history_figure(points: Sequence[Point], metric: str, goal: str) -> dict[str, Any]:
    """The score of each scored trial in the order it was suggested, and the best so far as a step line."""
    sign = _better(goal)
    best, best_so_far = -math.inf, []
    for point in points:
        best = max(best, sign * point["score"])
        best_so_far.append(sign * best)
    x = list(range(1, len(points) + 1))
    return {
        "data": [
            _trials(points, x, "%{text}<br>" + _text(metric) + " %{y}<extra></extra>"),
            {
                "type": "scatter",
                "mode": "lines",
                "name": "best so far",
                "line": {"shape": "hv"},
                "x": x,
                "y": best_so_far,
            },
        ],
        "layout": _layout("Optimisation history", "trial (in the order suggested)", metric),
    }


def pareto_front(points: Sequence[Point], goal: str) -> list[Point]:
    """The trials no other trial beats on both score (by `goal`) and cost (lower is better), by cost."""
    sign = _better(goal)
    costed = sorted(
        (point for point in points if point["cost"] is not None),
        key=lambda point: (point["cost"], -sign * point["score"]),
    )
    front: list[Point] = []
    best = -math.inf
    for point in costed:  # cheapest first: a trial is on the front if it beats every cheaper one
        if sign * point["score"] > best:
            front.append(point)
            best = sign * point["score"]
    return front


def pareto_figure(points: Sequence[Point], metric: str, goal: str) -> dict[str, Any]:
    """Score against cost, every trial, with the Pareto front (`pareto_front`) marked and joined."""
    costed = [point for point in points if point["cost"] is not None]
    front = pareto_front(points, goal)
    return {
        "data": [
            _trials(
                costed,
                [point["cost"] for point in costed],
                "%{text}<br>cost %{x}<br>" + _text(metric) + " %{y}<extra></extra>",
            ),
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "Pareto front",
                "line": {"shape": "hv"},
                "marker": {"symbol": "diamond-open", "size": 12},
                "x": [point["cost"] for point in front],
                "y": [point["score"] for point in front],
                "text": [_text(point["run_id"]) for point in front],
            },
        ],
        "layout": _layout("Score against cost", "cost (s)", metric),
    }


def _axis_values(points: Sequence[Point], name: str) -> dict[str, Any]:
    """A parallel-coordinates axis: numbers as they are, choices as indices labelled with the choice."""
    values = [point["params"].get(name) for point in points]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None)
    if numeric:
        return {"label": _text(name), "values": values}
    labels = list(dict.fromkeys(str(v) for v in values))
    return {
        "label": _text(name),
        "values": [labels.index(str(v)) for v in values],
        "tickvals": list(range(len(labels))),
        "ticktext": [_text(label) for label in labels],
    }


def parallel_figure(points: Sequence[Point], parameters: Sequence[str], metric: str) -> dict[str, Any]:
    """One line per trial across an axis per parameter and one for the score, coloured by score."""
    scores = [point["score"] for point in points]
    dimensions = [_axis_values(points, name) for name in parameters]
    dimensions.append({"label": _text(metric), "values": scores})
    return {
        "data": [
            {
                "type": "parcoords",
                "name": "trial",
                "line": {"color": scores, "colorscale": "Viridis", "showscale": True},
                "dimensions": dimensions,
            }
        ],
        "layout": {
            **_LAYOUT,
            "title": {"text": "Parallel coordinates"},
            "margin": {"l": 60, "r": 60, "t": 80, "b": 30},
        },
    }


def slice_figure(points: Sequence[Point], name: str, metric: str, *, log: bool = False) -> dict[str, Any]:
    """The score of every trial against one parameter's value (on a log axis when `log`)."""
    having = [point for point in points if point["params"].get(name) is not None]
    values = [point["params"][name] for point in having]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    figure: dict[str, Any] = {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "name": "trial",
                "x": values if numeric else [_text(v) for v in values],
                "y": [point["score"] for point in having],
                "text": [_text(point["run_id"]) for point in having],
                "marker": {"color": list(range(len(having))), "colorscale": "Blues", "showscale": False},
                "hovertemplate": "%{text}<br>"
                + _text(name)
                + " %{x}<br>"
                + _text(metric)
                + " %{y}<extra></extra>",
            }
        ],
        "layout": _layout(f"Slice: {name}", name + (" (log scale)" if log and numeric else ""), metric),
    }
    if log and numeric:
        figure["layout"]["xaxis"]["type"] = "log"
    return figure


def importance_figure(points: Sequence[Point], parameters: Sequence[str]) -> dict[str, Any]:
    """A bar per parameter: its importance (`importance.parameter_importance`), most important on top."""
    shares = sorted(parameter_importance(points, parameters).items(), key=lambda item: item[1])
    layout = _layout("Parameter importance (random forest)", "share of the score explained", "")
    if not shares:
        layout["annotations"] = [
            {
                "text": "needs two trials with different scores",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
            }
        ]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": "importance",
                "x": [share for _, share in shares],
                "y": [_text(name) for name, _ in shares],
            }
        ],
        "layout": layout,
    }


def experiment_figures(
    points: Sequence[Point],
    parameters: Sequence[str],
    metric: str,
    goal: str,
    log_parameters: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """Every plot of the experiment page, by the id of the element that draws it.

    Args:
        points: the scored trials (`data.scored_points`).
        parameters: the parameter names, in the spec's order.
        metric: the score's name.
        goal: `maximize` or `minimize`.
        log_parameters: the parameters searched on a log scale (their slices get a log axis).
    """
    figures = {
        "plot-history": history_figure(points, metric, goal),
        "plot-pareto": pareto_figure(points, metric, goal),
        "plot-parallel": parallel_figure(points, parameters, metric),
        "plot-importance": importance_figure(points, parameters),
    }
    for index, name in enumerate(parameters):
        figures[f"plot-slice-{index}"] = slice_figure(points, name, metric, log=name in log_parameters)
    return figures


__all__ = [
    "experiment_figures",
    "history_figure",
    "importance_figure",
    "parallel_figure",
    "pareto_figure",
    "pareto_front",
    "slice_figure",
]
