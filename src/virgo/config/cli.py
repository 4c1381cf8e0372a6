"""A stage's command line, generated from its config dataclass.

    train = command("train", TrainConfig, run_train, help=..., recipes=resolve_recipe)

gives ``virgo train [--config FILE|NAME] [--print-config] [--<field> VALUE ...] [KEY=VALUE ...]``: one flag per
field (named as in YAML, ``-`` or ``_`` both accepted), its help from the field, grouped by section in ``--help``.
Built on click (which typer is built on): click already parses, type-checks, suggests close flag names and
formats help; what it cannot know — which flags the user actually gave, so that YAML sits between defaults and
the command line — comes from ``ctx.get_parameter_source``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from virgo.config.load import ConfigError, dump_yaml, is_override, library_changes, load
from virgo.config.tree import Leaf, key_index, leaves, preferred_name, sections
from virgo.config.values import base_type, from_text, is_list, item_type, literal_choices, optional

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
EXPLICIT = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


class FieldType(click.ParamType):
    """Command-line text -> the field's type, with the same coercion as YAML values."""

    def __init__(self, tp: Any, where: str):
        self.tp, self.where = tp, where
        b = base_type(tp)
        choices = literal_choices(tp)
        self.name = ("[" + "|".join(map(str, choices)) + "]" if choices else
                     {int: "INTEGER", float: "NUMBER", bool: "BOOLEAN", Path: "PATH"}.get(b, "TEXT"))

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return from_text(value, self.tp, self.where)
        except ConfigError as e:
            self.fail(str(e).split(": ", 1)[-1], param, ctx)


def param_name(leaf: Leaf) -> str:
    return "f__" + "__".join(leaf.path)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@functools.cache
def _section_defaults(cls: type) -> dict[tuple[str, ...], Any]:
    """Each section's default instance (from the factory its ``section`` declares)."""
    out: dict[tuple[str, ...], Any] = {}
    for path, f in sections(cls):
        parent = out.get(path[:-1])
        out[path] = getattr(parent, path[-1]) if parent is not None else f.default_factory()
    return out


def default_of(cls: type, leaf: Leaf) -> Any:
    if leaf.section:
        return getattr(_section_defaults(cls)[leaf.section], leaf.name)
    f = leaf.field
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def required(cls: type, leaf: Leaf) -> bool:
    return default_of(cls, leaf) is dataclasses.MISSING


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]" if value else "[]"
    return str(getattr(value, "value", value))


def _help(cls: type, leaf: Leaf) -> str:
    text = leaf.help
    choices = leaf.meta.get("choices")
    if choices and "one of" not in text:
        text += f" One of: {', '.join(map(str, choices))}."
    if leaf.meta.get("aliases"):
        text += f" Also accepted as: {', '.join(leaf.meta['aliases'])}."
    if required(cls, leaf):
        return text + " [required]"
    if leaf.meta.get("secret"):
        return text
    return text + f" [default: {_show(default_of(cls, leaf))}]"


def _option(cls: type, leaf: Leaf) -> click.Option:
    name = preferred_name(cls, leaf)
    index = key_index(cls)
    decls = [param_name(leaf), flag(name)]
    for alias in leaf.meta.get("aliases", ()):
        for candidate in (alias, ".".join((*leaf.section, alias))):
            found = index.get(candidate)
            if found is not None and found.leaf == leaf and flag(candidate) not in decls:
                decls.append(flag(candidate))
                break
    if leaf.meta.get("short"):
        decls.append(leaf.meta["short"])
    common = {"help": _help(cls, leaf), "envvar": leaf.meta.get("env"), "show_envvar": bool(leaf.meta.get("env"))}
    tp = leaf.type
    if base_type(tp) is bool and not optional(tp):
        on = flag(name)
        return click.Option([param_name(leaf), f"{on}/--no-{on[2:]}", *decls[2:]], default=None, **common)
    if is_list(tp):
        return click.Option(decls, multiple=True, type=FieldType(item_type(tp), name),
                            metavar=leaf.meta.get("metavar"), **common)
    return click.Option(decls, type=FieldType(tp, name), metavar=leaf.meta.get("metavar"), **common)


