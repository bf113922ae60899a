"""`sweepwise run TARGET --help-recipe`: a recipe's parameters and the fields its tool can override."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from sweepwise.recipes.tool import AdaptiveTool

_QUALIFIED = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")
_WIDTH = 48


def type_name(annotation: Any) -> str:
    """A short, readable name for a type annotation (`int`, `str | None`, `dict[str, Any]`)."""
    if annotation is inspect.Parameter.empty or annotation is None:
        return "-"
    if isinstance(annotation, str):
        return annotation
    if annotation is type(None):
        return "None"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in typing.get_args(annotation))
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return _QUALIFIED.sub(r"\1", repr(annotation))


def _value(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return "(required)"
    if isinstance(value, BaseModel):
        text = f"{type(value).__name__}({value.model_dump_json()})"
    else:
        text = repr(value)
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def _table(rows: Iterable[tuple[str, str, str]]) -> list[str]:
    rows = list(rows)
    if not rows:
        return ["  (none)"]
    name_width = max(len(row[0]) for row in rows)
    type_width = max(len(row[1]) for row in rows)
    return [f"  {n:<{name_width}}  {t:<{type_width}}  {v}".rstrip() for n, t, v in rows]


def _first_paragraph(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.split("\n\n", 1)[0].strip()


def describe_recipe(
    fn: Callable[..., Any], target: str, tool: AdaptiveTool | None = None, note: str | None = None
) -> str:
    """The `--help-recipe` text of a recipe function.

    Args:
        fn: the recipe function.
        target: its dotted path, as typed on the command line.
        tool: what the function returned, whose fields (and its scheduler config's)
            are listed with their current values; None lists the parameters only.
        note: said instead of the tool's fields when there is no tool (e.g. why).

    Returns:
        Plain text: usage, the docstring's first paragraph, and three tables (name,
        type, default or current value).
    """
    lines = [f"usage: sweepwise run {target} [key=value ...]"]
    summary = _first_paragraph(fn)
    if summary:
        lines += ["", summary]
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    params = [
        (name, type_name(hints.get(name, p.annotation)), _value(p.default))
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    lines += ["", "recipe parameters (key=value, passed to the function):", *_table(params)]
    if tool is None:
        if note:
            lines += ["", note]
        return "\n".join(lines) + "\n"
    tool_rows = [
        (name, type_name(info.annotation), _value(getattr(tool, name)))
        for name, info in AdaptiveTool.model_fields.items()
        if name != "scheduler"
    ]
    lines += ["", "tool fields (key=value, override the returned AdaptiveTool):", *_table(tool_rows)]
    config = tool.scheduler
    config_rows = [
        (name, type_name(info.annotation), _value(getattr(config, name)))
        for name, info in type(config).model_fields.items()
    ]
    lines += [
        "",
        f"scheduler fields ({type(config).__name__}; key=value or scheduler.key=value):",
        *_table(config_rows),
        "",
        "dict fields take one key per word: train_overrides.trainer.lr=0.01 sets 'trainer.lr'.",
    ]
    return "\n".join(lines) + "\n"


__all__ = ["describe_recipe", "type_name"]
