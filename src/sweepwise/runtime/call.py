"""Run a Python entrypoint as a job: `python -m sweepwise.runtime.call module.function key=value ...`.

The launcher starts this for a job whose command is a `module.function` path (seed
002's `recipe_module` + `train_entrypoint` / `eval_entrypoint`). The words are
classified against the function by the same rules as `sweepwise run` (see
`sweepwise.recipes.classify`): parameters become typed arguments, `trainer.lr=0.1`
sets a field of a pydantic-model parameter. Any other word is an error, unless the
function takes `**kwargs` or an `overrides` parameter, which then receives those
words as `{dot.path: value}`.

Words whose keys `SWEEPWISE_OPTIONAL_KEYS` lists (a JSON list; an eval job gets the run's
suggested hyperparameters this way) are passed only when the function takes them: an
`evaluate(policy_uri)` runs in a sweep over `trainer.lr`, an `evaluate(policy_uri,
trainer: TrainerConfig)` gets the suggested `trainer.lr`. Every job still finds all of
them in `SWEEPWISE_PARAMS` and `params.json`.

A returned dict (or pydantic model) of metrics becomes the job's result, written with
`sweepwise.report_result`. Exit codes: 0 done, 1 the function raised (traceback
printed), 2 bad words or an entrypoint that does not import.

Unlike the rest of `sweepwise.runtime`, this imports pydantic: it runs only for
entrypoint jobs, which import the user's (usually heavier) code anyway.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback
from collections.abc import Callable, Collection
from typing import Any

USAGE = "usage: python -m sweepwise.runtime.call package.module.function [key=value ...]"
OPTIONAL_KEYS_ENV = "SWEEPWISE_OPTIONAL_KEYS"
"""Names the keys of words passed to the function only if it takes them (a JSON list)."""


def _override_sink(fn: Callable[..., Any]) -> str | None:
    """How `fn` takes words that name none of its parameters: `kwargs`, `overrides`, or not at all."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return "kwargs"
    if "overrides" in params and params["overrides"].kind is not inspect.Parameter.POSITIONAL_ONLY:
        return "overrides"
    return None


def prepare_call(
    target: str, words: list[str], optional: Collection[str] = ()
) -> tuple[Callable[..., Any], dict[str, Any]]:
    """Import the entrypoint and turn the words into its keyword arguments.

    Args:
        target: `package.module.function`.
        words: `key=value` words.
        optional: keys whose words are dropped when the function does not take them.

    Returns:
        The function and its keyword arguments.

    Raises:
        ConfigError: the function does not import, a word is unknown or of the wrong
            type, or a required parameter is missing.
    """
    from sweepwise.recipes.classify import classify, require_arguments, takes
    from sweepwise.recipes.loading import ensure_on_path, load_function
    from sweepwise.recipes.values import parse_value

    ensure_on_path()  # the job's working directory, like `python -m` would
    fn = load_function(target)
    sink = _override_sink(fn)
    if sink is None and optional:
        words = [word for word in words if (key := word.partition("=")[0]) not in optional or takes(fn, key)]
    classified = classify(fn, words, known_overrides=None if sink else ())
    kwargs = dict(classified.args)
    extra = {key: parse_value(raw) for key, raw in classified.overrides.items()}
    if sink == "kwargs":
        kwargs.update(extra)
    elif sink == "overrides" and (extra or "overrides" not in kwargs):
        given = kwargs.get("overrides")
        kwargs["overrides"] = {**(given if isinstance(given, dict) else {}), **extra}
    require_arguments(fn, kwargs)
    return fn, kwargs


def _optional_keys() -> list[str]:
    """The keys `SWEEPWISE_OPTIONAL_KEYS` lists (none when it is unset or not a JSON list of names)."""
    try:
        keys = json.loads(os.environ.get(OPTIONAL_KEYS_ENV) or "[]")
    except ValueError:
        return []
    return [key for key in keys if isinstance(key, str)] if isinstance(keys, list) else []


def _metrics(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json")
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return value
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one entrypoint; see the module docstring.

    Args:
        argv: `[target, word, ...]` (default: `sys.argv[1:]`).

    Returns:
        The exit code: 0, 1 (the function raised) or 2 (bad words or target).
    """
    from sweepwise.core.errors import ConfigError

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 0 if args else 2
    target, words = args[0], args[1:]
    try:
        fn, kwargs = prepare_call(target, words, _optional_keys())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        value = fn(**kwargs)
    except Exception:
        traceback.print_exc()
        return 1
    metrics = _metrics(value)
    if metrics is not None:
        from sweepwise.runtime.report import report_result

        report_result(**metrics)
    elif value is not None:
        print(
            f"sweepwise: {target} returned a {type(value).__name__}, not a dict of metrics; "
            "no result written from it",
            file=sys.stderr,
        )
    return 0


__all__ = ["OPTIONAL_KEYS_ENV", "USAGE", "main", "prepare_call"]


if __name__ == "__main__":
    sys.exit(main())