def _deprecated_options(cls: type, leaf: Leaf) -> list[click.Option]:
    out = []
    index = key_index(cls)
    for old in leaf.meta.get("deprecated", ()):
        found = index.get(old) or index.get(".".join((*leaf.section, old)))
        if found is None or found.leaf != leaf:
            continue  # the old name means another field of this stage (eval's own --benchmark): not an alias here
        tp = leaf.type
        kw: dict[str, Any] = {"hidden": True}
        if base_type(tp) is bool and not optional(tp):
            kw.update(is_flag=True, default=None, flag_value=True)
        elif is_list(tp):
            kw.update(multiple=True, type=FieldType(item_type(tp), old))
        else:
            kw.update(type=FieldType(tp, old))
        out.append(click.Option([f"dep__{param_name(leaf)}__{old}", flag(old)], **kw))
    return out


def group_title(leaf: Leaf, cls: type) -> str:
    """The ``--help`` heading of a field: its section's help, or the library that declares it."""
    if not leaf.owner.__module__.startswith("virgo"):
        return f"{leaf.owner.__name__} options ({leaf.owner.__module__.split('.')[0]})"
    if not leaf.section:
        return "Options"
    return (_section_field(cls, leaf.section).metadata.get("help") or leaf.section[-1]).rstrip(".")


def _section_field(cls: type, path: tuple[str, ...]) -> dataclasses.Field:
    return dict(sections(cls))[path]


