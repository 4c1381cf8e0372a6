"""What each extraction rule looks for (the functions behind ``virgo.grade.rules``).

A finder gets the ``Region`` (the answer region, normalised, its tail, its closed boxes and the item) and returns
a ``Found`` (the answer, and its parts when it has several) or None. Every regex is linear, and the fallback
finders read only the tail of the region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from virgo.grade.choices import letter_of, mentioned_option, option_word_letter
from virgo.grade.norm import clean, dedupe, key, normalize, split_answers
from virgo.grade.profiles import Profile
from virgo.grade.statements import MATH_SPAN, display_value, final_statement, last_lines, trim_value, value_after
from virgo.records import Problem

TAIL_CHARS = 3000  # the fallback rules read only the end of the answer region
WHOLE_MAX_CHARS = 120  # a region this short and on one line is itself the answer
MAX_GROUP = 10  # boxes read as one answer ("x = \\boxed{1}, y = \\boxed{2}, ...")


@dataclass
class Region:
    """The answer region of one response, read once for every rule."""

    text: str
    problem: Problem
    profile: Profile
    boxes: list[tuple[int, int]]  # (start of "\\boxed", end of content) of every closed, non-empty box
    contents: list[str]  # their contents
    multi: bool = False  # several answers required (meta is_multiple_answer)
    prose_gold: bool = False  # the gold is a word or phrase
    letters: str = ""  # option letters of a multiple-choice item ("" otherwise)
    tail: str = field(init=False)

    def __post_init__(self) -> None:
        self.tail = normalize(self.text[-TAIL_CHARS:])


@dataclass(frozen=True)
class Found:
    answer: str
    parts: tuple[str, ...] = ()


# --- boxes ----------------------------------------------------------------------------------------------------

# Text between two boxes of one answer: separators, "and"/"or", spacing, and the next box's label ("y =").
_GLUE = re.compile(r"(?:[\s,;&$]|\\(?:quad|qquad|[,;: ])|\\text\s*\{\s*(?:and|or|,)?\s*\}|\b(?:and|or)\b)*"
                   r"(?:(?P<label>[A-Za-z\\][A-Za-z0-9_{}\\^' ]{0,30}?)\s*=\s*)?\$?\s*")
_LABEL = re.compile(r"(?P<label>[A-Za-z\\][A-Za-z0-9_{}\\^' ]{0,30}?)\s*=\s*\$?\s*$")


def boxed(r: Region) -> Found | None:
    """The last box; the boxes of one final statement together ("x=\\boxed{2}, y=\\boxed{3}" -> "x = 2, y = 3");
    every box for a multi-answer item."""
    if not r.contents:
        return None
    if r.multi:
        # Every part of every box, repeats included ("a = \\boxed{-2}, b = \\boxed{-2}"); the answer text holds
        # each distinct box once, which equivalence uses when that makes the count right (a final answer boxed
        # twice).
        parts = [p for b in r.contents for p in split_answers(b)]
        distinct = [p for b in dedupe(r.contents) for p in split_answers(b)]
        return Found(", ".join(distinct), tuple(parts))
    group = [len(r.contents) - 1]
    labels: list[str | None] = [None]
    while group[0] > 0 and len(group) < MAX_GROUP:
        i = group[0]
        glue = normalize(r.text[r.boxes[i - 1][1] + 1:r.boxes[i][0]])
        m = _GLUE.fullmatch(glue) if len(glue) <= 60 else None
        if m is None:
            break
        labels[0] = m.group("label")
        group.insert(0, i - 1)
        labels.insert(0, None)
    line_start = r.text.rfind("\n", 0, r.boxes[group[0]][0]) + 1
    first = _LABEL.search(r.text[max(line_start, r.boxes[group[0]][0] - 80):r.boxes[group[0]][0]])
    labels[0] = first.group("label") if first else None
    contents = [r.contents[i] for i in group]
    if len(group) == 1 or len({key(c) for c in contents}) == 1:
        return Found(contents[-1])
    if all(labels):
        joined = [f"{label.strip()} = {c}" for label, c in zip(labels, contents)]
    else:
        joined = contents
    return Found(", ".join(joined), tuple(joined))


# --- "the answer is" -----------------------------------------------------------------------------------------

_ANSWER_IS = re.compile(
    r"(?:final\s+answers?|correct\s+answer|(?:final|correct)\s+(?:result|option|choice)|\banswer|\bfinal\s+result)"
    r"\s*\**\s*"
    r"(?:is|should\s+be|would\s+be|will\s+be|[:：=])\s*(?:is\s*)?[:：]?"
    r"|\b(?:the|final)\s+(?:answers|options|choices)\s+are\b\s*:?"  # not "points from correct answers are"
    r"|\*\*\s*final\s+answers?\s*:?\s*\**\s*:?|final\s+answers?\s*\n"
    r"|答案(?:是|为|：|:)",
    re.IGNORECASE,
)
# What follows "the answer is" when it is not an answer ("the answer is correct").
_NOT_ANSWERS = {"correct", "incorrect", "right", "wrong", "consistent", "confirmed", "verified", "valid", "invalid",
                "as follows", "below", "above", "clear", "obvious", "not", "unclear", "that", "this", "yes, correct"}


# The words every anchor holds: the anchor regex only runs around them (it is slow to try at every character).
_ANCHOR_WORD = re.compile(r"answer|result|option|choice|答案", re.IGNORECASE)


def _anchors(tail: str):
    """The "answer is" anchors of ``tail``, last first."""
    seen = len(tail) + 1
    for w in reversed(list(_ANCHOR_WORD.finditer(tail))):
        window = list(_ANSWER_IS.finditer(tail, max(0, w.start() - 24), min(len(tail), w.end() + 40)))
        for m in reversed(window):
            if m.start() <= w.start() < m.end() and m.start() < seen:
                seen = m.start()
                yield m


def answer_is(r: Region) -> Found | None:
    """The value after the last "answer is"-style anchor that has one."""
    for m in _anchors(r.tail):
        v = value_after(r.tail, m.end())
        if v and v.lower() not in _NOT_ANSWERS:
            return Found(trim_value(v))
    return None


# --- a list of sub-answers ---------------------------------------------------------------------------------

_HEADING = re.compile(r"(?:^|\n)[ \t]*(?:#+[ \t]*)?(?:\*\*)?[ \t]*final[ \t]+answers?[ \t]*(?:\*\*)?[ \t]*:?[ \t]*"
                      r"(?:\*\*)?[ \t]*(?=\n)", re.IGNORECASE)
_ITEM = re.compile(r"^[ \t]*(?:\*\*)?[ \t]*(?:[-*•]|\d{1,2}[.)]|\(?[a-hA-H]\)|(?:part|step)\s+\(?[a-h1-9]\)?[.:]?)"
                   r"(?:\*\*)?[ \t]+(?P<body>.+)$", re.IGNORECASE | re.MULTILINE)


def _item_value(body: str) -> str | None:
    value = final_statement(body.replace("**", ""))
    if value:
        return value
    c = clean(body)
    return c if c and len(c) <= 60 and re.search(r"\d|\\[a-zA-Z]", c) else None


def answer_list(r: Region) -> Found | None:
    """Sub-answers listed under a "Final Answer(s)" heading (or, for a multi-answer item, closing the response):
    every item's value; a single-answer item takes the last one (often the bold one)."""
    headings = list(_HEADING.finditer(r.tail)) if "final" in r.tail.lower() else []
    if not headings and not r.multi:
        return None
    block = r.tail[headings[-1].end():] if headings else r.tail[-1500:]
    lines = [ln for ln in block.strip().split("\n") if ln.strip()]
    matches = [_ITEM.match(ln) for ln in lines]
    if headings:  # the first run of items under the heading
        start = next((i for i, m in enumerate(matches) if m), len(matches))
        end = next((i for i in range(start, len(matches)) if not matches[i]), len(matches))
    else:  # the run of items that closes the response
        end = len(matches)
        start = end
        while start > 0 and matches[start - 1]:
            start -= 1
    items = [m.group("body") for m in matches[start:end]]
    values = [v for v in (_item_value(b) for b in items) if v]
    if len(values) < 2 or len(values) != len(items):
        return None
    if r.multi:
        return Found(", ".join(values), tuple(values))
    return Found(values[-1])


