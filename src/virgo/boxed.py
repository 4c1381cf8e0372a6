"""Find ``\\boxed{...}`` / ``\\fbox{...}`` contents with nested braces.

One brace-matching scanner for the whole project (the thought parser and the grader both use it).
It is a linear scan with a depth counter, never recursion and never a regex over nested braces,
so 10,000 nested braces or a multi-megabyte response cost one pass.
"""

from __future__ import annotations

import re

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE = re.compile(r"\\[{}]|[{}]")


def _match_brace(text: str, open_index: int) -> int | None:
    """Index of the brace closing the one at ``open_index`` (a ``{``), or None if never closed.

    The regex only stops at braces (an escaped brace \\{ or \\} is content, not structure), so the text between
    them is skipped at C speed.
    """
    depth = 0
    for m in _BRACE.finditer(text, open_index):
        token = m.group()
        if len(token) == 2:
            continue
        if token == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return m.start()
    return None


def scan_boxes(text: str) -> tuple[list[tuple[int, int]], int | None]:
    """(spans of every closed box's content, outermost only, in order; start of a box that never closes or None).

    An unclosed box swallows the rest of the text: nothing after it can be a complete box, and a response whose
    last box never closes was cut inside its final answer.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        m = _BOX_RE.search(text, pos)
        if m is None:
            return spans, None
        open_index = m.end() - 1
        close = _match_brace(text, open_index)
        if close is None:
            return spans, m.start()
        spans.append((open_index + 1, close))
        pos = close + 1


def boxed_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of every closed ``\\boxed{}``/``\\fbox{}`` content, outermost only, in order."""
    return scan_boxes(text)[0]


def unclosed_box(text: str) -> bool:
    """Whether ``text`` holds a box that never closes (``\\boxed{12`` at the end of a cut-off response)."""
    return scan_boxes(text)[1] is not None


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
