"""Answer extraction: find the final answer in a response, and say which rule found it.

The answer region is the solution section (``virgo.thought.strip_thought``): nothing inside an
unfinished thought is ever graded, and a plain response (no markers) is used whole. Rules, strongest
first; the first that finds something wins:

``boxed``            the last ``\\boxed{}``/``\\fbox{}`` (nested braces; every box for multi-answer items)
``answer_is``        "the (final) answer is ...", "Answer: ...", "**Final Answer** ...", "答案是 ..."
``whole``            the whole region, when it is one short line that is not a sentence ("42", "(B)", "x = 5");
                     a sentence too when the gold answer is a word or phrase ("The city is Tampa.")
``letter``           (multiple choice) a line naming an option: "(B)", "B: 40°", "Option B", "**B**", "... (B)."
``option_mention``   (MMMU profile) exactly one option's text named in the last paragraph
``final_statement``  the value closing the last lines: "... is 9.", "$$\\tan A = 2$$" (the right-hand side), an
                     explicit "X is the correct answer", or the one number of a concluding sentence ("So, ...
                     would have saved 550 gallons."); lines that re-check a result are skipped, and a text that
                     stops mid-sentence states no final value

In a text cut off at the token limit (graded ``truncated`` anyway; the answer is kept for audits) or in
a solution that never closed, only the strong rules (``boxed``, ``answer_is``) count: a value picked out
of a cut-off text is not a final answer. For multiple-choice items the answer is
normalised to the option letter whenever the text names one ("\\boxed{(B) 140°}" -> "B", "\\boxed{140°}"
-> the letter of the option "140°"); otherwise the text is kept and compared with the gold option's text.
Every regex here is linear and the fallbacks only look at the last few thousand characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from virgo.boxed import boxed_contents
from virgo.grade.choices import letter_of, letters_of, mentioned_option, option_of, option_word_letter
from virgo.grade.equiv import alternatives
from virgo.grade.norm import clean, dedupe, is_text_answer, split_answers
from virgo.grade.profiles import Profile, get_profile, is_multiple_choice, valid_letters
from virgo.records import Problem
from virgo.thought import strip_thought

TAIL_CHARS = 3000  # the fallback rules read only the end of the answer region
MAX_VALUE_CHARS = 300  # longest value a fallback rule returns
WHOLE_MAX_CHARS = 120  # a region this short and on one line is itself the answer

RULES = ("boxed", "answer_is", "whole", "letter", "option_mention", "final_statement", "none")
STRONG_RULES = ("boxed", "answer_is")


@dataclass(frozen=True)
class Extraction:
    """The extracted final answer (None if none was found) and the rule that found it."""

    answer: str | None
    rule: str
    # Multi-answer items: every part of every box, repeats included, in order (``answer`` joins the distinct boxes).
    answers: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.answer is not None


NONE = Extraction(None, "none")

_ANSWER_IS = re.compile(
    r"(?:(?:final|correct)\s+(?:answer|result|option|choice)|\banswer|\bfinal\s+result)\s*\**\s*"
    r"(?:is|should\s+be|would\s+be|will\s+be|[:：=])\s*(?:is\s*)?[:：]?"
    r"|\b(?:the|final)\s+(?:answers|options|choices)\s+are\b\s*:?"  # not "points from correct answers are"
    r"|\*\*\s*final\s+answer\s*:?\s*\**\s*:?|final\s+answer\s*\n"
    r"|答案(?:是|为|：|:)",
    re.I,
)
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|\$([^$\n]+?)\$", re.S)
_FINAL_ANCHOR = re.compile(r"(?:\b(?:is|are|was|were|equals|be|gives|yields)\b|=|≈|\\approx|:)")
# A period that ends a sentence (not one after an initial or abbreviation: "S.A. = 1209.84").
_SENTENCE_END = re.compile(r"(?<=[^\s\d\\])(?<!\b[A-Z])\.(?:\s|$)|(?<!\b[A-Z])\.\s+(?=[A-Z])")
# Where a value's sentence goes on about something else: "0.35625, which is a terminating decimal".
_CLAUSE = re.compile(r",?\s+(?:which|and|so|but|as|since|because|where|when|for|if|by|that|than|from)\b|[,;]\s")
# Words between an anchor and its value: "is indeed 18", "is equal to 0.15".
_FILLER = re.compile(r"^(?:(?:indeed|equal|to|exactly|approximately|about|around|roughly|just|also|still|then|thus|"
                     r"therefore|so|simply|clearly|now|only|precisely|actually|definitely|the|a|an|of|value|answer|"
                     r"result|final|correct|is)\s+)+", re.I)
# "\(y = -4\) is the correct solution", "1940 is the correct number of ways".
_VALUE_IS_ANSWER = re.compile(
    r"(\\\(.+?\\\)|\$[^$\n]+?\$|[-+]?\d[\d,]*(?:\.\d+)?(?:/\d+)?)\s+is\s+(?:indeed\s+)?(?:the|my)\s+"
    r"(final\s+|correct\s+|right\s+)?(answer|solution|result|value|number)\b", re.I)
# A last line that stops on an operator, a comma or a word (no closing punctuation) was cut off
# mid-sentence: "So, \\( x = 8k + 3 \\) for some", "... then the intervals where d(c) > 0 would".
_CUT_OFF = re.compile(r"(?:[-+*/=,(\[{^_\\]|\\[a-zA-Z]+|(?<![\\a-zA-Z])[a-zA-Z]{2,}|\b(?:a|I))\s*$")
# A line that re-checks a result states it again among other numbers; the conclusion is elsewhere.
_VERIFYING = re.compile(r"^\W*(?:let(?:'s| me| us)\s+(?:double[- ]?)?(?:check|verify|confirm)"
                        r"|(?:double[- ]?)?check(?:ing)?\b|verif(?:y|ying|ication)\b"
                        r"|to (?:double[- ]?)?(?:check|verify|confirm))", re.I)
# A line that concludes: "So, based on the information given, Karla would have saved 550 gallons ...".
_CONCLUDING = re.compile(r"^\W*(?:so|thus|therefore|hence|consequently|in conclusion|in summary|to conclude|finally|"
                         r"overall)\b", re.I)
# A standalone number in prose (not "8th", "x2", "2x" or part of a formula such as "3^2").
_PROSE_NUMBER = re.compile(r"(?<![\w.^_{}\\/])[-−]?\d[\d,]*(?:\.\d+)?(?![\w^_{}/])(?!\.\d)")
# A dollar sign before an amount ("$93 - $15 = $78."), which is currency, not a math delimiter.
_CURRENCY = re.compile(r"(?<![\\$\w])\$(?=\d[\d,]*(?:\.\d+)?(?:\s|[.,;:!?)]|$))")
NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
# What follows "the answer is" when it is not an answer ("the answer is correct").
_NOT_ANSWERS = {"correct", "incorrect", "right", "wrong", "consistent", "confirmed", "verified", "valid", "invalid",
                "as follows", "below", "above", "clear", "obvious", "not", "unclear", "that", "this", "yes, correct"}


def answer_region(text: str) -> str:
    """The part of a response that may hold the final answer (see ``virgo.thought.strip_thought``)."""
    return strip_thought(text)


def extract_answer(text: str, problem: Problem, profile: str | Profile = "default") -> Extraction:
    """The final answer of a full response (thought stripped first) for ``problem``."""
    return extract_from_region(answer_region(text), problem, get_profile(profile))


def extract_from_region(region: str, problem: Problem, profile: Profile, *, strong_only: bool = False) -> Extraction:
    """The final answer in an answer region; ``strong_only`` keeps just the boxed / "answer is" rules."""
    if not region.strip():
        return NONE
    boxes = [b for b in boxed_contents(region) if b.strip()]
    tail = region[-TAIL_CHARS:]
    if is_multiple_choice(problem):
        return _extract_choice(region, tail, boxes, problem, profile, strong_only)
    multi = bool(problem.meta.get("is_multiple_answer"))
    if boxes:
        if multi:
            # Every part of every box, repeats included ("a = \\boxed{-2}, b = \\boxed{-2}"); the answer text
            # holds each distinct box once, which equivalence uses when that makes the count right (a final
            # answer boxed twice).
            parts = [p for b in boxes for p in split_answers(b)]
            distinct = [p for b in dedupe(boxes) for p in split_answers(b)]
            return Extraction(", ".join(distinct), "boxed", tuple(parts))
        return Extraction(boxes[-1], "boxed")
    ex = _first(
        lambda: _rule("answer_is", _answer_is(tail)),
        lambda: None if strong_only else _rule("whole", _whole(region, prose=_text_gold(problem))),
        lambda: None if strong_only else _rule("final_statement", _final_statement(tail)),
    )
    if ex is None:
        return NONE
    if multi:
        parts = tuple(split_answers(ex.answer))
        return Extraction(ex.answer, ex.rule, parts)
    return ex


def _extract_choice(region: str, tail: str, boxes: list[str], problem: Problem, profile: Profile,
                    strong_only: bool) -> Extraction:
    letters = valid_letters(problem, profile)
    choices = problem.choices

    def as_choice(value: str | None, rule: str, *, keep_text: bool = True) -> Extraction | None:
        if value is None:
            return None
        several = letters_of(value, letters)
        if several:  # "\\boxed{C, D}": kept whole, so a single-answer item can tell it from "C"
            return Extraction(", ".join(several), rule)
        # A box, an "answer is" value and a one-line response are answers on their own, so a lowercase letter
        # there names an option ("\\boxed{b}" is B) -- unless it is an option's text (options "2a", "a").
        letter = letter_of(value, letters) or option_of(value, choices) or \
            letter_of(value, letters, whole_answer=rule in ("boxed", "answer_is", "whole"))
        if letter:
            return Extraction(letter, rule)
        return Extraction(clean(value), rule) if keep_text and clean(value) else None

    ex = _first(
        lambda: as_choice(boxes[-1], "boxed") if boxes else None,
        lambda: as_choice(_answer_is(tail), "answer_is"),
        lambda: None if strong_only else as_choice(_whole(region), "whole", keep_text=False),
        lambda: None if strong_only else _letter_line(tail, letters),
        lambda: None if strong_only or not profile.option_mentions else _mention(tail, choices),
        lambda: None if strong_only else as_choice(_final_statement(tail), "final_statement", keep_text=False),
    )
    return ex or NONE


def _text_gold(problem: Problem) -> bool:
    return any(is_text_answer(a) for a in alternatives(problem))


def _first(*thunks):
    for t in thunks:
        r = t()
        if r is not None:
            return r
    return None


def _rule(name: str, value: str | None) -> Extraction | None:
    return Extraction(value, name) if value else None


def _value_after(text: str, pos: int) -> str | None:
    """The answer value that starts at ``pos``: a math span, or the rest of the sentence."""
    rest = text[pos:].lstrip(" \t*:：\n")
    if not rest:
        return None
    m = _MATH_SPAN.match(rest)
    if m:
        value = next(g for g in m.groups() if g is not None)
    else:
        line = rest.split("\n", 1)[0]
        end = _SENTENCE_END.search(line)
        value = line[:end.start()] if end else line
    value = clean(value).rstrip(",;")
    if not value or len(value) > MAX_VALUE_CHARS:
        return None
    return value


def _answer_is(tail: str) -> str | None:
    """The value after the last "answer is"-style anchor that has one."""
    for m in reversed(list(_ANSWER_IS.finditer(tail))):
        v = _value_after(tail, m.end())
        if v and v.lower() not in _NOT_ANSWERS:
            return _trim_value(v)
    return None


def _trim_value(v: str) -> str:
    """An "answer is" value without filler and trailing prose: "indeed 6" -> "6", "three boxes ..." -> "3",
    "12π inches per second" -> "12π"; a text answer ("Navin earns the most") stays whole."""
    v = _FILLER.sub("", v).strip() or v
    words = v.split()
    if words and words[0].lower().rstrip(".,") in NUMBER_WORDS:
        return NUMBER_WORDS[words[0].lower().rstrip(".,")]
    if len(words) > 1 and _MATH_START.match(v):
        return _math_prefix(v)
    return v


# Words of prose (outside math): three of them make a sentence, not a bare answer ("I am not sure").
_PROSE_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")


def _whole(region: str, *, prose: bool = False) -> str | None:
    """A region that is itself the answer: one short line ("42", "(B)", "x = 5", "Bugs Bunny"). A sentence
    counts only for an item whose gold answer is a word or phrase (prose=True); otherwise "So the product is
    42." is left to the final-statement rule and "I am not sure." is no answer."""
    s = region.strip()
    if "\n" in s or len(s) > WHOLE_MAX_CHARS:
        return None
    if not prose and len(_PROSE_WORD.findall(_MATH_SPAN.sub(" ", s))) >= 3:
        return None
    return clean(s) or None


