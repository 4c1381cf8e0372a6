"""``virgo data``: convert, stats, select, validate long-thought datasets."""

from __future__ import annotations

import json
from pathlib import Path

import click

from virgo.config.cli import command, fail, group
from virgo.data.config import ConvertConfig, DecontaminateConfig, SelectConfig, StatsConfig, ValidateConfig


def _errors(errors, limit: int | None = None) -> None:
    for e in errors[:limit]:
        click.echo(e.format(), err=True)
    if limit is not None and len(errors) > limit:
        click.echo(f"... and {len(errors) - limit} more bad record(s); `virgo data validate` lists them all",
                   err=True)


CONVERT_HELP = (
    "Convert long-thought examples between formats; round trips lose nothing."
    "\n\n"
    "Records -> any format -> records gives equal records: ids, images (paths relative to the output when "
    "under it), answer, domain, source and every extra field. Bad input items are reported one per line "
    "(file:line: field: problem) and skipped; the good ones are written and the exit status is 1."
)


def convert_cmd(cfg: ConvertConfig) -> None:
    from virgo.data.convert import convert
    from virgo.records import RecordError

    try:
        r = convert(cfg.src, cfg.dst, src_format=cfg.src_format, dst_format=cfg.dst_format,
                    normalize=cfg.normalize_thoughts, dataset_name=cfg.dataset_name)
    except (ValueError, RecordError) as e:
        fail(str(e))
    _errors(r.errors)
    click.echo(f"{cfg.src} ({r.source_format}): {r.read} item(s) -> {cfg.dst} ({r.target_format}): {r.written} "
               f"written"
               + (f", {len(r.errors)} bad" if r.errors else "")
               + (f"; registered in {r.dataset_info}" if r.dataset_info else ""))
    if r.verbatim and not cfg.normalize_thoughts:
        click.echo(f"note: {r.verbatim} complete long-thought response(s) are not in virgo's exact layout (e.g. "
                   f"other whitespace between the markers) and were kept as exact text (a 'response'); "
                   f"--normalize-thoughts reads them as (thought, solution)", err=True)
    if r.errors:
        raise SystemExit(1)


STATS_HELP = (
    "Describe a dataset: counts by kind, domain, modality and source; completeness of the responses "
    "(complete, truncated, unclosed_solution, no_solution, malformed, plain); thought and solution "
    "lengths (p50/p90/p99/max, per domain); reflection-phrase counts. Bad records are reported and left "
    "out."
)


def stats_cmd(cfg: StatsConfig) -> None:
    path = Path(cfg.path)
    from rich.console import Console

    from virgo.data.analytics import load_lexicon
    from virgo.data.formats import read_dataset
    from virgo.data.select import parse_bins
    from virgo.data.stats import compute_stats, plot_lengths, render_stats

    try:
        lex = load_lexicon(cfg.lexicon) if cfg.lexicon else None
        bin_list = parse_bins(cfg.bins) if cfg.bins else None
        f, result = read_dataset(path, cfg.format)
        if result.errors and not result.records:
            _errors(result.errors, limit=10)
            fail(f"{path}: no usable records ({len(result.errors)} bad)")
        stats = compute_stats(result.records, tokenizer=cfg.tokenizer, lexicon=lex, bins=bin_list,
                              progress=cfg.progress)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    _errors(result.errors, limit=10)
    stats.summary = {"input": str(path), "format": f.name, "bad_records": len(result.errors), **stats.summary}
    if cfg.plot:
        plot_lengths(stats, Path(cfg.plot), title=f"{path.name}: lengths ({stats.summary['tokenizer']})")
    if cfg.as_json:
        click.echo(json.dumps(stats.summary, indent=2, ensure_ascii=False))
    else:
        console = Console()
        render_stats(stats, console, title=f"{path} ({f.name})")
        if result.errors:
            console.print(f"[yellow]{len(result.errors)} bad record(s) left out[/yellow]")
        if cfg.plot:
            console.print(f"histogram: {cfg.plot}")


SELECT_HELP = (
    "Draw a seeded, reproducible subset: by thought-length bins, by count, by domain quotas."
    "\n\n"
    "Records outside every bin (or without a thought) are left out when --bins is given. Then --per-bin N "
    "draws N per bin, --quota draws per domain, --n draws N overall; with none of them every remaining "
    "record is kept. The output keeps the input order. Bad input records stop the selection (run "
    "`virgo data validate`)."
)


