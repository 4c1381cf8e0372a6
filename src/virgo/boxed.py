"""Find ``\\boxed{...}`` / ``\\fbox{...}`` contents with nested braces.

One brace-matching scanner for the whole project (the thought parser and the grader both use it).
It is a linear scan with a depth counter, never recursion and never a regex over nested braces,
so 10,000 nested braces or a multi-megabyte response cost one pass.
"""

from __future__ import annotations

import re

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _match_brace(text: str, open_index: int) -> int | None:
    """Index of the brace closing the one at ``open_index`` (a ``{``), or None if never closed."""
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "{}":
            i += 2  # an escaped brace \{ or \} is content, not structure
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def boxed_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of every closed ``\\boxed{}``/``\\fbox{}`` content, outermost only, in order."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        m = _BOX_RE.search(text, pos)
        if m is None:
            return spans
        open_index = m.end() - 1
        close = _match_brace(text, open_index)
        if close is None:
            # An unclosed box swallows the rest of the text: nothing after it can be a complete box.
            return spans
        spans.append((open_index + 1, close))
        pos = close + 1


def boxed_contents(text: str) -> list[str]:
    """Contents of every closed box, outermost only, in order of appearance."""
    return [text[a:b].strip() for a, b in boxed_spans(text)]


def last_boxed(text: str) -> str | None:
    """Content of the last closed box, or None."""
    found = boxed_spans(text)
    if not found:
        return None
    a, b = found[-1]
    return text[a:b].strip()
