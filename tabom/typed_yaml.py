"""Typed dataclasses from nested YAML mappings, with errors that name file, line and field.

    cfg = build(TrainConfig, yaml.safe_load(text), source="recipes/x.yaml", lines=line_map(text))
    # ConfigError: recipes/x.yaml:7: optim.lr: expected float, got str 'fast'

:func:`build` walks a dataclass's annotations (nested dataclasses, Optional/Union, Literal,
list, dict, bool, int, float, str), checks and gently converts each value (an int for a float;
a string such as ``2e-5``, which YAML 1.1 reads as text, for a float; ``"a,b"`` for a list of
str), rejects unknown keys with a close-match suggestion, and re-raises ``__post_init__``
errors with the source prefixed. :func:`line_map` gives the line of every mapping key. Only the
standard library and PyYAML are imported.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal

class ConfigError(ValueError):
    """A bad recipe value: the message is `SOURCE[:LINE]: dotted.key: what is wrong`."""


def where(source: str, lines: dict[str, int], key: str) -> str:
    """``source:line`` of ``key`` when ``lines`` has its line, else ``source``."""
    line = lines.get(key)
    return f"{source}:{line}" if line else source


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str, err: Any) -> Any:
    """Check (and gently convert) one value against a type annotation; ``err(key, msg)`` raises."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, key, err)
            except ConfigError:
                continue
        raise err(key, f"expected {' or '.join(_type_name(o) for o in options)}, got {show(value)}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise err(key, f"expected one of {', '.join(map(str, allowed))}, got {show(value)}")
        return value
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str) and item_tp is str:
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise err(key, f"expected a list, got {show(value)}")
        return [coerce(v, item_tp, f"{key}[{i}]", err) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise err(key, f"expected a mapping, got {show(value)}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise err(key, f"expected true or false, got {show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise err(key, f"expected int, got {show(value)}")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise err(key, f"expected float, got {show(value)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise err(key, f"expected float, got {show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise err(key, f"expected str, got {show(value)}")
        return value
    raise err(key, f"unsupported annotation {tp!r}")


def show(value: Any) -> str:
    """A value as error messages show it: ``null``, or its type name and repr."""
    return "null" if value is None else f"{type(value).__name__} {value!r}"


def build(cls: type, data: dict[str, Any], *, source: str = "<recipe>", prefix: str = "",
          lines: dict[str, int] | None = None) -> Any:
    """Build dataclass ``cls`` from a nested mapping, type-checking every field.

    Raises :class:`ConfigError` naming ``source``, the key's line (when ``lines`` has it) and
    the dotted key; `__post_init__` validation errors are re-raised with the source prefixed.
    """
    lines = lines or {}

    def err(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{where(source, lines, key)}: {key}: {msg}")

    if not isinstance(data, dict):
        raise err(prefix.rstrip(".") or "recipe", f"expected a mapping, got {show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" (did you mean {prefix}{close[0]}?)" if close else f" (known: {', '.join(fields)})"
        raise err(f"{prefix}{key}", f"unknown key{hint}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        tp = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build(tp, value, source=source, prefix=f"{key}.", lines=lines)
        else:
            kwargs[name] = coerce(value, tp, key, err)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def line_map(text: str) -> dict[str, int]:
    """Dotted key -> 1-based line of every mapping key in a YAML document."""
    import yaml

    out: dict[str, int] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}{key_node.value}"
                out[key] = key_node.start_mark.line + 1
                walk(value_node, f"{key}.")

    try:
        walk(yaml.compose(text), "")
    except yaml.YAMLError:
        pass
    return out
