"""Thought analytics shared by ``virgo data stats`` and the evaluation report: reflection phrases, token lengths.

Reflection phrases ("wait", "alternatively", "let me verify", ...) come from one lexicon file,
``templates/lexicon/reflection.txt``; a caller can pass its own list or file. Token lengths use a real
tokenizer when given one (a ``tokenizer.json``, a model directory, a loaded tokenizer or processor) and
otherwise an approximate count (words and punctuation marks) whose label says so, so a number in a report
never pretends to be model tokens when it is not.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from virgo.records import LongThoughtExample, SFTExample
from virgo.thought import Status, parse_response

# --------------------------------------------------------------------------------------------- reflection lexicon

DEFAULT_LEXICON = "reflection"


def _lexicon_dir() -> Path:
    return Path(str(resources.files("virgo") / "templates" / "lexicon"))


def load_lexicon(name_or_path: str | Path = DEFAULT_LEXICON) -> tuple[str, ...]:
    """Phrases of a lexicon file (one per line, ``#`` comments), by packaged name or by path."""
    p = Path(name_or_path)
    if not p.is_file():
        p = _lexicon_dir() / f"{name_or_path}.txt"
        if not p.is_file():
            known = ", ".join(sorted(q.stem for q in _lexicon_dir().glob("*.txt")))
            raise ValueError(f"unknown lexicon {str(name_or_path)!r}; known: {known} (or a path to a text file)")
    phrases: list[str] = []
    for line in p.read_text(encoding="utf-8").splitlines():
        phrase = line.split("#", 1)[0].strip().lower()
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    if not phrases:
        raise ValueError(f"{p}: the lexicon has no phrases")
    return tuple(phrases)


REFLECTION_LEXICON: tuple[str, ...] = load_lexicon()


@lru_cache(maxsize=64)
def reflection_patterns(lexicon: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    out = []
    for phrase in lexicon:
        words = [re.escape(w) for w in re.split(r"[\s\-]+", phrase) if w]
        # Word boundaries on both ends ("wait" is not "awaits"); any spaces/hyphens between words.
        out.append((phrase, re.compile(r"(?<!\w)" + r"[\s\-]+".join(words) + r"(?!\w)", re.IGNORECASE)))
    return tuple(out)


def count_reflections(text: str, lexicon: Sequence[str] | None = None) -> dict[str, int]:
    """Occurrences of each lexicon phrase in ``text`` (every phrase present, zeros included, lexicon order)."""
    lex = REFLECTION_LEXICON if lexicon is None else tuple(p.lower() for p in lexicon)
    return {phrase: len(pat.findall(text)) for phrase, pat in reflection_patterns(lex)}


# ------------------------------------------------------------------------------------------------- token lengths

_APPROX = re.compile(r"\w+|[^\w\s]")
APPROX_LABEL = "approx (words + punctuation marks; not model tokens, pass a tokenizer for those)"


@dataclass
class TokenCounter:
    """Counts tokens of many texts at once; ``label`` says which tokenizer (or the approximation) it is."""

    label: str
    _impl: Any = None  # a tokenizers.Tokenizer, a transformers tokenizer, or None for the approximation

    def count(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> list[int]:
        if self._impl is None:
            return [len(_APPROX.findall(t)) for t in texts]
        out: list[int] = []
        batches = range(0, len(texts), batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="tokenizing", unit="batch", disable=None)
        for i in batches:
            batch = list(texts[i:i + batch_size])
            if hasattr(self._impl, "encode_batch"):  # tokenizers.Tokenizer
                out += [len(e.ids) for e in self._impl.encode_batch(batch, add_special_tokens=False)]
            else:  # a transformers tokenizer
                out += [len(ids) for ids in self._impl(batch, add_special_tokens=False)["input_ids"]]
        return out


def load_tokenizer(tokenizer: Any = None) -> TokenCounter:
    """A TokenCounter from None (the labelled approximation), a path, or a loaded tokenizer/processor.

    A path may be a ``tokenizer.json`` file or a model directory holding one (read with the ``tokenizers``
    library: same ids as the fast transformers tokenizer, without importing transformers), or anything
    ``AutoTokenizer.from_pretrained`` accepts (local files only).
    """
    if isinstance(tokenizer, TokenCounter):
        return tokenizer
    if tokenizer is None or (isinstance(tokenizer, str) and tokenizer in ("", "approx")):
        return TokenCounter(APPROX_LABEL)
    if isinstance(tokenizer, (str, Path)):
        p = Path(tokenizer)
        tj = p if p.is_file() else p / "tokenizer.json"
        if tj.is_file() and tj.suffix == ".json":
            from tokenizers import Tokenizer

            return TokenCounter(f"tokenizer {p}", Tokenizer.from_file(str(tj)))
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such tokenizer file or directory")
        from transformers import AutoTokenizer

        return TokenCounter(f"tokenizer {p}", AutoTokenizer.from_pretrained(str(p), local_files_only=True))
    impl = getattr(tokenizer, "tokenizer", tokenizer)  # a processor carries its tokenizer
    return TokenCounter(f"tokenizer {getattr(impl, 'name_or_path', type(impl).__name__)}", impl)


def token_lengths(texts: Iterable[str], tokenizer: Any = None, *, progress: bool = False) -> list[int]:
    """Token count of each text (see ``load_tokenizer`` for what ``tokenizer`` may be)."""
    return load_tokenizer(tokenizer).count(list(texts), progress=progress)


# --------------------------------------------------------------------------------------------------- percentiles

def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (an actual value of the data, like the eval's p90); None when empty."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))]


def length_summary(values: Sequence[float]) -> dict[str, Any]:
    """count, mean, min, p50, p90, p99, max of lengths (None values when empty)."""
    s = sorted(values)
    return {"count": len(s), "mean": statistics.fmean(s) if s else None, "min": s[0] if s else None,
            "p50": percentile(s, 50), "p90": percentile(s, 90), "p99": percentile(s, 99),
            "max": s[-1] if s else None}


# ------------------------------------------------------------------------------------------- sections of a record

@dataclass(frozen=True)
class Sections:
    """The thought and solution of a training record, and how complete its response is."""

    status: Status
    thought: str | None
    solution: str | None


def sections(rec: LongThoughtExample | SFTExample) -> Sections:
    """A long-thought record is complete by construction; a generic response is parsed (and classified)."""
    if isinstance(rec, LongThoughtExample):
        return Sections(Status.COMPLETE, rec.thought, rec.solution)
    p = parse_response(rec.response)
    return Sections(p.status, p.thought, p.solution)


SECTIONS = ("thought", "solution", "response")


def section_lengths(records: Sequence[LongThoughtExample | SFTExample], which: str, tokenizer: Any = None, *,
                    progress: bool = False) -> list[int | None]:
    """Token length of each record's thought, solution or whole response; None where the record has no such part."""
    if which not in SECTIONS:
        raise ValueError(f"unknown section {which!r}; one of {SECTIONS}")
    texts = [r.response if which == "response" else getattr(sections(r), which) for r in records]
    idx = [i for i, t in enumerate(texts) if t is not None]
    counts = load_tokenizer(tokenizer).count([texts[i] for i in idx], progress=progress)
    out: list[int | None] = [None] * len(records)
    for i, c in zip(idx, counts):
        out[i] = c
    return out

