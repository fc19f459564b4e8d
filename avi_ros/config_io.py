"""Config dataclasses <-> plain dicts (JSON, YAML), with errors that name the key and the expectation.

One serialiser for every config of the package: the model, feature and scene configs, the
taxonomy, the checkpoint metadata and the training configs. The dataclasses' type hints are
the schema. ``build`` walks the tree, checks every value against its annotation and reports the
first problem as ``ConfigError("model.visual.arch: expected one of ['resnet18', ...], got
'resnet19'")``; ``to_plain`` is its inverse. Missing keys keep their defaults, so metadata
written before a field was added still loads.

Supported annotations: bool, int, float (ints are accepted), str, Literal[...], enums (by
value), X | None, list[X], tuple[X, ...], dict[str, X], typing.Any and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value that does not fit its schema; the message starts with the dotted key."""


def _describe(annotation: Any) -> str:
    """Human wording of an annotation for error messages."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return "any value"
    if origin is Literal:
        return f"one of {list(typing.get_args(annotation))}"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        if origin is tuple and Ellipsis not in args:
            return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
        return f"a list of {_describe(args[0])}"
    if origin is dict:
        return f"a mapping of str to {_describe(typing.get_args(annotation)[1])}"
    if annotation is type(None):
        return "null"
    if dataclasses.is_dataclass(annotation):
        return f"a mapping with keys {[f.name for f in dataclasses.fields(annotation)]}"
    return getattr(annotation, "__name__", str(annotation))


def _fail(key: str, annotation: Any, value: Any) -> typing.NoReturn:
    raise ConfigError(f"{key}: expected {_describe(annotation)}, got {type(value).__name__} {value!r}")


def convert(annotation: Any, value: Any, key: str) -> Any:
    """``value`` checked against ``annotation`` (and built into dataclasses); ``key`` names it in errors."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(annotation):
            _fail(key, annotation, value)
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None:
            if type(None) in options:
                return None
            _fail(key, annotation, value)
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(option, value, key)
            except ConfigError:
                continue
        _fail(key, annotation, value)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            _fail(key, annotation, value)
        args = typing.get_args(annotation)
        if origin is tuple and Ellipsis not in args:  # fixed length, one type per position
            if len(value) != len(args):
                raise ConfigError(
                    f"{key}: expected a list of {len(args)} values, got {len(value)}: {value!r}"
                )
            return tuple(
                convert(t, item, f"{key}[{i}]") for i, (t, item) in enumerate(zip(args, value, strict=True))
            )
        items = [convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            _fail(key, annotation, value)
        value_type = typing.get_args(annotation)[1]
        return {str(k): convert(value_type, v, _join(key, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        return value if isinstance(value, annotation) else build(annotation, value, key)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(value)
        except ValueError:
            raise ConfigError(
                f"{key}: expected one of {[m.value for m in annotation]}, got {value!r}"
            ) from None
    if annotation is bool:
        if not isinstance(value, bool):
            _fail(key, annotation, value)
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(key, annotation, value)
        return value
    if annotation is float:
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                _fail(key, annotation, value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(key, annotation, value)
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            _fail(key, annotation, value)
        return value
    raise TypeError(f"{key}: unsupported annotation {annotation!r} in the config schema")


def build(cls: type[T], data: Any, key: str = "") -> T:
    """Instance of dataclass ``cls`` from a mapping; missing keys keep their defaults.

    Errors from the dataclass's own ``__post_init__`` checks are re-raised as ConfigError
    prefixed with ``key``.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        _fail(key, cls, data)
    hints = typing.get_type_hints(cls)
    init_fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(init_fields))
    if unknown:
        raise ConfigError(
            f"{_join(key, unknown[0])}: unknown key; expected one of {sorted(init_fields)} "
            f"(unknown keys: {unknown})"
        )
    kwargs = {name: convert(hints[name], value, _join(key, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key or cls.__name__}: {exc}") from exc


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def to_plain(obj: Any) -> Any:
    """Dataclass tree -> plain dicts/lists (YAML- and JSON-ready); inverse of ``build``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj
