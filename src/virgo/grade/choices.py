"""Multiple-choice letters in their usual spellings, and option texts.

"B", "(B)", "B:", "B.", "B) 40°", "Option B", "choice (B)", "**B**", "\\text{B}", "\\textbf{(B)}" all name
option B; a lone capital that is not one of the item's letters does not. A lowercase letter ("b", "(b)")
names an option only where the text is nothing but the answer (a box, "Answer: b", the whole response) or
after "option"/"choice": in prose "a" is a word.
"""

from __future__ import annotations

import re

from virgo.grade.norm import clean, key

_LETTER_HEAD = re.compile(
    r"^(?:(?:the\s+)?(?:correct\s+)?(?:option|choice|answer)\s*(?:is\s*)?[:：]?\s*)?"  # "Option", "choice:"
    r"[(\[]?\s*([A-Z])\s*[)\]]?"  # B, (B), [B]
    r"(?=$|\s*[.:：)\]]|\s*,|\s+(?:is\b|\(|[-–—]))",  # then the end, punctuation, "is", "(...)" or a dash
    re.IGNORECASE,
)
_OPTION_WORD = re.compile(r"\b(?:option|choice)\s*[:：]?\s*[(\[]?\s*([A-Z])\b\s*[)\]]?", re.IGNORECASE)
_LONE_LOWERCASE = re.compile(r"[(\[]?\s*([a-z])\s*[)\]]?\s*[.:：]?")  # "b", "(b)", "[b]", "b:"


def letter_of(text: str, letters: str, *, whole_answer: bool = False) -> str | None:
    """The option letter that ``text`` starts with ("(B) 40°" -> "B"), if it is one of ``letters``.

    ``whole_answer``: ``text`` is an answer on its own (a box's content, what follows "Answer:", the whole
    response), so a lowercase letter that is all of it names an option too ("b", "(b)").
    """
    s = clean(text)
    lone = _LONE_LOWERCASE.fullmatch(s) if whole_answer else None
    if lone is not None:
        return lone.group(1).upper() if lone.group(1).upper() in letters else None
    m = _LETTER_HEAD.match(s)
    if m is None:
        return None
    letter = m.group(1)
    # A lowercase letter is a word ("a triangle"), except after an explicit "option"/"choice".
    if letter.islower() and not re.match(r"(?i)\s*(?:the\s+)?(?:correct\s+)?(?:option|choice)", s):
        return None
    letter = letter.upper()
    return letter if letter in letters else None


_LETTER_LIST_SEP = re.compile(r"\s*(?:,|;|&|\band\b|\n|\s)\s*", re.IGNORECASE)
_ONE_LETTER = re.compile(r"[(\[]?([A-Z])[)\]]?")


def letters_of(text: str, letters: str) -> list[str] | None:
    """Several option letters ("C, D", "C and D", "(A) (C)", one per line): sorted, or None unless 2+."""
    parts = [p for p in _LETTER_LIST_SEP.split(text.strip().replace("\\text", "")) if p.strip("{}")]
    found = []
    for p in parts:
        m = _ONE_LETTER.fullmatch(clean(p.strip("{}")))
        if m is None or m.group(1) not in letters:
            return None
        found.append(m.group(1))
    return sorted(set(found)) if len(set(found)) >= 2 else None


def option_word_letter(text: str, letters: str) -> str | None:
    """The last "Option B" / "choice (C)" named in ``text``."""
    found = [m.group(1).upper() for m in _OPTION_WORD.finditer(text)]
    found = [f for f in found if f in letters]
    return found[-1] if found else None


def option_of(text: str, choices: list[str] | None) -> str | None:
    """The letter whose option text equals ``text`` (compared by normalised key), if exactly one does."""
    if not choices:
        return None
    k = key(text)
    if not k:
        return None
    hits = [i for i, c in enumerate(choices) if key(c) == k]
    return chr(ord("A") + hits[0]) if len(hits) == 1 else None


def mentioned_option(text: str, choices: list[str] | None) -> str | None:
    """The one option whose text appears in ``text`` (MMMU's rule, without its random fallback).

    Options shorter than 3 characters are ignored (they occur by accident); if several options are named,
    one whose text contains another's wins only when it is the single longest match.
    """
    if not choices:
        return None
    hay = key(text)
    hits = [(i, key(c)) for i, c in enumerate(choices) if len(key(c)) >= 3 and key(c) in hay]
    if not hits:
        return None
    hits = [h for h in hits if not any(h[1] != o[1] and h[1] in o[1] for o in hits)]
    return chr(ord("A") + hits[0][0]) if len(hits) == 1 else None


def gold_letter(answer: str, letters: str, choices: list[str] | None) -> str | None:
    """The gold option letter of a multiple-choice item (its answer may be a letter or the option text)."""
    s = clean(answer)
    if len(s) == 1 and s.upper() in letters:
        return s.upper()
    return letter_of(s, letters) or option_of(s, choices)