def select_cmd(cfg: SelectConfig) -> None:
    path, out, seed = Path(cfg.path), Path(cfg.out), cfg.seed
    from rich.console import Console
    from rich.table import Table

    from virgo.data.analytics import load_tokenizer, section_lengths
    from virgo.data.formats import output_format, read_dataset
    from virgo.data.select import domain_counts, format_bins, parse_bins, parse_quota, select

    try:
        bin_list = parse_bins(cfg.bins) if cfg.bins else None
        quota_map = parse_quota(cfg.quota) if cfg.quota else None
        f, result = read_dataset(path, cfg.format)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    if result.errors:
        _errors(result.errors, limit=10)
        fail(f"{len(result.errors)} bad record(s) in {path}; fix them or keep the good ones with "
              f"`virgo data validate {path} --out GOOD --rejects BAD`")
    records = result.records
    lengths = None
    label = None
    if bin_list:
        counter = load_tokenizer(cfg.tokenizer)
        label = counter.label
        lengths = section_lengths(records, cfg.length_of, counter, progress=cfg.progress)
    domains = [r.domain for r in records]
    try:
        sel = select(domains, lengths=lengths, bins=bin_list, n=cfg.n, per_bin=cfg.per_bin, quota=quota_map,
                     seed=seed, allow_short=cfg.allow_short)
        fout = output_format(out, cfg.to, f.name)
        written = fout.write(out, [records[i] for i in sel.indices])
    except ValueError as e:
        fail(str(e))
    for w in sel.warnings:
        click.echo(f"warning: {w}", err=True)
    info = {"input": str(path), "input_records": len(records), "output": str(out), "format": fout.name,
            "seed": seed, "n": cfg.n, "per_bin": cfg.per_bin, "quota": quota_map,
            "bins": format_bins(bin_list) if bin_list else None, "length_of": cfg.length_of if bin_list else None,
            "tokenizer": label, "excluded": sel.excluded, "groups": sel.groups, "selected": written,
            "selected_domains": domain_counts(domains, sel.indices)}
    if cfg.report:
        report = Path(cfg.report)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console = Console(stderr=True)
    t = Table(title=f"selected {written:,} of {len(records):,} records (seed {seed}) -> {out} ({fout.name})",
              title_justify="left")
    for col in ("group", "available", "wanted", "selected"):
        t.add_column(col, justify="left" if col == "group" else "right")
    for g in sel.groups:
        t.add_row(g["group"], str(g["available"]), "all" if g["wanted"] is None else str(g["wanted"]),
                  str(g["selected"]))
    console.print(t)
    for why, k in sel.excluded.items():
        console.print(f"left out: {k:,} ({why})")
    if label:
        console.print(f"lengths: {cfg.length_of}, {label}")


VALIDATE_HELP = (
    "Check every record; print one line per bad record: file:line: field 'name': what is wrong."
    "\n\n"
    "Catches broken JSON, bytes that are not UTF-8, missing fields, wrong types, empty id, question, thought "
    "or solution, thought markers inside a thought, solution or question, incomplete long-thought responses, "
    "duplicate ids, unknown record types, and missing, remote or corrupt images. Exit status: 0 when every "
    "record is good, 1 when any is bad (the good ones are still written to --out)."
)


def validate_cmd(cfg: ValidateConfig) -> None:
    path = Path(cfg.path)
    out, rejects = (Path(p) if p else None for p in (cfg.out, cfg.rejects))
    from virgo.data.formats import output_format, resolve_format
    from virgo.data.validate import validate_file, write_rejects

    try:
        v = validate_file(path, fmt=cfg.format, record_type=cfg.record_type, check_images=cfg.images,
                          progress=cfg.progress)
        fin = resolve_format(path, cfg.format)
        if out:
            fout = output_format(out, cfg.to, fin.name)
            fout.write(out, v.records)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    for e in v.errors:
        click.echo(e.format())
    if rejects:
        write_rejects(rejects, path, fin, v.errors)
    total = len(v.records) + v.n_bad
    click.echo(f"{path}: {total} record(s): {len(v.records)} good, {v.n_bad} bad"
               + (f"; good -> {out}" if out else "") + (f"; bad -> {rejects}" if rejects and v.n_bad else ""),
               err=True)
    if v.n_bad:
        raise SystemExit(1)


convert = command("convert", ConvertConfig, convert_cmd, help=CONVERT_HELP)
stats = command("stats", StatsConfig, stats_cmd, help=STATS_HELP)
select_ = command("select", SelectConfig, select_cmd, help=SELECT_HELP)
validate = command("validate", ValidateConfig, validate_cmd, help=VALIDATE_HELP)


def decontaminate_cmd(cfg: DecontaminateConfig) -> None:
    from virgo.data.decontaminate import run_decontaminate

    try:
        run_decontaminate(cfg, echo=lambda msg: click.echo(msg, err=True))
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))


decontaminate = command("decontaminate", DecontaminateConfig, decontaminate_cmd, help="""Drop training records that
share an n-gram with a benchmark item.

Text is normalised first (NFKC, lower case, punctuation and LaTeX as word breaks); a record sharing one n-gram (13
words by default) with a benchmark item is contaminated. Writes the filtered file, a JSON report of every overlap
(record, item, the matched n-gram) and a readable .md summary beside it.""")
data = group("data", [convert, stats, select_, validate, decontaminate], help=(
    "Long-thought data: convert between formats (virgo JSONL, LLaMA-Factory JSON, STILL JSONL, HF datasets), "
    "describe (stats), draw seeded subsets (select), check records (validate) and remove benchmark overlaps "
    "(decontaminate)."))
