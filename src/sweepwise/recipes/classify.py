"""Automatic argument classification: which `key=value` words a function takes, and which it does not.

One set of rules for the `sweepwise run` CLI (a recipe function) and for the in-job
runner (`python -m sweepwise.runtime.call`, an entrypoint function):

- a word whose key is a parameter of the function is an argument, coerced to the
  parameter's annotated type (`str` parameters keep the raw text; other values are
  read like YAML, then validated with pydantic);
- a dotted word whose first part is a parameter annotated with a pydantic model
  (`trainer.lr=0.01` for `trainer: TrainerConfig`) overrides that field of the model,
  starting from the parameter's default (or the model built from its defaults);
- every other word is an override, handed back to the caller as a dot path.

Errors are `ConfigError`s naming the word's key, with the closest valid keys.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sweepwise.core.errors import ConfigError
from sweepwise.recipes.values import coerce, model_class, override_model, split_word, suggest

_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True, slots=True)
class Classification:
    """The words of a command line, sorted out against one function.

    Attributes:
        args: the function's keyword arguments, typed.
        overrides: the other words as `{dot.path: raw text}`, in the order given.
    """

    args: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)


def _parameters(fn: Callable[..., Any]) -> dict[str, tuple[inspect.Parameter, Any]]:
    """The keyword-passable parameters of `fn` with their resolved annotations."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an annotation that does not resolve: fall back to what is written
        hints = {}
    return {
        name: (param, hints.get(name, param.annotation))
        for name, param in signature.parameters.items()
        if param.kind in _KEYWORD_KINDS
    }


def _function_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def classify(
    fn: Callable[..., Any], words: Iterable[str], *, known_overrides: Collection[str] | None = None
) -> Classification:
    """Sort `key=value` words into `fn`'s arguments and dot-path overrides.

    Args:
        fn: the function whose parameters take words.
        words: `key=value` words, as typed on a command line.
        known_overrides: None to hand back every word that names no parameter as an
            override; otherwise the first parts an override may start with (empty: no
            overrides allowed, so such a word is an error).

    Returns:
        The typed arguments and the remaining overrides (raw text, for the caller to
        apply to its own config).

    Raises:
        ConfigError: a malformed word, a value of the wrong type, an unknown field of a
            model parameter, or (with `known_overrides`) an unknown key; the message
            names the key and the closest valid keys.

    Example:
        >>> def train(run: str, epochs: int = 1) -> None: ...
        >>> result = classify(train, ["run=007", "epochs=3", "trainer.lr=0.1"])
        >>> result.args, result.overrides
        ({'run': '007', 'epochs': 3}, {'trainer.lr': '0.1'})
    """
    params = _parameters(fn)
    args: dict[str, Any] = {}
    nested: dict[str, tuple[type[BaseModel], list[tuple[str, tuple[str, ...], str]]]] = {}
    overrides: dict[str, str] = {}
    for word in words:
        key, raw = split_word(word)
        head, _, rest = key.partition(".")
        if key in params:
            args[key] = coerce(raw, params[key][1], key)
            nested.pop(key, None)  # a whole value replaces field overrides given before it
        elif rest and head in params and (cls := model_class(params[head][1])) is not None:
            nested.setdefault(head, (cls, []))[1].append((key, tuple(rest.split(".")), raw))
        elif known_overrides is None or head in known_overrides:
            overrides[key] = raw
        else:
            choices = [*params, *known_overrides]
            for name, (_, annotation) in params.items():
                cls = model_class(annotation)
                if cls is not None:
                    choices += [f"{name}.{f}" for f in cls.model_fields]
            raise ConfigError(key, f"not a parameter of {_function_name(fn)}; {suggest(key, choices)}")
    for name, (cls, items) in nested.items():
        base = args.get(name, params[name][0].default)
        args[name] = override_model(base if isinstance(base, cls) else cls, items, prefix=name)
    return Classification(args, overrides)


def takes(fn: Callable[..., Any], key: str) -> bool:
    """True if `classify` binds a word with this key to `fn`: a parameter, or a field of a model parameter."""
    params = _parameters(fn)
    head, _, rest = key.partition(".")
    return key in params or (bool(rest) and head in params and model_class(params[head][1]) is not None)


def require_arguments(fn: Callable[..., Any], args: Mapping[str, Any]) -> None:
    """Check that `args` gives every parameter of `fn` without a default.

    Raises:
        ConfigError: naming the first missing parameter and how to pass it.
    """
    for name, (param, _) in _parameters(fn).items():
        if param.default is inspect.Parameter.empty and name not in args:
            raise ConfigError(name, f"is required by {_function_name(fn)}; pass {name}=VALUE")


__all__ = ["Classification", "classify", "require_arguments", "takes"]
