"""The configs of `virgo data convert | stats | select | validate`."""

from __future__ import annotations

from dataclasses import dataclass

from virgo.config.fields import opt
from virgo.data.analytics import SECTIONS

FORMATS_TEXT = ("virgo (JSONL records), llamafactory (ShareGPT JSON: messages + images), still (JSONL: question, "
                "combined_text, domain), hf (datasets save_to_disk dir), parquet")
TOKENIZER_HELP = ("Count tokens with this tokenizer: a tokenizer.json, or a model directory (e.g. a Qwen2-VL "
                  "checkpoint). Default: an approximate count (words + punctuation marks), labelled as such.")
BINS_HELP = ("Thought-length bins in tokens, half-open (LO, HI]: e.g. 0-2000,2000-4000,4000-8000 (the paper's "
             "Table 4); 'LO-' has no upper bound.")
INPUT_HELP = "Dataset file (.jsonl, .json, .parquet) or HF dataset directory."
RECORD_TYPES = ("auto", "example", "problem", "generation", "grade")


@dataclass
class ConvertConfig:
    """`virgo data convert`."""

    src: str = opt(positional=True, path=True, help=INPUT_HELP)
    dst: str = opt(positional=True, path=True, help="Output file or directory (replaced atomically).")
    src_format: str | None = opt(None, aliases=["from"], help=f"Input format (default: from the "
                                 f"name and first row): {FORMATS_TEXT}.")
    dst_format: str | None = opt(None, aliases=["to"], help="Output format (default: from the "
                                 "name: .json -> llamafactory, .jsonl -> virgo, .parquet -> parquet, no suffix -> "
                                 "hf).")
    normalize_thoughts: bool = opt(False, help="Read every complete long-thought response as (thought, solution), "
                                   "even when its whitespace differs from virgo's layout. Default: such responses "
                                   "stay exact generic responses, so nothing changes on a round trip.")
    dataset_name: str | None = opt(None, help="Also register the output under this name in the dataset_info.json "
                                   "next to it, so LLaMA-Factory can train on it (llamafactory output only).")


@dataclass
class StatsConfig:
    """`virgo data stats`."""

    path: str = opt(positional=True, path=True, help=INPUT_HELP)
    format: str | None = opt(None, short="-f", help=f"Input format (default: from the name and "
                             f"first row): {FORMATS_TEXT}.")
    tokenizer: str | None = opt(None, short="-t", help=TOKENIZER_HELP)
    lexicon: str | None = opt(None, path=True, help="Reflection phrases, one per line ('#' comments), instead of "
                              "the packaged templates/lexicon/reflection.txt (wait, hmm, alternatively, let me "
                              "verify, double-check, ...).")
    bins: str | None = opt(None, help=BINS_HELP + " Adds the domain mix of each bin.")
    plot: str | None = opt(None, path=True, help="Write a histogram PNG of thought and solution lengths here.")
    as_json: bool = opt(False, aliases=["json"], help="Print the statistics as JSON instead of tables.")
    progress: bool = opt(True, help="Progress bar while tokenizing.")


@dataclass
class SelectConfig:
    """`virgo data select`."""

    path: str = opt(positional=True, path=True, help=INPUT_HELP)
    out: str = opt(short="-o", path=True, help="Where to write the subset (replaced atomically).")
    format: str | None = opt(None, short="-f", help="Input format (default: from the name and "
                             "first row).")
    to: str | None = opt(None, help="Output format (default: the input's, or what the --out name "
                         "says).")
    bins: str | None = opt(None, help=BINS_HELP + " Keeps only records in one of the bins.")
    per_bin: int | None = opt(None, ge=0, help="Draw this many records from each bin.")
    n: int | None = opt(None, short="-n", ge=0, help="Draw this many records in all (1000/3000/5000 for the paper's "
                        "Table 5). With one seed, smaller selections are subsets of larger ones.")
    quota: str | None = opt(None, help="Per-domain amounts: shares of --n (math=0.5,physics=0.3) or counts "
                            "(math=300); '*' is every other domain, 'none' records without a domain. Domains not "
                            "named (and no '*') are left out.")
    seed: int = opt(0, help="Random seed: the same seed and input give the same output bytes.")
    tokenizer: str | None = opt(None, short="-t", help=TOKENIZER_HELP)
    length_of: str = opt("thought", choices=SECTIONS, help="What --bins measure: thought (the paper bins by thought "
                         "length), solution, or response (the whole rendered response).")
    allow_short: bool = opt(False, help="When a group has fewer records than asked, take them all (warns) instead "
                            "of failing.")
    report: str | None = opt(None, path=True, help="Also write what was selected and why (seed, bins, counts) as "
                             "JSON here.")
    progress: bool = opt(True, help="Progress bar while tokenizing.")


@dataclass
class ValidateConfig:
    """`virgo data validate`."""

    path: str = opt(positional=True, path=True, help=INPUT_HELP)
    format: str | None = opt(None, short="-f", help="Input format (default: from the name and "
                             "first row).")
    record_type: str = opt("auto", aliases=["type"], choices=RECORD_TYPES, help="Record type of a virgo JSONL file: "
                           "example (long-thought or generic response), problem, generation, grade, or auto (told "
                           "from each row's fields; a row that fits none is an 'unknown record type' error).")
    out: str | None = opt(None, short="-o", path=True, help="Write the good records here.")
    to: str | None = opt(None, help="Format of --out (default: the input's, or what the name says).")
    rejects: str | None = opt(None, path=True, help="Write the bad records here exactly as they were in the input "
                              "(raw lines; a JSON array for a JSON-array input).")
    images: bool = opt(True, help="Check that every image exists and decodes (PIL verify + load).")
    progress: bool = opt(True, help="Progress bar while checking.")


@dataclass
class DecontaminateConfig:
    """`virgo data decontaminate`."""

    train: str = opt(positional=True, path=True, help="Training data to check: " + INPUT_HELP)
    against: list[str] = opt(help="A benchmark: NAME=DATA_DIR (a registered benchmark and its folder, e.g. "
                             "mathvision=../shared/data/mathvision), NAME:SPLIT=DATA_DIR, or a Problem JSONL file. "
                             "Repeatable.")
    ngram: int = opt(13, ge=1, help="Word n-gram length: a training record sharing one n-gram with a benchmark item "
                     "overlaps it (13 as s1; open-r1's script defaults to 8).")
    min_words: int = opt(8, ge=1, help="A benchmark item shorter than --ngram words is matched whole when it has at "
                         "least this many words.")
    fields: str = opt("question", choices=["question", "all"], help="What of a training record is compared: its "
                      "question, or all (question and response).")
    format: str | None = opt(None, short="-f", help="Input format (default: from the name and first row).")
    out: str | None = opt(None, short="-o", path=True, help="Filtered copy without the overlapping records (default: "
                          "TRAIN's name + .decontaminated, same format).")
    report: str | None = opt(None, path=True, help="JSON report of every overlap (a readable .md beside it; "
                             "default: the filtered file's name + .decontamination.json).")
