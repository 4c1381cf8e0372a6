"""``virgo data``: convert, stats, select, validate long-thought datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from virgo.data.analytics import SECTIONS

data_app = typer.Typer(
    help=("Long-thought data: convert between formats (virgo JSONL, LLaMA-Factory JSON, STILL JSONL, HF datasets), "
          "describe (stats), draw seeded subsets (select) and check records (validate)."),
    no_args_is_help=True,
)

FORMATS_TEXT = ("virgo (JSONL records), llamafactory (ShareGPT JSON: messages + images), still (JSONL: question, "
                "combined_text, domain), hf (datasets save_to_disk dir), parquet")
TOKENIZER_HELP = ("Count tokens with this tokenizer: a tokenizer.json, or a model directory (e.g. a Qwen2-VL "
                  "checkpoint). Default: an approximate count (words + punctuation marks), labelled as such.")
InputPath = Annotated[Path, typer.Argument(exists=True, help="Dataset file (.jsonl, .json, .parquet) or HF dataset "
                                                             "directory.")]
InputFormat = Annotated[Optional[str], typer.Option("--format", "-f", help=f"Input format (default: from the name "
                                                                             f"and first row): {FORMATS_TEXT}.")]
BINS_HELP = ("Thought-length bins in tokens, half-open (LO, HI]: e.g. 0-2000,2000-4000,4000-8000 (the paper's "
             "Table 4); 'LO-' has no upper bound.")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def _errors(errors, limit: int | None = None) -> None:
    for e in errors[:limit]:
        typer.echo(e.format(), err=True)
    if limit is not None and len(errors) > limit:
        typer.echo(f"... and {len(errors) - limit} more bad record(s); `virgo data validate` lists them all",
                   err=True)


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


CONVERT_HELP = (
    "Convert long-thought examples between formats; round trips lose nothing."
    "\n\n"
    "Records -> any format -> records gives equal records: ids, images (paths relative to the output when "
    "under it), answer, domain, source and every extra field. Bad input items are reported one per line "
    "(file:line: field: problem) and skipped; the good ones are written and the exit status is 1."
)


@data_app.command("convert", help=CONVERT_HELP)
def convert_cmd(
    src: InputPath,
    dst: Path = typer.Argument(..., help="Output file or directory (replaced atomically)."),
    src_format: str = typer.Option(None, "--from", help=f"Input format (default: from the name and first row): "
                                                        f"{FORMATS_TEXT}."),
    dst_format: str = typer.Option(None, "--to", help="Output format (default: from the name: .json -> "
                                                      "llamafactory, .jsonl -> virgo, .parquet -> parquet, no "
                                                      "suffix -> hf)."),
    normalize: bool = typer.Option(False, "--normalize-thoughts",
                                   help="Read every complete long-thought response as (thought, solution), even "
                                        "when its whitespace differs from virgo's layout. Default: such responses "
                                        "stay exact generic responses, so nothing changes on a round trip."),
    dataset_name: str = typer.Option(None, "--dataset-name",
                                     help="Also register the output under this name in the dataset_info.json next "
                                          "to it, so LLaMA-Factory can train on it (llamafactory output only)."),
) -> None:
    """Convert long-thought examples between formats; round trips lose nothing."""
    from virgo.data.convert import convert
    from virgo.records import RecordError

    try:
        r = convert(src, dst, src_format=src_format, dst_format=dst_format, normalize=normalize,
                    dataset_name=dataset_name)
    except (ValueError, RecordError) as e:
        _fail(str(e))
    _errors(r.errors)
    typer.echo(f"{src} ({r.source_format}): {r.read} item(s) -> {dst} ({r.target_format}): {r.written} written"
               + (f", {len(r.errors)} bad" if r.errors else "")
               + (f"; registered in {r.dataset_info}" if r.dataset_info else ""))
    if r.verbatim and not normalize:
        typer.echo(f"note: {r.verbatim} complete long-thought response(s) are not in virgo's exact layout (e.g. "
                   f"other whitespace between the markers) and were kept as exact text (a 'response'); "
                   f"--normalize-thoughts reads them as (thought, solution)", err=True)
    if r.errors:
        raise typer.Exit(1)


STATS_HELP = (
    "Describe a dataset: counts by kind, domain, modality and source; completeness of the responses "
    "(complete, truncated, unclosed_solution, no_solution, malformed, plain); thought and solution "
    "lengths (p50/p90/p99/max, per domain); reflection-phrase counts. Bad records are reported and left "
    "out."
)


@data_app.command("stats", help=STATS_HELP)
def stats_cmd(
    path: InputPath,
    fmt: InputFormat = None,
    tokenizer: str = typer.Option(None, "--tokenizer", "-t", help=TOKENIZER_HELP),
    lexicon: Path = typer.Option(None, "--lexicon", exists=True, dir_okay=False,
                                 help="Reflection phrases, one per line ('#' comments), instead of the packaged "
                                      "templates/lexicon/reflection.txt (wait, hmm, alternatively, let me verify, "
                                      "double-check, ...)."),
    bins: str = typer.Option(None, "--bins", help=BINS_HELP + " Adds the domain mix of each bin."),
    plot: Path = typer.Option(None, "--plot", dir_okay=False,
                              help="Write a histogram PNG of thought and solution lengths here."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON instead of tables."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar while tokenizing."),
) -> None:
    """Describe a dataset (see STATS_HELP)."""
    from rich.console import Console

    from virgo.data.analytics import load_lexicon
    from virgo.data.formats import read_dataset
    from virgo.data.select import parse_bins
    from virgo.data.stats import compute_stats, plot_lengths, render_stats

    try:
        lex = load_lexicon(lexicon) if lexicon else None
        bin_list = parse_bins(bins) if bins else None
        f, result = read_dataset(path, fmt)
        stats = compute_stats(result.records, tokenizer=tokenizer, lexicon=lex, bins=bin_list, progress=progress)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    _errors(result.errors, limit=10)
    stats.summary = {"input": str(path), "format": f.name, "bad_records": len(result.errors), **stats.summary}
    if plot:
        plot_lengths(stats, plot, title=f"{path.name}: lengths ({stats.summary['tokenizer']})")
    if as_json:
        typer.echo(json.dumps(stats.summary, indent=2, ensure_ascii=False))
    else:
        console = Console()
        render_stats(stats, console, title=f"{path} ({f.name})")
        if result.errors:
            console.print(f"[yellow]{len(result.errors)} bad record(s) left out[/yellow]")
        if plot:
            console.print(f"histogram: {plot}")


SELECT_HELP = (
    "Draw a seeded, reproducible subset: by thought-length bins, by count, by domain quotas."
    "\n\n"
    "Records outside every bin (or without a thought) are left out when --bins is given. Then --per-bin N "
    "draws N per bin, --quota draws per domain, --n draws N overall; with none of them every remaining "
    "record is kept. The output keeps the input order. Bad input records stop the selection (run "
    "`virgo data validate`)."
)


@data_app.command("select", help=SELECT_HELP)
def select_cmd(
    path: InputPath,
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the subset (replaced atomically)."),
    fmt: InputFormat = None,
    to: str = typer.Option(None, "--to", help="Output format (default: the input's, or what the --out name says)."),
    bins: str = typer.Option(None, "--bins", help=BINS_HELP + " Keeps only records in one of the bins."),
    per_bin: int = typer.Option(None, "--per-bin", min=0, help="Draw this many records from each bin."),
    n: int = typer.Option(None, "--n", "-n", min=0,
                          help="Draw this many records in all (1000/3000/5000 for the paper's Table 5). With one "
                               "seed, smaller selections are subsets of larger ones."),
    quota: str = typer.Option(None, "--quota",
                              help="Per-domain amounts: shares of --n (math=0.5,physics=0.3) or counts "
                                   "(math=300); '*' is every other domain, 'none' records without a domain. "
                                   "Domains not named (and no '*') are left out."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed and input give the same output bytes."),
    tokenizer: str = typer.Option(None, "--tokenizer", "-t", help=TOKENIZER_HELP),
    length_of: str = typer.Option("thought", "--length-of",
                                  help="What --bins measure: thought (default; the paper bins by thought length), "
                                       "solution, or response (the whole rendered response)."),
    allow_short: bool = typer.Option(False, "--allow-short",
                                     help="When a group has fewer records than asked, take them all (warns) "
                                          "instead of failing."),
    report: Path = typer.Option(None, "--report", dir_okay=False,
                                help="Also write what was selected and why (seed, bins, counts) as JSON here."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar while tokenizing."),
) -> None:
    """Draw a seeded, reproducible subset: by thought-length bins, by count, by domain quotas."""
    from rich.console import Console
    from rich.table import Table

    from virgo.data.analytics import load_tokenizer, section_lengths
    from virgo.data.formats import output_format, read_dataset
    from virgo.data.select import domain_counts, format_bins, parse_bins, parse_quota, select

    if length_of not in SECTIONS:
        _fail(f"--length-of must be one of {', '.join(SECTIONS)}, not {length_of!r}")
    try:
        bin_list = parse_bins(bins) if bins else None
        quota_map = parse_quota(quota) if quota else None
        f, result = read_dataset(path, fmt)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    if result.errors:
        _errors(result.errors, limit=10)
        _fail(f"{len(result.errors)} bad record(s) in {path}; fix them or keep the good ones with "
              f"`virgo data validate {path} --out GOOD --rejects BAD`")
    records = result.records
    lengths = None
    label = None
    if bin_list:
        counter = load_tokenizer(tokenizer)
        label = counter.label
        lengths = section_lengths(records, length_of, counter, progress=progress)
    domains = [r.domain for r in records]
    try:
        sel = select(domains, lengths=lengths, bins=bin_list, n=n, per_bin=per_bin, quota=quota_map, seed=seed,
                     allow_short=allow_short)
        fout = output_format(out, to, f.name)
        written = fout.write(out, [records[i] for i in sel.indices])
    except ValueError as e:
        _fail(str(e))
    for w in sel.warnings:
        typer.echo(f"warning: {w}", err=True)
    info = {"input": str(path), "input_records": len(records), "output": str(out), "format": fout.name,
            "seed": seed, "n": n, "per_bin": per_bin, "quota": quota_map,
            "bins": format_bins(bin_list) if bin_list else None, "length_of": length_of if bin_list else None,
            "tokenizer": label, "excluded": sel.excluded, "groups": sel.groups, "selected": written,
            "selected_domains": domain_counts(domains, sel.indices)}
    if report:
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
        console.print(f"lengths: {length_of}, {label}")


VALIDATE_HELP = (
    "Check every record; print one line per bad record: file:line: field 'name': what is wrong."
    "\n\n"
    "Catches broken JSON, bytes that are not UTF-8, missing fields, wrong types, empty id, question, thought "
    "or solution, thought markers inside a thought, solution or question, incomplete long-thought responses, "
    "duplicate ids, unknown record types, and missing, remote or corrupt images. Exit status: 0 when every "
    "record is good, 1 when any is bad (the good ones are still written to --out)."
)


@data_app.command("validate", help=VALIDATE_HELP)
def validate_cmd(
    path: InputPath,
    fmt: InputFormat = None,
    record_type: str = typer.Option("auto", "--type",
                                    help="Record type of a virgo JSONL file: example (long-thought or generic "
                                         "response), problem, generation, grade, or auto (told from each row's "
                                         "fields; a row that fits none is an 'unknown record type' error)."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the good records here."),
    to: str = typer.Option(None, "--to", help="Format of --out (default: the input's, or what the name says)."),
    rejects: Path = typer.Option(None, "--rejects",
                                 help="Write the bad records here exactly as they were in the input (raw lines; "
                                      "a JSON array for a JSON-array input)."),
    images: bool = typer.Option(True, "--images/--no-images",
                                help="Check that every image exists and decodes (PIL verify + load)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar while checking."),
) -> None:
    """Check every record; print one line per bad record: file:line: field 'name': what is wrong."""
    from virgo.data.formats import output_format, resolve_format
    from virgo.data.validate import validate_file, write_rejects

    try:
        v = validate_file(path, fmt=fmt, record_type=record_type, check_images=images, progress=progress)
        fin = resolve_format(path, fmt)
        if out:
            fout = output_format(out, to, fin.name)
            fout.write(out, v.records)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    for e in v.errors:
        typer.echo(e.format())
    if rejects:
        write_rejects(rejects, path, fin, v.errors)
    total = len(v.records) + v.n_bad
    typer.echo(f"{path}: {total} record(s): {len(v.records)} good, {v.n_bad} bad"
               + (f"; good -> {out}" if out else "") + (f"; bad -> {rejects}" if rejects and v.n_bad else ""),
               err=True)
    if v.n_bad:
        raise typer.Exit(1)
