"""Loading a stage config: defaults < YAML file < command line (flags and ``key=value`` overrides, in order).

    cfg = load(EvalConfig, config="eval.yaml", cli={"generate.temperature": 0.7}, overrides=["n=4"])

Every source goes through the same key index (``virgo.config.tree``) and the same type coercion
(``virgo.config.values``); then the declared bounds and choices are checked, and the class's own ``validate()``
(cross-field rules) runs. ``to_dict`` / ``dump_yaml`` give the effective config back as YAML that loads again.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from virgo.config.fields import is_section
from virgo.config.tree import ConfigError, key_index, leaves, lookup, section_type, sections
from virgo.config.values import absolute, check_leaf, coerce, from_text, yaml_load

T = TypeVar("T")


class ConfigDeprecationWarning(FutureWarning):
    """An old option name that still works for one release."""


def _warn_deprecated(old: str, new: str, source: str) -> None:
    warnings.warn(f"{source}: {old!r} is deprecated and will be removed in the next release; use {new!r}",
                  ConfigDeprecationWarning, stacklevel=4)


def parse_override(text: str) -> tuple[str, str]:
    """``key=value`` -> (key, raw value text)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"command line: override {text!r}: expected key=value")
    return key.strip(), raw


def is_override(token: str) -> bool:
    """A positional token is an override when it reads ``name=...`` (a dotted identifier before the '=')."""
    key, sep, _ = token.partition("=")
    return bool(sep) and all(part.replace("-", "_").isidentifier() for part in key.split("."))


def read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    try:
        data = yaml_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of key: value, got {type(data).__name__}")
    return data


def _section_paths(cls: type) -> set[str]:
    return {".".join(path) for path, _ in sections(cls)}


