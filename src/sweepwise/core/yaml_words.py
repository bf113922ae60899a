"""YAML as sweepwise reads specs and `key=value` words: PyYAML's safe loader, with the
words YAML 1.1 reads as booleans (`on`, `off`, `yes`, `no`, `y`, `n`) kept as words where
they are a mapping's key.

`retries: {on: [lost]}` would otherwise name its key `True`. As a value such a word stays a
boolean, and `true` and `false` are booleans everywhere. An integer of more digits than
Python reads is a YAML error at its line, not a ValueError from deep inside PyYAML.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

_BOOL = "tag:yaml.org,2002:bool"
_STR = "tag:yaml.org,2002:str"


class WordKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader; a plain `on`/`yes`/... mapping key is the word, not a boolean.

    The keys are retagged as each mapping is composed, before any constructor (a subclass's
    too) reads them.
    """

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        node: yaml.MappingNode = super().compose_mapping_node(anchor)
        _keep_word_keys(node)
        return node


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    try:
        value: int = loader.construct_yaml_int(node)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        limit = sys.get_int_max_str_digits()
        problem = f"an integer of more than {limit} digits, more than any setting takes"
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None
    return value


WordKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _keep_word_keys(node: yaml.MappingNode) -> None:
    """Retag `node`'s plain keys that YAML 1.1 resolves to a boolean, other than true/false, as strings."""
    for key_node, _ in node.value:
        if (
            isinstance(key_node, yaml.ScalarNode)
            and key_node.tag == _BOOL
            and key_node.style is None
            and key_node.value.lower() not in ("true", "false")
        ):
            key_node.tag = _STR


def load_yaml(text: str) -> Any:
    """`text` as YAML, read by `WordKeyLoader`."""
    return yaml.load(text, Loader=WordKeyLoader)  # noqa: S506 - a SafeLoader subclass


__all__ = ["WordKeyLoader", "load_yaml"]
