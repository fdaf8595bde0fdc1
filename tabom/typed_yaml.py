"""Typed dataclasses from nested YAML mappings, with errors that name file, line and field.

    cfg = build(TrainConfig, yaml.safe_load(text), source="recipes/x.yaml", lines=line_map(text))
    # ConfigError: recipes/x.yaml:7: optim.lr: expected float, got str 'fast'

:func:`build` walks a dataclass's annotations (nested dataclasses, Optional/Union, Literal,
list, dict, bool, int, float, str), checks and gently converts each value (an int for a float;
a string such as ``2e-5``, which YAML 1.1 reads as text, for a float; ``"a,b"`` for a list of
str), rejects unknown keys with a close-match suggestion, and re-raises ``__post_init__``
errors with the source prefixed: a :class:`FieldError` (what :func:`check_fields` and
:func:`check_number` raise) gets the line of its key. A float must be finite (`.nan`, `.inf` are
refused wherever a float is read).

Every YAML file a user hands tabom is read with :func:`read_text` (a folder or non-UTF-8 bytes
are one error naming file and line) and :func:`load_yaml`, which refuses anchors and aliases
(`&a`, `*a`, `<<: *a`): a recipe has no use for them, and a few hundred bytes of nested aliases
expand to gigabytes. :func:`line_map` gives the line of every mapping key. Only the standard
library and PyYAML are imported.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

Lines = Mapping[str, int | str]
"""Dotted key -> its 1-based line in the source, or a text naming where else it came from (an
override on the command line: ``override optim.lr=inf``)."""


class ConfigError(ValueError):
    """A bad recipe value: the message is `SOURCE[:LINE]: dotted.key: what is wrong`."""


class FieldError(ConfigError):
    """One field's value is wrong (a dataclass's own check): the message is `dotted.key: problem`.

    :func:`build` re-raises it as ``SOURCE:LINE: dotted.key: problem`` with the key's line.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def where(source: str, lines: Lines, key: str) -> str:
    """``source:line`` of ``key`` when ``lines`` has its line, the text ``lines`` holds for it
    (an override), else ``source``. An item's key (``optim.betas[1]``) falls back to its list's."""
    line = lines.get(key)
    if line is None and key.endswith("]"):
        line = lines.get(key[: key.rfind("[")])
    if isinstance(line, str):
        return line
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
                number = float(value)
            except ValueError:
                raise err(key, f"expected float, got {show(value)}") from None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise err(key, f"expected float, got {show(value)}")
        else:
            try:
                number = float(value)
            except OverflowError:  # an int beyond float range
                raise err(key, f"must be a finite number, got {value}") from None
        if not math.isfinite(number):
            raise err(key, f"must be a finite number, got {number}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise err(key, f"expected str, got {show(value)}")
        return value
    raise err(key, f"unsupported annotation {tp!r}")


def show(value: Any) -> str:
    """A value as error messages show it: ``null``, or its type name and repr."""
    return "null" if value is None else f"{type(value).__name__} {value!r}"


def _field_error(key: str, msg: str) -> FieldError:
    return FieldError(key, msg)


def check_fields(obj: Any, prefix: str = "") -> None:
    """Type-check (and gently convert, in place) every field of dataclass instance ``obj``.

    What :func:`build` does for a mapping, done on an instance: a config built in Python is held
    to the same types as one read from YAML. A nested dataclass field must be an instance of its
    class. Raises :class:`FieldError` naming ``prefix + field``.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        tp, key, value = hints[f.name], f"{prefix}{f.name}", getattr(obj, f.name)
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, tp):
                raise FieldError(key, f"expected a {tp.__name__} section, got {show(value)}")
            continue
        setattr(obj, f.name, coerce(value, tp, key, _field_error))


def check_number(key: str, value: Any, *, integer: bool = False, at_least: float | None = None,
                 above: float | None = None, at_most: float | None = None,
                 below: float | None = None) -> None:
    """Raise :class:`FieldError` unless ``value`` is a finite number (an int when ``integer``)
    within the bounds given: ``at_least <= value``, ``above < value``, ``value <= at_most``,
    ``value < below``.

    Example: ``check_number("lora.dropout", 1.5, at_least=0, below=1)`` raises
    ``lora.dropout: must lie in [0, 1), got 1.5``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise FieldError(key, f"expected {'int' if integer else 'float'}, got {show(value)}")
    if not integer and not math.isfinite(value):
        raise FieldError(key, f"must be a finite number, got {value}")
    low_ok = (at_least is None or value >= at_least) and (above is None or value > above)
    high_ok = (at_most is None or value <= at_most) and (below is None or value < below)
    if low_ok and high_ok:
        return
    low = f"[{_num(at_least)}" if at_least is not None else (f"({_num(above)}" if above is not None else None)
    high = f"{_num(at_most)}]" if at_most is not None else (f"{_num(below)})" if below is not None else None)
    if low and high:
        rule = f"must lie in {low}, {high}"
    elif low:
        rule = f"must be {'>=' if at_least is not None else '>'} {low[1:]}"
    else:
        rule = f"must be {'<=' if at_most is not None else '<'} {str(high)[:-1]}"
    raise FieldError(key, f"{rule}, got {value}")


def _num(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def build(cls: type, data: dict[str, Any], *, source: str = "<recipe>", prefix: str = "",
          lines: Lines | None = None) -> Any:
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
    except FieldError as exc:
        raise ConfigError(f"{where(source, lines, exc.key)}: {exc}") from None
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


# --------------------------------------------------------------------------- reading YAML
def read_text(path: str | Path, what: str = "file") -> str:
    """A user's text file as str; a folder, a missing file or non-UTF-8 bytes raise
    :class:`ConfigError` (``FILE:LINE: not UTF-8 text ...``), which is a ``ValueError``."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a {what}")
    if not path.exists():
        raise ConfigError(f"{path}: no such {what}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column})"
        ) from None


@functools.lru_cache(maxsize=1)
def _no_alias_loader() -> type:
    """A yaml.SafeLoader whose composer refuses anchors and aliases (built on first use)."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        """SafeLoader refusing `&anchor` and `*alias` (so nothing can expand)."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            """Refuse an alias or an anchored node, else compose as SafeLoader does."""
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise yaml.MarkedYAMLError(
                    problem="YAML anchors and aliases (&name, *name, <<: *name) are not allowed; "
                            "write the values out", problem_mark=event.start_mark)
            return super().compose_node(parent, index)

    return NoAliasLoader


def _yaml_error(source: str, exc: Exception) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    return ConfigError(f"{source}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})")


def load_yaml(text: str, source: str = "<yaml>") -> Any:
    """Parse one YAML document safely: no Python tags, no anchors or aliases, bounded nesting.

    Raises :class:`ConfigError` ``SOURCE:LINE: not valid YAML (...)`` (a ``ValueError``).
    """
    import yaml

    try:
        return yaml.load(text, Loader=_no_alias_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise _yaml_error(source, exc) from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML (nested too deeply)") from None


def line_map(text: str) -> dict[str, int]:
    """Dotted key -> 1-based line of every mapping key in a YAML document (empty when the
    document does not parse or holds anchors or aliases)."""
    import yaml

    out: dict[str, int] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}{key_node.value}"
                out[key] = key_node.start_mark.line + 1
                walk(value_node, f"{key}.")

    try:
        walk(yaml.compose(text, Loader=_no_alias_loader()), "")  # noqa: S506
    except (yaml.YAMLError, RecursionError):
        return {}
    return out


def parse_override(item: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", YAML-parsed value); ValueError when there is no `=`."""
    import yaml

    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key=value (e.g. optim.lr=1e-4)")
    key, _, text = item.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r}: empty key")
    try:
        value = load_yaml(text, f"override {item}") if text.strip() else ""
    except ConfigError as exc:
        if "anchors and aliases" in str(exc):
            raise
        value = text
    return key, value