def _last_lines(tail: str, n: int = 3) -> list[str]:
    """The last ``n`` non-empty lines, a display-math block counting as one line."""
    joined = _MATH_SPAN.sub(lambda m: m.group(0).replace("\n", " "), tail[-1500:])
    lines = [ln.strip() for ln in joined.split("\n") if ln.strip()]
    return lines[-n:][::-1]


def _rhs(value: str) -> str:
    """The last member of a chain ``a = b = c`` -> ``c``; one equation stays whole (Math-Verify compares
    ``\\tan A = 2`` with 2, and an equation may be the answer itself)."""
    parts = re.split(r"(?<![<>!\\])=", value)
    return parts[-1].strip() if len(parts) > 2 and parts[-1].strip() else value


def _mathy(value: str) -> bool:
    return bool(re.search(r"\d|\\[a-zA-Z]", value)) and len(value) <= 80


def _cut_clause(v: str) -> str:
    """``v`` up to the first clause boundary outside brackets ("(1, 2), which ..." -> "(1, 2)")."""
    for m in _CLAUSE.finditer(v):
        head = v[:m.start()]
        if _balanced(head):
            return head
    return v


def _balanced(v: str) -> bool:
    """As many closing as opening brackets of any kind (intervals like [1, 2) count as balanced)."""
    return sum(v.count(c) for c in "([{") == sum(v.count(c) for c in ")]}")


