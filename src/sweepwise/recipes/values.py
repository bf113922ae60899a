"""Typed values from `key=value` words: coercion to an annotation, and dot-path overrides of pydantic models.

The building blocks of `sweepwise.recipes.classify` and of `AdaptiveTool` overrides:
every error is a one-line `ConfigError` naming the key the user wrote.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from sweepwise.core.errors import ConfigError
from sweepwise.core.yaml_words import load_yaml

M = TypeVar("M", bound=BaseModel)

_NULL_WORDS = frozenset({"null", "Null", "NULL", "~", "None"})


def parse_value(text: str) -> Any:
    """A `key=value` word's value, read as YAML (`3` int, `0.1` float, `true` bool, else string)."""
    try:
        return load_yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def suggest(word: str, choices: Iterable[str], *, what: str = "keys") -> str:
    """`did you mean a or b?` for the closest of `choices`, else the list of valid ones.

    Args:
        word: what the user wrote.
        choices: the valid names.
        what: what the names are, for the list (`valid keys: ...`).
    """
    options = sorted(set(choices))
    near = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    if near:
        return f"did you mean {' or '.join(near)}?"
    if not options:
        return f"there are no valid {what}"
    shown = ", ".join(options[:20]) + (", ..." if len(options) > 20 else "")
    return f"valid {what}: {shown}"


def split_word(word: str) -> tuple[str, str]:
    """Split `key=value` into key and raw value.

    Raises:
        ConfigError: the word has no `=` or an empty key.
    """
    key, sep, raw = word.partition("=")
    if not sep or not key.strip():
        raise ConfigError(word, "expected key=value (e.g. max_trials=20)")
    return key.strip(), raw


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without `Annotated[...]` and `| None`, and whether None was allowed."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) == 1:
            return _unwrap(members[0])[0], optional
        return annotation, optional
    return annotation, annotation is None or annotation is type(None)