def flatten_yaml(cls: type, data: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    """YAML mapping -> {dotted field path: value}. Sections may be nested mappings or dotted / flat keys."""
    out: dict[str, Any] = {}
    section_paths = _section_paths(cls)
    for raw_key, value in data.items():
        if not isinstance(raw_key, str):
            raise ConfigError(f"{source}: key {raw_key!r} is not a string")
        key = f"{prefix}{raw_key}"
        if key.replace("-", "_") in section_paths:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: {key} is a section: expected a mapping, got {value!r}")
            out.update(flatten_yaml(cls, value, source, prefix=f"{key.replace('-', '_')}."))
            continue
        found = lookup(cls, key, source)
        if found.deprecated:
            _warn_deprecated(key, found.leaf.dotted, source)
        out[found.leaf.dotted] = coerce(value, found.leaf.type, f"{source}: {key}")
    return out


def _yaml_values(cls: type, config: str | Path) -> dict[str, Any]:
    path = Path(config)
    values = flatten_yaml(cls, read_yaml(path), str(path))
    index = {leaf.dotted: leaf for leaf in leaves(cls)}
    for dotted, value in values.items():
        if index[dotted].meta.get("path"):  # relative to the recipe file, like image paths in a JSONL file
            values[dotted] = absolute(value, path.resolve().parent)
    return values


def _override_values(cls: type, overrides: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for text in overrides:
        key, raw = parse_override(text)
        found = lookup(cls, key, "command line")
        if found.deprecated:
            _warn_deprecated(key, found.leaf.dotted, "command line")
        leaf = found.leaf
        value = from_text(raw, leaf.type, f"command line: {key}")
        if leaf.meta.get("path"):
            value = absolute(value, Path.cwd())
        values[leaf.dotted] = value
    return values


def build(cls: type[T], values: Mapping[str, Any], *, base: Any = None, prefix: str = "") -> T:
    """An instance of ``cls`` from {dotted path: value}, sections built from their own defaults (the factory
    given to ``section``) updated with their values; ``base`` replaces the defaults when given."""
    kwargs: dict[str, Any] = {}
    from virgo.config.tree import _hints

    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        dotted = f"{prefix}{f.name}"
        if is_section(f):
            sub_base = getattr(base, f.name) if base is not None else f.default_factory()
            sub_values = {k: v for k, v in values.items() if k.startswith(dotted + ".")}
            if sub_values or base is None:
                kwargs[f.name] = build(section_type(f, hints), sub_values, base=sub_base, prefix=dotted + ".")
            else:
                kwargs[f.name] = sub_base
        elif dotted in values:
            kwargs[f.name] = values[dotted]
    if base is not None:
        return dataclasses.replace(base, **kwargs)
    return cls(**kwargs)


def check_fields(cfg: Any, *, where: str | None = None) -> None:
    """Declared bounds and choices of every leaf (a ConfigError, which is a ValueError, names the field)."""
    for leaf in leaves(type(cfg)):
        value = cfg
        for part in leaf.path:
            value = getattr(value, part)
        check_leaf(leaf, value, f"{where}: {leaf.dotted}" if where else leaf.dotted)


def check(cfg: Any, *, where: str = "config") -> Any:
    """Declared bounds and choices of every leaf, then each config's own ``validate()`` (innermost first)."""
    cls = type(cfg)
    check_fields(cfg, where=where)
    for path, _ in sorted(sections(cls), key=lambda p: -len(p[0])):
        node = cfg
        for part in path:
            node = getattr(node, part)
        _validate(node, where)
    _validate(cfg, where)
    return cfg


def _validate(node: Any, where: str) -> None:
    validate: Callable[[], Any] | None = getattr(node, "validate", None)
    if validate is None:
        return
    try:
        validate()
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None


def load(cls: type[T], *, config: str | Path | None = None, cli: Mapping[str, Any] | None = None,
         overrides: Iterable[str] = (), base: T | None = None) -> T:
    """defaults (or ``base``) < YAML ``config`` < ``cli`` (dotted path -> typed value) < ``key=value`` overrides."""
    values: dict[str, Any] = {}
    if config is not None:
        values.update(_yaml_values(cls, config))
    values.update(dict(cli or {}))
    values.update(_override_values(cls, overrides))
    where = str(config) if config is not None else "config"
    try:
        cfg = build(cls, values, base=base)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:  # a library __post_init__ (TrainingArguments) refusing a combination
        raise ConfigError(f"{where}: {e}") from None
    return check(cfg, where=where)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    return value


def to_dict(cfg: Any, *, secrets: bool = False, only: Callable[[Any, str], bool] | None = None) -> dict[str, Any]:
    """The config as nested plain data (sections as mappings). Secret fields are left out unless ``secrets``;
    ``only(leaf, dotted)`` can drop leaves (e.g. inherited library fields left at their defaults)."""
    out: dict[str, Any] = {}
    for leaf in leaves(type(cfg)):
        if leaf.meta.get("secret") and not secrets:
            continue
        if only is not None and not only(leaf, leaf.dotted):
            continue
        value = cfg
        for part in leaf.path:
            value = getattr(value, part)
        node = out
        for part in leaf.section:
            node = node.setdefault(part, {})
        node[leaf.name] = _plain(value)
    return out


@functools.cache
def _default_instance(cls: type) -> Any:
    try:
        return cls()
    except (TypeError, ValueError):  # required fields: every leaf is printed
        return None


def _comparable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    return getattr(value, "value", value)


def library_changes(cfg: Any) -> Callable[[Any, str], bool]:
    """A ``to_dict`` filter for ``--print-config``: Virgo's own fields always; fields inherited from a library
    (transformers' TrainingArguments, 135 of them) only where they differ from a default config."""
    defaults = _default_instance(type(cfg))

    def keep(leaf: Any, dotted: str) -> bool:
        if leaf.owner.__module__.startswith("virgo") or leaf.section or defaults is None:
            return True
        return _comparable(getattr(cfg, leaf.name)) != _comparable(getattr(defaults, leaf.name))
    return keep


def dump_yaml(cfg: Any, **kw: Any) -> str:
    import yaml

    return yaml.safe_dump(to_dict(cfg, **kw), sort_keys=False, allow_unicode=True, width=1000)


def known_keys(cls: type) -> list[str]:
    return sorted(key_index(cls))