# A value starts like mathematics: a number, sign, bracket, LaTeX command, or a lone variable ("x = 5").
_MATH_START = re.compile(r"[-+−(\[{\\\d.π√∞]|[A-Za-z](?:\s*[=<>^_(]|$)")


_NOT_UNITS = {"different", "distinct", "possible", "total", "more", "less", "other", "ways", "times", "is", "are",
              "was", "and", "or", "which", "in", "of", "for", "the", "to", "as", "so"}
_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")
_UNIT_WORD = re.compile(r"[A-Za-z°%]+(?:\^\{?\d\}?|[²³])?")  # "cm", "units^3"
_UNIT_POWER = re.compile(r"\$?\^\s*\{?-?\d+\}?\$?[.,;]?|[²³][.,;]?")  # "^2", "$^{3}$" after a unit word


def _math_prefix(v: str) -> str:
    """The formula a phrase starts with: "-2x correctly describes ..." -> "-2x"; "10 years old" -> "10 years"."""
    tokens = v.split()
    taken: list[str] = []
    for i, tok in enumerate(tokens):
        # "1, 3 and 5": a conjunction between two formulas is part of the answer.
        if tok in ("and", "or") and taken and i + 1 < len(tokens) and not _WORD.search(tokens[i + 1]):
            taken.append(tok)
            continue
        if _WORD.search(tok):
            # One word right after a plain number is its unit ("10 years", "5 cm", "56.55 units^3", "12 square
            # units"); equivalence drops it.
            if len(taken) == 1 and re.fullmatch(r"[-+−]?[\d.,]+", taken[0]) and _UNIT_WORD.fullmatch(tok) \
                    and tok.lower() not in _NOT_UNITS:
                taken.append(tok)
                rest = tokens[i + 1:i + 3]
                if tok.lower() in ("square", "cubic", "sq") and rest and re.fullmatch(r"[A-Za-z]+", rest[0]):
                    taken.append(rest.pop(0))
                elif len(rest) == 2 and rest[0].lower() == "per" and re.fullmatch(r"[A-Za-z]+[.,;]?", rest[1]):
                    taken.extend([rest[0], rest[1].rstrip(".,;")])  # "10 kilometers per hour"
                    rest = []
                if rest and _UNIT_POWER.fullmatch(rest[0]):
                    taken.append(rest[0].rstrip(".,;"))
            break
        taken.append(tok)
    return " ".join(taken) or v


