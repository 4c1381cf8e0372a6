"""A config dataclass seen as a tree: its leaves (fields) with dotted paths, and the names each can be given by.

One key index per config class answers "which field is ``temperature``?" for YAML keys, ``key=value`` overrides and
CLI flags alike: the dotted path (``generate.temperature``) always works; a leaf's own name works when no other leaf
of the tree has it; documented aliases and deprecated names map to their field. An unknown key gets the closest
valid one as a suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from dataclasses import dataclass
from typing import Any

from virgo.config.fields import help_of, is_section


class ConfigError(ValueError):
    """A bad config value or key: the message names the source (file, command line) and the key."""


@dataclass(frozen=True)
class Leaf:
    """One settable field of a config tree."""

    path: tuple[str, ...]  # ("generate", "temperature")
    field: dataclasses.Field
    type: Any  # the resolved annotation
    owner: type  # the dataclass that declares the field

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def meta(self) -> typing.Mapping[str, Any]:
        return self.field.metadata

    @property
    def help(self) -> str:
        return help_of(self.field)

    @property
    def section(self) -> tuple[str, ...]:
        return self.path[:-1]


@dataclass(frozen=True)
class Key:
    """What a name given by the user points at; ``deprecated`` names warn."""

    leaf: Leaf
    deprecated: bool = False


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - forward refs a library could not resolve: fall back to the raw annotations
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _declared_by(cls: type, name: str) -> type:
    for klass in cls.__mro__:
        if name in getattr(klass, "__annotations__", {}) and dataclasses.is_dataclass(klass):
            return klass
    return cls


def section_type(f: dataclasses.Field, hints: dict[str, Any]) -> type:
    tp = hints.get(f.name, f.type)
    if not (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        raise TypeError(f"section {f.name!r} must be annotated with a dataclass type, not {tp!r}")
    return tp


@functools.cache
def leaves(cls: type) -> tuple[Leaf, ...]:
    """Every leaf of ``cls``, sections expanded, in declaration order."""
    out: list[Leaf] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if is_section(f):
            for leaf in leaves(section_type(f, hints)):
                out.append(dataclasses.replace(leaf, path=(f.name, *leaf.path)))
        else:
            out.append(Leaf((f.name,), f, hints.get(f.name, f.type), _declared_by(cls, f.name)))
    return tuple(out)


@functools.cache
def sections(cls: type) -> tuple[tuple[tuple[str, ...], dataclasses.Field], ...]:
    """(path, field) of every section, outermost first."""
    out = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.init and is_section(f):
            out.append(((f.name,), f))
            for path, sub in sections(section_type(f, hints)):
                out.append(((f.name, *path), sub))
    return tuple(out)


def _flattens(cls: type, leaf: Leaf) -> bool:
    """Whether a section leaf may be named by its own name (every enclosing section allows it)."""
    node, hints = cls, _hints(cls)
    for part in leaf.section:
        f = next(x for x in dataclasses.fields(node) if x.name == part)
        if not f.metadata.get("flatten", True):
            return False
        node = section_type(f, hints)
        hints = _hints(node)
    return True


@functools.cache
def key_index(cls: type) -> dict[str, Key]:
    """Every accepted name -> the leaf it sets. Names use underscores; ``-`` is accepted and normalised."""
    all_leaves = leaves(cls)
    index: dict[str, Key] = {}
    counts: dict[str, int] = {}
    for leaf in all_leaves:
        counts[leaf.name] = counts.get(leaf.name, 0) + 1
    for leaf in all_leaves:
        index[leaf.dotted] = Key(leaf)
    for leaf in all_leaves:
        if len(leaf.path) > 1 and counts[leaf.name] == 1 and leaf.name not in index and _flattens(cls, leaf):
            index[leaf.name] = Key(leaf)
    for leaf in all_leaves:
        prefix = leaf.section
        for alias in leaf.meta.get("aliases", ()):
            index.setdefault(".".join((*prefix, alias)), Key(leaf))
            if prefix and _flattens(cls, leaf):
                index.setdefault(alias, Key(leaf))
        for old in leaf.meta.get("deprecated", ()):
            index.setdefault(".".join((*prefix, old)), Key(leaf, deprecated=True))
            if prefix and _flattens(cls, leaf):
                index.setdefault(old, Key(leaf, deprecated=True))
    return index


def normalise_key(key: str) -> str:
    return key.strip().lstrip("-").replace("-", "_")


def unknown_key(cls: type, key: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(key_index(cls)), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{source}: unknown key {key!r}{hint}")


def lookup(cls: type, key: str, source: str) -> Key:
    found = key_index(cls).get(normalise_key(key))
    if found is None:
        raise unknown_key(cls, normalise_key(key), source)
    return found


def preferred_name(cls: type, leaf: Leaf) -> str:
    """The shortest name that means ``leaf``: its own name when that is unambiguous, else the dotted path."""
    found = key_index(cls).get(leaf.name)
    return leaf.name if found is not None and found.leaf == leaf and not found.deprecated else leaf.dotted
