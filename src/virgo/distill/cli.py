"""`virgo distill`: teacher rollouts on visual questions, graded, banded and filtered into long-thought data."""

from __future__ import annotations

from pathlib import Path

import click

from virgo.config.cli import command, fail
from virgo.distill.config import DistillConfig


def distill_cmd(cfg: DistillConfig) -> None:
    from virgo.distill.pipeline import distill
    from virgo.records import Problem, read_records

    # A bad problem is reported and skipped; nothing usable is one line and exit 2.
    items = read_records(cfg.problems, Problem, strict=False).warn_skipped("problem").require_usable().records
    if cfg.limit:
        items = items[:cfg.limit]
    if cfg.rollouts_only:
        from virgo.distill.rollout import distill_rollouts

        summary = distill_rollouts(items, cfg.teacher, Path(cfg.out), cfg.generate, teacher_model=cfg.teacher_model,
                                   progress=cfg.progress, force=cfg.force, **cfg.client.kwargs())
        _print_rollout(summary)
        _exit_if_missing(summary, cfg.filter_only)
        return
    result = distill(items, cfg)
    _print_rollout(result["rollout"])
    _print_stats(result["stats"], result["paths"])
    _exit_if_missing(result["rollout"], cfg.filter_only)


def _exit_if_missing(s: dict, filter_only: bool) -> None:
    # Failed requests are not fatal mid-run (the others go on), so the end of the run is where an incomplete
    # rollout set must stop a script: its bands and dataset are partial until the run is resumed.
    if not s.get("missing"):
        return
    how = ("rerun without --filter-only (with --teacher) to generate them" if filter_only else
           "rerun the same command to resume (rollouts already in --out are kept; only the missing ones are "
           "requested)")
    fail(f"{s['missing']} of {s['expected']} rollouts are missing; problems without all --n rollouts are incomplete "
         f"(not banded, not in the dataset). To finish, {how}.", code=1)


def _print_rollout(s: dict) -> None:
    parts = [f"{s.get('records', 0)} rollouts"]
    if "expected" in s:
        parts.append(f"{s['missing']} missing of {s['expected']}")
    if s.get("wall_seconds") is not None:
        parts.append(f"{s['wall_seconds']:.1f} s")
    parts.append(f"{s.get('prompt_tokens', 0)} prompt + {s.get('completion_tokens', 0)} completion tokens")
    if s.get("completion_tokens_per_second"):
        parts.append(f"{s['completion_tokens_per_second']} tok/s")
    if s.get("finish_length"):
        parts.append(f"{s['finish_length']} hit the token limit")
    click.echo("rollouts: " + ", ".join(parts))


def _print_stats(st: dict, paths) -> None:
    pr = st["pass_rate"]
    sel = st["selection"]
    click.echo(f"graded: pass rate {pr['rollouts']} per rollout, {pr['problems_solved']} of problems solved; "
               f"correct per problem {pr['correct_per_problem']}")
    click.echo("bands: " + ", ".join(f"{k} {v}" for k, v in st["bands"].items())
               + (f" (base model solved {st['base']['solved']})" if st["base"]["given"] else " (no base answers)"))
    if st["incomplete"]["problems"]:
        click.echo(f"incomplete: {st['incomplete']['problems']} problems lack {st['incomplete']['rollouts_missing']} "
                   f"of their {st['n']} rollouts (not banded)")
    if st["rollouts_beyond_n"]:
        click.echo(f"ignored: {st['rollouts_beyond_n']} rollouts with sample >= --n {st['n']} already in the file")
    click.echo(f"format: {st['format']['passed']}/{st['format']['checked']} rollouts pass; rejects "
               f"{st['format']['rejects']}")
    click.echo(f"dataset: {sel['examples']} examples from {sel['problems']} problems (band {sel['band']}, "
               f"policy {sel['policy']}); dropped {sel['dropped']} -> {paths.dataset}")
    click.echo(f"stats: {paths.stats}")


distill = command("distill", DistillConfig, distill_cmd,
                  help="""Distil visual long-thought data from a slow-thinking teacher (paper section 2.2).

Rolls the teacher out N times per problem (images included), grades every rollout against the gold answer, assigns
difficulty bands (paper section 3.3), checks the format and writes a long-thought dataset for `virgo train` plus
stats. Self-distillation: the teacher is a model trained by `virgo train` on text-only long thoughts, served by
`virgo serve` or loaded from its directory.""")