def _statement_value(text: str) -> str | None:
    """A mathematical value at the start of ``text`` (after filler words), up to the end of its clause."""
    v = _FILLER.sub("", text.strip())
    m = _MATH_SPAN.match(v)
    if m:
        v = next(g for g in m.groups() if g is not None)
    else:
        v = _cut_clause(v).strip()
        v = NUMBER_WORDS.get(v.split(" ", 1)[0].lower(), v) if v else v
        if not _MATH_START.match(v):
            return None  # prose ("grouped in 14 different ways"), not a value
        v = _math_prefix(v)
    v = clean(_rhs(clean(v)))
    if re.search(r"(?:[-+*/=^_,]|\\[a-zA-Z]+)\s*$", v):
        return None  # "4c^2 + 4c^2 -": a formula cut short by prose, not a value
    return v if v and _balanced(v) and _mathy(v) else None


def _final_statement(tail: str) -> str | None:
    """The value stated by the closing lines: "... is 9.", "$$\\tan A = 2$$" (the right-hand side), "X is the answer".

    An explicit "X is the correct answer/solution" among the last three lines wins. Otherwise lines are read
    from the last one back, skipping lines that re-check a result, and an earlier line only when the later
    one is a finished sentence without a value ("I think that's the answer."); a concluding sentence
    ("So, ...") that states exactly one number gives it. A text cut off mid-sentence states no final value.
    """
    lines = _last_lines(tail)
    if lines and (_CUT_OFF.search(lines[0]) or not _balanced(lines[0])):
        return None
    # "So, \\(x = 4\\) is indeed the correct solution." then a closing remark that mentions other numbers
    # ("... recognize that 10 to the power of 4 is 10000."): the explicit claim wins.
    for line in lines:
        for said in _VALUE_IS_ANSWER.finditer(_CURRENCY.sub("", line)):
            if said.group(2) or said.group(3).lower() == "answer":
                value = _statement_value(said.group(1))
                if value:
                    return value
    for line in lines:
        if _VERIFYING.match(line):
            continue  # "Let me double-check: 56 + 24 = 80 answered questions, ..." restates numbers
        stripped = _CURRENCY.sub("", line).rstrip(" .!")
        spans = list(_MATH_SPAN.finditer(stripped))
        if spans and spans[-1].end() >= len(stripped) - 1:
            value = clean(_rhs(next(g for g in spans[-1].groups() if g is not None)))
            if _mathy(value):
                return value
        said = _VALUE_IS_ANSWER.search(stripped)
        if said:
            value = _statement_value(said.group(1))
            if value:
                return value
        for anchor in reversed(list(_FINAL_ANCHOR.finditer(stripped))):
            value = _statement_value(stripped[anchor.end():])
            if value:
                return value
        if _CONCLUDING.match(stripped):
            value = _only_number(stripped)
            if value:
                return value
        if not re.search(r"[.!?)\]$}]\s*$", line):
            return None
    return None


