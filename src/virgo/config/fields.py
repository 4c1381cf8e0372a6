"""How a stage's config dataclass declares its fields: one ``opt(...)`` per field, one ``section(...)`` per nested
config.

Every config in Virgo is a plain (stdlib) dataclass, so the training config can extend ``trl.SFTConfig`` and the RL
config ``trl.GRPOConfig`` like any other. The metadata keys are those of transformers' ``HfArgumentParser`` where
the two overlap (``help``, ``choices``, ``aliases``), so TRL's own fields and ours read the same way. From these
declarations ``virgo.config`` derives the CLI flags, the YAML keys, ``--print-config`` and the checks of ranges and
choices, so a new option is one ``opt`` line.

    @dataclass
    class GradeConfig:
        timeout: float = opt(2.0, help="Seconds per response before it is graded wrong.", gt=0)
        workers: int | None = opt(None, help="Grading processes (default: all cores).", ge=0)

    @dataclass
    class EvalConfig:
        grade: GradeConfig = section(GradeConfig, help="How answers are graded.")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

MISSING = dataclasses.MISSING


def opt(default: Any = MISSING, *, help: str, default_factory: Callable[[], Any] | Any = MISSING,
        choices: Sequence[Any] | None = None, ge: float | None = None, gt: float | None = None,
        le: float | None = None, lt: float | None = None, aliases: Sequence[str] = (),
        deprecated: Sequence[str] = (), short: str | None = None, env: str | None = None,
        positional: bool = False, secret: bool = False, cli: bool = True, metavar: str | None = None,
        path: bool = False) -> Any:
    """A config field.

    help: the ``--help`` text (one or more sentences; no hard line breaks, the CLI wraps it).
    choices: the allowed values (checked on load; shown in ``--help``).
    ge / gt / le / lt: numeric bounds (checked on load; NaN and infinities are refused for every float).
    aliases: other accepted names, documented (e.g. LLaMA-Factory's ``cutoff_len`` for ``max_length``).
    deprecated: old names still accepted for one release, with a warning naming the new one.
    short: a one-letter flag (``-m``). env: an environment variable that supplies the value.
    positional: the value is a command-line argument (``virgo report RUN...``), not a ``--flag``.
    secret: never printed by ``--print-config`` (API keys). cli: False keeps a field out of the command line
    (YAML only). path: a file path (or list of them); a relative one in a YAML file is relative to that file, as
    image paths in a JSONL file are relative to it.
    """
    meta: dict[str, Any] = {"help": help}
    for key, value in (("choices", list(choices) if choices is not None else None), ("ge", ge), ("gt", gt),
                       ("le", le), ("lt", lt), ("short", short), ("env", env), ("metavar", metavar)):
        if value is not None:
            meta[key] = value
    if aliases:
        meta["aliases"] = list(aliases)
    if deprecated:
        meta["deprecated"] = list(deprecated)
    if positional:
        meta["positional"] = True
    if secret:
        meta["secret"] = True
    if not cli:
        meta["cli"] = False
    if path:
        meta["path"] = True
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    if isinstance(default, (list, dict, set)):  # a mutable default is shared between instances: copy it
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type, *, help: str, factory: Callable[[], Any] | None = None,
            flatten: bool = True) -> Any:
    """A nested config (``generate: GenerateConfig``): one YAML mapping, and its fields as flags.

    factory: builds the stage's default (``lambda: GenerateConfig(max_new_tokens=2048)`` where a stage departs
    from the shared defaults). flatten: its flags keep their own names (``--temperature``) when no other field of
    the stage has the same name; otherwise they are ``--section.name``.
    """
    meta = {"help": help, "section": True, "flatten": flatten}
    return dataclasses.field(default_factory=factory or cls, metadata=meta)


def is_section(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("section"))


def help_of(f: dataclasses.Field) -> str:
    return str(f.metadata.get("help") or "").strip()
