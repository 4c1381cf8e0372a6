"""``virgo data select``: seeded, reproducible subsets by thought length, count and domain.

The paper's ablations are subsets of the textual long-thought data: Table 4 by thought length in tokens,
(0,2000], (2000,4000], (4000,8000]; Table 5 by size, 1K/3K/5K. How the authors drew them is not published,
so this draws uniformly at random with a seed, and says exactly what it did::

    virgo data select train.jsonl -o len_2k-4k.jsonl --bins 2000-4000 --n 1000 --tokenizer Qwen2-VL-7B/
    virgo data select train.jsonl -o n1k.jsonl --n 1000 --seed 0
    virgo data select train.jsonl -o mix.jsonl --n 1000 --quota math=0.7,science=0.2,*=0.1

Selection is a seeded shuffle of each group (all candidates, one bin, or one domain) followed by taking a
prefix, so with one seed the subsets are nested: the ``--n 1000`` records are among the ``--n 3000`` ones, as
a data-scaling ablation wants. The output keeps the input order.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

OTHER = "*"  # quota key for every domain not named
NO_DOMAIN = "none"  # quota key for records without a domain

Bin = tuple[float, float]


def parse_bins(text: str) -> list[Bin]:
    """``"0-2000,2000-4000,8000-"`` -> [(0, 2000), (2000, 4000), (8000, inf)]; each bin is half-open (lo, hi]."""
    bins: list[Bin] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo_s, sep, hi_s = part.partition("-")
        try:
            if not sep:
                raise ValueError
            lo = float(lo_s)
            hi = math.inf if hi_s.strip().lower() in ("", "inf") else float(hi_s)
        except ValueError:
            raise ValueError(f"bad bin {part!r}: write LO-HI in tokens, e.g. 0-2000 (meaning (0, 2000]), "
                             f"or LO- for no upper bound") from None
        if not 0 <= lo < hi:
            raise ValueError(f"bad bin {part!r}: need 0 <= LO < HI")
        bins.append((lo, hi))
    if not bins:
        raise ValueError("no bins given")
    ordered = sorted(bins)
    for (_, hi1), (lo2, _) in itertools.pairwise(ordered):
        if lo2 < hi1:
            raise ValueError(f"bins overlap: {format_bins(ordered)}")
    return bins


def bin_label(b: Bin) -> str:
    lo, hi = (int(x) if x != math.inf and float(x).is_integer() else x for x in b)
    return f"({lo}, {hi}]" if hi != math.inf else f"> {lo}"


def format_bins(bins: Sequence[Bin]) -> str:
    return ", ".join(bin_label(b) for b in bins)


def bin_of(length: float | None, bins: Sequence[Bin]) -> int | None:
    """Index of the bin (lo, hi] holding ``length``; None when it is in none (or there is no length)."""
    if length is None:
        return None
    for i, (lo, hi) in enumerate(bins):
        if lo < length <= hi:
            return i
    return None


def domain_key(domain: str | None) -> str:
    return domain if domain else NO_DOMAIN


def parse_quota(text: str) -> dict[str, float]:
    """``"math=0.5,physics=0.3,*=0.2"`` (shares of --n) or ``"math=300,physics=100"`` (counts), or a mix."""
    quota: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip()
        try:
            if not sep or not key:
                raise ValueError
            v = float(value) if "." in value else int(value)
        except ValueError:
            raise ValueError(f"bad quota {part!r}: write DOMAIN=SHARE (0.5) or DOMAIN=COUNT (300); "
                             f"'{OTHER}' is every other domain, '{NO_DOMAIN}' records without one") from None
        if v < 0 or (isinstance(v, float) and v > 1):
            raise ValueError(f"bad quota {part!r}: a share is in [0, 1], a count is >= 0")
        if key in quota:
            raise ValueError(f"domain {key!r} given twice in the quota")
        quota[key] = v
    if not quota:
        raise ValueError("empty quota")
    shares = sum(v for v in quota.values() if isinstance(v, float))
    if shares > 1 + 1e-9:
        raise ValueError(f"quota shares add up to {shares:g} > 1")
    return quota


def quota_counts(quota: dict[str, float], n: int | None) -> dict[str, int]:
    """Counts per quota key: shares of ``n`` by largest remainder (they add up exactly), counts as given."""
    shares = {k: v for k, v in quota.items() if isinstance(v, float)}
    if shares and n is None:
        raise ValueError("quota shares need --n (the total they are shares of)")
    counts = {k: int(v) for k, v in quota.items() if not isinstance(v, float)}
    if shares:
        exact = {k: v * n for k, v in shares.items()}
        floors = {k: math.floor(x) for k, x in exact.items()}
        left = round(sum(exact.values())) - sum(floors.values())
        for k in sorted(exact, key=lambda k: (-(exact[k] - floors[k]), k))[:left]:
            floors[k] += 1
        counts.update(floors)
    return {k: counts[k] for k in quota}


@dataclass
class Selection:
    indices: list[int]  # into the input, ascending
    groups: list[dict[str, Any]] = field(default_factory=list)  # per group: name, available, wanted, selected
    excluded: dict[str, int] = field(default_factory=dict)  # why candidates were left out before sampling
    warnings: list[str] = field(default_factory=list)


def select(domains: Sequence[str | None], *, lengths: Sequence[float | None] | None = None,
           bins: Sequence[Bin] | None = None, n: int | None = None, per_bin: int | None = None,
           quota: dict[str, float] | None = None, seed: int = 0, allow_short: bool = False) -> Selection:
    """Pick record indices. ``domains`` (and ``lengths`` when binning) are per record, in input order.

    bins keep the records whose length falls in one of them; then either ``per_bin`` records from each bin,
    ``quota`` counts per domain, or ``n`` records overall (all of them when nothing is given).
    """
    if per_bin is not None and quota is not None:
        raise ValueError("give either --per-bin or --quota, not both")
    if per_bin is not None and not bins:
        raise ValueError("--per-bin needs --bins")
    if per_bin is not None and n is not None:
        raise ValueError("give either --per-bin (records per bin) or --n (records overall), not both")
    pool = list(range(len(domains)))
    excluded: dict[str, int] = {}
    bin_idx: dict[int, int] = {}
    if bins:
        if lengths is None:
            raise ValueError("binning needs lengths")
        for i in pool:
            b = bin_of(lengths[i], bins)
            if b is not None:
                bin_idx[i] = b
        no_len = sum(1 for i in pool if lengths[i] is None)
        if no_len:
            excluded["no thought (no length)"] = no_len
        outside = len(pool) - len(bin_idx) - no_len
        if outside:
            excluded[f"length outside {format_bins(bins)}"] = outside
        pool = [i for i in pool if i in bin_idx]

    groups: list[tuple[str, list[int], int | None]] = []  # (name, candidates, wanted or None for all)
    if per_bin is not None:
        assert bins is not None
        for b, bounds in enumerate(bins):
            groups.append((bin_label(bounds), [i for i in pool if bin_idx[i] == b], per_bin))
    elif quota is not None:
        counts = quota_counts(quota, n)
        named = set(counts) - {OTHER}
        for key, wanted in counts.items():
            if key == OTHER:
                cands = [i for i in pool if domain_key(domains[i]) not in named]
            else:
                cands = [i for i in pool if domain_key(domains[i]) == key]
            groups.append((key, cands, wanted))
        left_out = sum(1 for i in pool if domain_key(domains[i]) not in named) if OTHER not in counts else 0
        if left_out:
            excluded["domain not in the quota"] = left_out
    else:
        groups.append(("all", pool, n))

    rng = random.Random(seed)
    chosen: list[int] = []
    report = []
    warnings = []
    for name, cands, wanted in groups:
        order = sorted(cands)
        rng.shuffle(order)  # one shuffle per group, in a fixed group order: prefixes are nested across --n
        k = len(order) if wanted is None else wanted
        if k > len(order):
            msg = f"{name}: {k} wanted but only {len(order)} available"
            if not allow_short:
                raise ValueError(msg + " (pass --allow-short to take them all)")
            warnings.append(msg)
            k = len(order)
        chosen += order[:k]
        report.append({"group": name, "available": len(order), "wanted": wanted, "selected": k})
    return Selection(sorted(chosen), report, excluded, warnings)


def domain_counts(domains: Sequence[str | None], indices: Sequence[int]) -> dict[str, int]:
    return dict(Counter(domain_key(domains[i]) for i in indices).most_common())