def _only_number(line: str) -> str | None:
    """The one number a concluding sentence states ("Therefore, Frank answered 56 questions correctly."),
    if it states exactly one; math spans count when they hold a plain number."""
    def span(m: re.Match) -> str:
        inner = next(g for g in m.groups() if g is not None)
        return f" {inner.strip()} " if re.fullmatch(r"\s*-?\d[\d,]*(?:\.\d+)?\s*", inner) else " § "

    numbers = {n.replace("−", "-") for n in _PROSE_NUMBER.findall(_MATH_SPAN.sub(span, line))}
    return numbers.pop() if len(numbers) == 1 else None


_PAREN_LETTER = re.compile(r"\(([A-Z])\)")


def _letter_line(tail: str, letters: str) -> Extraction | None:
    """A closing line that names an option: "(B)", "B: 40°", "Option B", "... are in picture (B)."."""
    for line in _last_lines(tail):
        letter = letter_of(line, letters) or option_word_letter(line, letters)
        named = {x for x in _PAREN_LETTER.findall(line) if x in letters}
        if letter is None and len(named) == 1:
            letter = named.pop()
        if letter:
            return Extraction(letter, "letter")
    return None


def _mention(tail: str, choices: list[str] | None) -> Extraction | None:
    paragraph = tail.strip().rsplit("\n\n", 1)[-1]
    letter = mentioned_option(paragraph, choices)
    return Extraction(letter, "option_mention") if letter else None
