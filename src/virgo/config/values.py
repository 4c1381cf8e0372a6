"""Turning YAML values and command-line text into a field's type, and checking declared bounds and choices.

YAML here is YAML 1.2 for booleans: only true/false are booleans, so ``save_strategy: no`` stays the string "no".
Command-line text for a string field is taken as written (``--prompt 007`` is "007"); for other types it is parsed
as YAML, so ``--stop '[a, b]'``, ``max_steps=0`` and ``system=null`` mean what they say.
"""

from __future__ import annotations

import enum
import functools
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

from virgo.config.tree import ConfigError, Leaf

NULLS = ("null", "~", "None", "none")


@functools.cache
def _loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    bool_tag = "tag:yaml.org,2002:bool"
    Loader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != bool_tag]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver(bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return Loader


def yaml_load(text: str) -> Any:
    """Safe YAML (a SafeLoader subclass) with YAML 1.2 booleans."""
    import yaml

    return yaml.load(text, Loader=_loader())  # a SafeLoader subclass


def _args(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def optional(tp: Any) -> bool:
    return type(None) in _args(tp)


def base_type(tp: Any) -> Any:
    """The annotation without ``| None``; a union of an Enum and str counts as str (TrainingArguments)."""
    args = [a for a in _args(tp) if a is not type(None)]
    if len(args) == 1:
        return args[0]
    if str in args and all(a is str or (isinstance(a, type) and issubclass(a, enum.Enum)) for a in args):
        return str
    return typing.Union[tuple(args)]  # noqa: UP007 - rebuilt from parts


def is_list(tp: Any) -> bool:
    return typing.get_origin(base_type(tp)) is list


def item_type(tp: Any) -> Any:
    (item,) = typing.get_args(base_type(tp)) or (Any,)
    return item


def literal_choices(tp: Any) -> list[Any] | None:
    b = base_type(tp)
    if typing.get_origin(b) is typing.Literal:
        return list(typing.get_args(b))
    if isinstance(b, type) and issubclass(b, enum.Enum):
        return [m.value for m in b]
    return None


def is_text(tp: Any) -> bool:
    """A field whose command-line text is its value (no YAML parsing)."""
    b = base_type(tp)
    return b is str or b is Path or (literal_choices(tp) is not None and all(
        isinstance(c, str) for c in literal_choices(tp)))


def from_text(text: str, tp: Any, where: str) -> Any:
    """A command-line value for a field of type ``tp``."""
    if optional(tp) and text.strip() in NULLS:
        return None
    if is_text(tp):
        return coerce(text, tp, where)
    if is_list(tp) and is_text(item_type(tp)) and not text.lstrip().startswith("["):
        return coerce([text], tp, where)
    import yaml

    try:
        value = yaml_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text  # not YAML (an unbalanced bracket in a regex): keep the text
    return coerce(value, tp, where)


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` (from YAML or the command line) against ``tp``; YAML's string '7e-6' becomes a float."""
    if value is None:
        if optional(tp) or tp is Any:
            return None
        raise ConfigError(f"{where}: may not be null")
    b = base_type(tp)
    if b is Any:
        return value
    choices = literal_choices(tp)
    if choices is not None:
        if value not in choices and str(value) not in [str(c) for c in choices]:
            raise ConfigError(f"{where}: must be one of {', '.join(map(str, choices))}, got {value!r}")
        return next(c for c in choices if c == value or str(c) == str(value))
    if typing.get_origin(b) is list:
        items = value if isinstance(value, (list, tuple)) else [value]  # one path is a list of one
        return [coerce(v, item_type(tp), f"{where}[{i}]") for i, v in enumerate(items)]
    if b is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, got {value!r}")
        return value
    if b is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be an integer, got {value!r}")
        return value
    if b is float:
        return _float(value, where)
    if b in (str, Path):
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: must be a string, got {value!r}")
        return b(value) if b is Path else str(value)
    return _union(value, b, where)


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: must be a number, got {value!r}") from None
    if not math.isfinite(out):  # NaN passes every comparison-based check silently: refuse it here, once
        raise ConfigError(f"{where}: must be a finite number, got {value!r}")
    return out


def _union(value: Any, tp: Any, where: str) -> Any:
    """Unions such as ``dict | str`` or ``int | str`` (TrainingArguments): the first member that fits."""
    args = [a for a in _args(tp) if a is not type(None)]
    if any(typing.get_origin(a) is dict or a is dict for a in args) and isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{"):
            value = yaml_load(stripped)
    for arg in args:
        origin = typing.get_origin(arg) or arg
        if origin is dict and isinstance(value, dict):
            return value
        if origin in (int, float, str, bool) and type(value) is origin:
            return value
        if origin is list and isinstance(value, list):
            return value
    for arg in args:  # looser: a number for a float member, any scalar for a str member
        if arg is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return _float(value, where)
        if arg is str and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return str(value)
    if all(not isinstance(a, type) or a.__module__ not in ("builtins", "typing") for a in args):
        return value  # library types (ParallelismConfig ...): the library's own __post_init__ checks them
    raise ConfigError(f"{where}: expected {tp}, got {value!r}")


def check_leaf(leaf: Leaf, value: Any, where: str) -> None:
    """The bounds and choices declared with ``opt`` (types were checked on the way in)."""
    meta = leaf.meta
    if value is None:
        return
    choices = meta.get("choices")
    values = value if isinstance(value, list) else [value]
    if choices is not None:
        bad = [v for v in values if v not in choices]
        if bad:
            raise ConfigError(f"{where}: must be one of {', '.join(map(str, choices))}, got {bad[0]!r}")
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{where}: must be a finite number, got {v!r}")
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        for key, ok, word in (("ge", v.__ge__, ">="), ("gt", v.__gt__, ">"), ("le", v.__le__, "<="),
                              ("lt", v.__lt__, "<")):
            bound = meta.get(key)
            if bound is not None and ok(bound) is not True:
                raise ConfigError(f"{where}: must be {word} {bound}, got {v!r}")


def absolute(value: Any, base: Path) -> Any:
    """Relative paths made absolute against ``base`` (a recipe's folder), so a config means the same anywhere."""
    if value is None:
        return None
    if isinstance(value, list):
        return [absolute(v, base) for v in value]
    text = str(value)
    if "://" in text or not text:
        return value
    p = Path(os.path.expanduser(text))
    return type(value)(p if p.is_absolute() else (base / p).resolve()) if isinstance(value, Path) else str(
        p if p.is_absolute() else (base / p).resolve())