def model_class(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model class an annotation names (`M`, `M | None`, `Annotated[M, ...]`), else None."""
    inner, _ = _unwrap(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return inner
    return None


def _accepts_str(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is str:
        return True
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return any(_accepts_str(arg) for arg in typing.get_args(annotation))
    return False


def _is_untyped(annotation: Any) -> bool:
    return annotation is inspect.Parameter.empty or annotation is Any or isinstance(annotation, str)


def _leaf_value(raw: str, annotation: Any) -> Any:
    """A raw word value as the input for a field of type `annotation` (validated later)."""
    if not _is_untyped(annotation) and _accepts_str(annotation):
        if raw.strip() in _NULL_WORDS and _unwrap(annotation)[1]:
            return None
        return raw
    return parse_value(raw)


def _message(error: Mapping[str, Any]) -> str:
    text = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    text = text[:1].lower() + text[1:]
    got = error.get("input")
    if error["type"] == "missing":
        return "is required"
    if (isinstance(got, str | int | float | bool) or got is None) and repr(got) not in text:
        text += f" (got {got!r})"
    return text


def coerce(raw: str, annotation: Any, key: str) -> Any:
    """One word's raw value as a value of type `annotation`.

    `str` (and `str | None`) keep the raw text (`null` gives None when allowed); other
    values are read like YAML (`3`, `0.1`, `true`, `[1, 2]`, `{a: 1}`) and validated
    with a pydantic `TypeAdapter`, so `1e-3` becomes a float and `yes` a bool.

    Raises:
        ConfigError: the value does not fit the type; names `key`.
    """
    if _is_untyped(annotation):
        return parse_value(raw)
    if _accepts_str(annotation):
        return _leaf_value(raw, annotation)
    value = parse_value(raw)
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError, NameError):
        return value  # a type pydantic cannot check: hand over the YAML value as is
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        if not isinstance(value, str):  # e.g. `0123` for a `Path`: try the text itself
            try:
                return adapter.validate_python(raw)
            except ValidationError:
                pass
        raise ConfigError(key, _message(exc.errors()[0])) from None


@dataclass(frozen=True, slots=True)
class _Item:
    key: str  # what the user wrote, named in errors
    path: tuple[str, ...]  # where it goes, relative to the current model
    raw: str


def _fields_of(base: BaseModel | Mapping[str, Any] | None) -> dict[str, Any]:
    if base is None:
        return {}
    if isinstance(base, BaseModel):
        data = {name: getattr(base, name) for name in type(base).model_fields}
        data.update(base.model_extra or {})
        return data
    return dict(base)


def _allows_extra(cls: type[BaseModel]) -> bool:
    return cls.model_config.get("extra") == "allow"


def _dict_value_type(annotation: Any) -> Any:
    inner, _ = _unwrap(annotation)
    if typing.get_origin(inner) in (dict, Mapping) and len(typing.get_args(inner)) == 2:
        return typing.get_args(inner)[1]
    return Any


def _is_mapping_type(annotation: Any) -> bool:
    inner, _ = _unwrap(annotation)
    return _is_untyped(inner) or inner in (dict, Mapping) or typing.get_origin(inner) in (dict, Mapping)


def _set_in_dict(target: dict[str, Any], item: _Item, value_type: Any) -> dict[str, Any]:
    """Set a flat dot-path key (`trainer.lr`) in a dict of overrides or parameter specs.

    The longest leading part of the path that is already a key is descended into
    (`parameters.trainer.lr.max` sets `max` of `parameters["trainer.lr"]`); otherwise
    the whole rest of the path is one key (`train_overrides.trainer.lr`).
    """
    result = dict(target)
    for cut in range(len(item.path) - 1, 0, -1):
        head = ".".join(item.path[:cut])
        if head in result:
            node = result[head]
            if isinstance(node, BaseModel):
                result[head] = _build(
                    type(node), node, [_Item(item.key, item.path[cut:], item.raw)], item.key
                )
            elif isinstance(node, Mapping):
                result[head] = _set_in_dict(dict(node), _Item(item.key, item.path[cut:], item.raw), Any)
            else:
                raise ConfigError(item.key, f"{head} is {node!r}, not a mapping, so its keys cannot be set")
            return result
    result[".".join(item.path)] = coerce(item.raw, value_type, item.key)
    return result


def _build(
    cls: type[M], base: BaseModel | Mapping[str, Any] | None, items: Sequence[_Item], prefix: str
) -> M:
    """`cls` from `base` with `items` applied, validated once all of them are in."""
    data = _fields_of(base)
    fields = cls.model_fields
    groups: dict[str, list[_Item]] = {}
    for item in items:
        groups.setdefault(item.path[0], []).append(item)
    for name, group in groups.items():
        info = fields.get(name)
        if info is None and not _allows_extra(cls):
            choices = [f"{prefix}.{f}" if prefix else f for f in fields]
            bad = group[0].key
            raise ConfigError(bad, f"unknown field of {cls.__name__}; {suggest(bad, choices)}")
        annotation = info.annotation if info is not None else Any
        for item in group:  # whole values first, so that field words apply on top of them
            if len(item.path) == 1:
                data[name] = _leaf_value(item.raw, annotation)
        deeper = [_Item(item.key, item.path[1:], item.raw) for item in group if len(item.path) > 1]
        if not deeper:
            continue
        current = data.get(name)
        if current is None and info is not None and not info.is_required():
            current = info.get_default(call_default_factory=True)
        sub = type(current) if isinstance(current, BaseModel) else model_class(annotation)
        where = f"{prefix}.{name}" if prefix else name
        if sub is not None:  # all words for one nested model, validated together
            data[name] = _build(sub, current, deeper, where)
        elif isinstance(current, Mapping) or (current is None and _is_mapping_type(annotation)):
            mapping = dict(current or {})
            for rest in deeper:
                mapping = _set_in_dict(mapping, rest, _dict_value_type(annotation))
            data[name] = mapping
        else:
            raise ConfigError(deeper[0].key, f"{where} is {current!r}, not a mapping, so it has no fields")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, items, prefix) from None


def _validation_error(exc: ValidationError, items: Sequence[_Item], prefix: str) -> ConfigError:
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    best: _Item | None = None
    best_len = 0
    for item in items:
        common = 0
        for a, b in zip(item.path, loc, strict=False):
            if a != b:
                break
            common += 1
        if common > best_len:
            best, best_len = item, common
    if best is not None:
        key = best.key
    else:
        key = ".".join(part for part in (prefix, *loc) if part)
    message = _message(error)
    if error["type"] == "missing":
        message = f"is required; add {key}=VALUE"
    return ConfigError(key, message)


def validation_config_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    """Pydantic's first error as a one-line `ConfigError` on its field path (under `prefix`)."""
    return _validation_error(exc, (), prefix)


def override_model(
    model: type[M] | M, overrides: Iterable[tuple[str, Sequence[str], str]], *, prefix: str = ""
) -> M:
    """A copy of a pydantic model with dot-path overrides applied and validated.

    Nested models are descended into (`trainer.optimizer.lr`); a dict field takes the
    rest of the path as one key (`train_overrides.trainer.lr` sets `"trainer.lr"`).
    Each value is read for its field's type (raw text for `str` fields, YAML otherwise)
    and the result is validated by pydantic.

    Args:
        model: the model to start from, or a model class to build from its defaults.
        overrides: `(key, path, raw)` triples: the key as the user wrote it (named in
            errors), the field path it sets, and the raw text of the value.
        prefix: where `model` sits in the user's config, for keys in error messages.

    Returns:
        A new, validated model of the same class (`model` is not changed).

    Raises:
        ConfigError: an unknown field (with the closest ones) or a value that does not
            validate; it names the user's key.
    """
    items = [_Item(key, tuple(path), raw) for key, path, raw in overrides]
    if isinstance(model, BaseModel):
        return _build(type(model), model, items, prefix)
    return _build(model, None, items, prefix)


__all__ = [
    "coerce",
    "model_class",
    "override_model",
    "parse_value",
    "split_word",
    "suggest",
    "validation_config_error",
]