# --- the whole region, final statements, display equations -----------------------------------------------

# Words of prose (outside math): three of them make a sentence, not a bare answer ("I am not sure").
_PROSE_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")


def whole(r: Region) -> Found | None:
    """A region that is itself the answer: one short line ("42", "(B)", "x = 5", "Bugs Bunny"). A sentence
    counts only for an item whose gold answer is a word or phrase; otherwise "So the product is 42." is left to
    the final-statement rule and "I am not sure." is no answer."""
    s = r.text.strip()
    if "\n" in s or len(s) > WHOLE_MAX_CHARS:
        return None
    s = normalize(s)
    if not (r.prose_gold and not r.letters) and len(_PROSE_WORD.findall(MATH_SPAN.sub(" ", s))) >= 3:
        return None
    c = clean(s)
    return Found(c) if c else None


def statement(r: Region) -> Found | None:
    value = final_statement(r.tail)
    return Found(value) if value else None


def display(r: Region) -> Found | None:
    value = display_value(r.tail)
    return Found(value) if value else None


# --- multiple choice ---------------------------------------------------------------------------------------

_PAREN_LETTER = re.compile(r"\(([A-Z])\)")


def letter_line(r: Region) -> Found | None:
    """A closing line that names an option: "(B)", "B: 40°", "Option B", "... are in picture (B)."."""
    for line in last_lines(r.tail):
        line = line.replace("**", "")  # "which is option **A**": bold marks the letter
        letter = letter_of(line, r.letters) or option_word_letter(line, r.letters)
        named = {x for x in _PAREN_LETTER.findall(line) if x in r.letters}
        if letter is None and len(named) == 1:
            letter = named.pop()
        if letter:
            return Found(letter)
    return None


def option_mention(r: Region) -> Found | None:
    """(MMMU) exactly one option's text named in the last paragraph."""
    paragraph = r.tail.strip().rsplit("\n\n", 1)[-1]
    letter = mentioned_option(paragraph, r.problem.choices)
    return Found(letter) if letter else None
