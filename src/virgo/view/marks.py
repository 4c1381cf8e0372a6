"""Where to mark a thought: its reflection phrases, and the points where the thinking budget or a forced "Wait"
intervened.

Reflection phrases are found with the patterns of `virgo.data.analytics` (the lexicon file
``templates/lexicon/reflection.txt``), so the page highlights exactly what `virgo data stats` and the eval report
count. Offsets are sent to the page in UTF-16 code units, the unit of JavaScript strings.

Interventions (`virgo.infer.budget`):

- the **budget cap** closes the thought when it reaches ``thinking_budget`` tokens, so when a generation says
  ``extra.budget_forced`` the intervention is exactly the end of its thought;
- a **forced "Wait"** replaces an early end of thought by ``WAIT_TEXT``. A generation that recorded where
  (``extra.interventions``: ``[{"kind": "wait" | "budget", "offset": N}]``, character offsets into ``text``) is
  marked exactly. Older records carry only the count (``extra.waits``): then every standalone "Wait" of the thought
  is marked as a candidate, and the page says that the positions were not recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from virgo.data.analytics import REFLECTION_LEXICON, reflection_patterns  # one place for the lexicon's patterns
from virgo.infer.budget import WAIT_TEXT
from virgo.records import Generation

_WAIT = re.compile(r"(?<!\w)" + re.escape(WAIT_TEXT) + r"(?!\w)")


@dataclass(frozen=True)
class Intervention:
    offset: int  # code points into the thought
    kind: str  # "budget" | "wait"
    exact: bool  # recorded at generation time (or implied exactly, as the budget close), not guessed


_BEFORE, _AFTER = r"(?<!\w)", r"(?!\w)"


@lru_cache(maxsize=1)
def _combined() -> re.Pattern[str] | None:
    """The lexicon's patterns as one alternation, scanned once per thought (several times faster than one scan per
    phrase); None if their shape is not the word-bounded one this relies on (then each is scanned)."""
    pats = [p for _, p in reflection_patterns(REFLECTION_LEXICON)]
    if not all(p.pattern.startswith(_BEFORE) and p.pattern.endswith(_AFTER) and p.flags & re.IGNORECASE
               for p in pats):
        return None
    inner = "|".join(p.pattern[len(_BEFORE):-len(_AFTER)] for p in pats)
    return re.compile(f"{_BEFORE}(?:{inner}){_AFTER}", re.IGNORECASE)


def reflection_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every reflection phrase in ``text``, in order, overlaps dropped (code-point offsets)."""
    combined = _combined()
    if combined is not None:
        found = [m.span() for m in combined.finditer(text)]
    else:
        found = [m.span() for _, pat in reflection_patterns(REFLECTION_LEXICON) for m in pat.finditer(text)]
    spans = sorted(found)
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if not out or s >= out[-1][1]:
            out.append((s, e))
    return out


def thought_start(gen: Generation) -> int | None:
    """Where ``gen.thought`` begins inside ``gen.text`` (the parser strips whitespace around it), or None."""
    if gen.thought is None or not gen.thought:
        return None
    at = gen.text.find(gen.thought)
    return at if at >= 0 else None


def interventions(gen: Generation) -> list[Intervention]:
    """The budget and "Wait" interventions inside the thought of ``gen``, in order."""
    thought = gen.thought
    if not thought:
        return []
    extra = gen.extra or {}
    out: list[Intervention] = []
    recorded = extra.get("interventions")
    if isinstance(recorded, list) and recorded:  # empty: a backend that records none; guess from the counts
        start = thought_start(gen)
        for r in recorded:
            if not isinstance(r, dict) or r.get("kind") not in ("wait", "budget") or start is None:
                continue
            off = r.get("offset")
            if isinstance(off, int) and not isinstance(off, bool) and start <= off <= start + len(thought):
                out.append(Intervention(off - start, r["kind"], True))
        return sorted(out, key=lambda i: i.offset)
    waits = extra.get("waits")
    if isinstance(waits, int) and not isinstance(waits, bool) and waits > 0:
        out += [Intervention(m.start(), "wait", False) for m in _WAIT.finditer(thought)]
    if extra.get("budget_forced") is True:
        out.append(Intervention(len(thought), "budget", True))
    return out


def utf16_offsets(text: str, offsets: list[int]) -> list[int]:
    """Code-point offsets into ``text`` as UTF-16 offsets (characters beyond U+FFFF count twice in JavaScript)."""
    if text.isascii() or all(ord(c) <= 0xFFFF for c in text):
        return list(offsets)
    order = sorted(range(len(offsets)), key=lambda i: offsets[i])
    out = [0] * len(offsets)
    extra, pos = 0, 0
    for i in order:
        target = offsets[i]
        extra += sum(1 for c in text[pos:target] if ord(c) > 0xFFFF)
        pos = max(pos, target)
        out[i] = target + extra
    return out


def thought_marks(gen: Generation) -> dict:
    """The page's marks for one thought: ``r`` = [[start, end], ...] reflection spans and ``iv`` =
    [[offset, kind, exact], ...] interventions, both in UTF-16 offsets."""
    thought = gen.thought or ""
    spans = reflection_spans(thought)
    ivs = interventions(gen)
    flat = utf16_offsets(thought, [x for s in spans for x in s] + [i.offset for i in ivs])
    r = [[flat[2 * k], flat[2 * k + 1]] for k in range(len(spans))]
    iv = [[flat[2 * len(spans) + k], i.kind, int(i.exact)] for k, i in enumerate(ivs)]
    return {"r": r, "iv": iv}