class StageCommand(click.Command):
    """A click command whose options come from a config dataclass; ``--help`` groups them by section."""

    def __init__(self, name: str, cls: type, run: Callable[[Any], Any], *, recipes: Callable[[str], Path] | None,
                 extra: Sequence[click.Parameter] = (), **kw: Any):
        self.cls, self.run_fn, self.recipes = cls, run, recipes
        self.leaves = [leaf for leaf in leaves(cls) if leaf.meta.get("cli", True)]
        self.positionals = [leaf for leaf in self.leaves if leaf.meta.get("positional")]
        params: list[click.Parameter] = [
            click.Option(["config", "--config", "-c"], metavar="FILE",
                         help="YAML config (keys as the flags below, sections as mappings)"
                              + (", or the name of a packaged recipe" if recipes else "")
                              + ". The command line overrides it."),
            click.Option(["print_config", "--print-config"], is_flag=True,
                         help="Print the effective config as YAML (loadable with --config) and exit."),
        ]
        for leaf in self.leaves:
            if not leaf.meta.get("positional"):
                params.append(_option(cls, leaf))
            params.extend(_deprecated_options(cls, leaf))
        params.extend(extra)
        metavar = " ".join(
            (leaf.name.upper() + ("..." if is_list(leaf.type) else "")) if required(cls, leaf) else
            f"[{leaf.name.upper()}{'...' if is_list(leaf.type) else ''}]" for leaf in self.positionals)
        params.append(click.Argument(["args"], nargs=-1,
                                     metavar=(metavar + " " if metavar else "") + "[KEY=VALUE]..."))
        super().__init__(name, params=params, callback=self._invoke, context_settings=CONTEXT, **kw)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # TRL and HfArgumentParser spell flags with underscores (--learning_rate): accept both spellings.
        fixed = []
        for a in args:
            if a.startswith("--") and not a.startswith("---"):
                head, sep, tail = a.partition("=")
                a = head.replace("_", "-") + sep + tail
            fixed.append(a)
        return super().parse_args(ctx, fixed)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        groups: dict[str, list[tuple[str, str]]] = {}
        by_param = {param_name(leaf): leaf for leaf in self.leaves}
        for p in self.get_params(ctx):
            if not isinstance(p, click.Option):
                continue
            rec = p.get_help_record(ctx)
            if rec is None:
                continue
            leaf = by_param.get(p.name or "")
            title = group_title(leaf, self.cls) if leaf is not None else "Options"
            groups.setdefault(title, []).append(rec)
        if self.positionals:
            rows = [(leaf.name.upper(), _help(self.cls, leaf)) for leaf in self.positionals]
            rows.append(("KEY=VALUE", "Override any config key (YAML value syntax: true, 3, null, [a, b])."))
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        for title, rows in groups.items():
            with formatter.section(title):
                formatter.write_dl(rows)

    def collect(self, ctx: click.Context, params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """{dotted: value} of the flags the user gave, and the key=value overrides (positionals included)."""
        values: dict[str, Any] = {}
        for leaf in self.leaves:
            name = param_name(leaf)
            if name in params and ctx.get_parameter_source(name) in EXPLICIT:
                value = params[name]
                values[leaf.dotted] = list(value) if isinstance(value, tuple) else value
            for old in leaf.meta.get("deprecated", ()):
                dep = f"dep__{name}__{old}"
                if dep in params and ctx.get_parameter_source(dep) in EXPLICIT and params.get(dep) not in (None, ()):
                    click.echo(f"warning: --{old.replace('_', '-')} is deprecated and will be removed in the "
                               f"next release; use {flag(preferred_name(self.cls, leaf))}", err=True)
                    value = params[dep]
                    values[leaf.dotted] = list(value) if isinstance(value, tuple) else value
        overrides, rest = [], []
        for token in params.get("args", ()):
            (overrides if is_override(token) else rest).append(token)
        for i, leaf in enumerate(self.positionals):
            if not rest:
                break
            if is_list(leaf.type) and i == len(self.positionals) - 1:
                values[leaf.dotted] = [from_text(t, item_type(leaf.type), leaf.name) for t in rest]
                rest = []
            else:
                values[leaf.dotted] = from_text(rest.pop(0), leaf.type, leaf.name)
        if rest:
            raise ConfigError(f"command line: unexpected argument(s) {' '.join(rest)} (overrides are KEY=VALUE)")
        return values, overrides

    def load_config(self, ctx: click.Context, params: dict[str, Any]) -> Any:
        values, overrides = self.collect(ctx, params)
        config = params.get("config")
        if config is not None and self.recipes is not None:
            config = self.recipes(config)
        missing = [leaf for leaf in self.leaves if required(self.cls, leaf) and leaf.dotted not in values]
        given = {o.partition("=")[0].replace("-", "_") for o in overrides}
        from_yaml = set()
        if config is not None:
            from virgo.config.load import flatten_yaml, read_yaml

            from_yaml = set(flatten_yaml(self.cls, read_yaml(config), str(config)))
        missing = [leaf for leaf in missing if leaf.dotted not in from_yaml and leaf.dotted not in given
                   and leaf.name not in given]
        if missing:
            names = ", ".join(leaf.name.upper() if leaf.meta.get("positional") else
                              flag(preferred_name(self.cls, leaf)) for leaf in missing)
            raise ConfigError(f"missing {names}")
        return load(self.cls, config=config, cli=values, overrides=overrides)

    def _invoke(self, **params: Any) -> Any:
        ctx = click.get_current_context()
        try:
            cfg = self.load_config(ctx, params)
        except ConfigError as e:
            raise click.UsageError(str(e), ctx) from None
        if params.get("print_config"):
            click.echo(dump_yaml(cfg, only=self.print_filter(cfg)), nl=False)
            return None
        extra = {n: params[n] for n in getattr(self, "extra_names", ()) if n in params}
        try:
            return self.run_fn(cfg, **extra) if extra else self.run_fn(cfg)
        except ConfigError as e:
            fail(str(e))
        except Exception as e:
            if getattr(e, "user_facing", False):  # an error the user can fix, said in one line: no traceback
                fail(str(e))
            raise

    def print_filter(self, cfg: Any) -> Callable[[Leaf, str], bool] | None:
        return library_changes(cfg)


def command(name: str, cls: type, run: Callable[..., Any], *, help: str,
            recipes: Callable[[str], Path] | None = None, extra: Sequence[click.Parameter] = (),
            short_help: str | None = None, epilog: str | None = None, hidden: bool = False) -> StageCommand:
    """The ``virgo <name>`` command: parse -> ``cls`` -> ``run(cfg)``. ``extra`` params (actions such as
    ``--list``) that are not part of the config are passed to ``run`` as keyword arguments."""
    cmd = StageCommand(name, cls, run, recipes=recipes, extra=extra, help=help, short_help=short_help,
                       epilog=epilog, hidden=hidden)
    cmd.extra_names = tuple(p.name for p in extra)  # type: ignore[attr-defined]
    return cmd


def group(name: str, commands: Sequence[click.Command], *, help: str) -> click.Group:
    """A command group (``virgo data convert|stats|...``) of stage commands."""
    grp = click.Group(name, help=help, context_settings=CONTEXT, no_args_is_help=True)
    for cmd in commands:
        grp.add_command(cmd)
    return grp


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr: something the user should know that does not stop the stage."""
    click.echo(f"warning: {message}", err=True)


def fail(message: str, code: int = 2) -> None:
    """One line on stderr and the exit code: how a stage reports an error the user can fix."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)
