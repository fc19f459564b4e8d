"""Training configs from YAML: the core serialiser (``avi_ros.config_io``) plus ``key=value`` overrides.

A training run is configured by a tree of dataclasses built by ``avi_ros.config_io.build``,
whose errors name the dotted key, so a typo in a 40-line YAML file costs seconds instead of a
crashed run an hour later. ``apply_overrides`` edits the plain tree before it is built.
"""

from __future__ import annotations

from typing import Any

import yaml

from avi_ros.config_io import ConfigError, build, convert, to_plain

__all__ = ["ConfigError", "apply_overrides", "build", "convert", "to_plain"]


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict (value parsed as YAML, so 3, 1e-3, true, [1, 2] work).

    Intermediate mappings are created as needed; whether the key exists is checked later by
    ``build``, which names the unknown key. List items are addressed by index (``stages.1.epochs=3``).
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}': expected key=value, e.g. optim.batch_size=16")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override '{item}': empty key segment")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{dotted}: cannot parse value {raw!r}: {exc}") from exc
        node: Any = data
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: depth + 1]))
        _assign(node, parts[-1], value, dotted)
    return data


def _child(node: Any, part: str, key: str) -> Any:
    if isinstance(node, list):
        index = _index(node, part, key)
        return node[index]
    if not isinstance(node, dict):
        raise ConfigError(f"{key}: cannot descend into a {type(node).__name__}")
    if node.get(part) is None:
        node[part] = {}
    return node[part]


def _assign(node: Any, part: str, value: Any, key: str) -> None:
    if isinstance(node, list):
        node[_index(node, part, key)] = value
    elif isinstance(node, dict):
        node[part] = value
    else:
        raise ConfigError(f"{key}: cannot set a field inside a {type(node).__name__}")


def _index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"{key}: expected a list index below {len(node)}, got '{part}'")
    return int(part)
