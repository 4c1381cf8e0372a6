"""Values stated in prose: the helpers every fallback extraction rule shares, and the two rules that read the
closing lines of a response (``final_statement``, ``display``).

``value_after`` reads the value that follows an anchor ("The final answer is: ..."), skipping a lead-in line that
ends in ":" (the value is the display equation under it) and a list bullet. ``final_statement`` reads the value
closing the last lines: "... is 9.", "$$\\tan A = 2$$" (the right-hand side), an explicit "X is the correct
answer", or the one number of a concluding sentence ("So, ... would have saved 550 gallons."); lines that re-check
a result are skipped, and a text that stops mid-sentence states no final value. ``display`` takes a last display
equation that only remarks without values follow. Every regex here is linear; the rules read only the tail.
"""

from __future__ import annotations

import re

from virgo.grade.norm import clean

MAX_VALUE_CHARS = 300  # longest value a fallback rule returns

MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|\$([^$\n]+?)\$", re.DOTALL)
_FINAL_ANCHOR = re.compile(r"(?:\b(?:is|are|was|were|equals|be|gives|yields)\b|=|≈|\\approx|:)")
# A period that ends a sentence (not one after an initial or abbreviation: "S.A. = 1209.84").
_SENTENCE_END = re.compile(r"(?<=[^\s\d\\])(?<!\b[A-Z])\.(?:\s|$)|(?<!\b[A-Z])\.\s+(?=[A-Z])")
# Where a value's sentence goes on about something else: "0.35625, which is a terminating decimal".
_CLAUSE = re.compile(r",?\s+(?:which|and|so|but|as|since|because|where|when|for|if|by|that|than|from)\b|[,;]\s")
# Words between an anchor and its value: "is indeed 18", "is equal to 0.15".
_FILLER = re.compile(r"^(?:(?:indeed|equal|to|exactly|approximately|about|around|roughly|just|also|still|then|thus|"
                     r"therefore|so|simply|clearly|now|only|precisely|actually|definitely|the|a|an|of|value|answer|"
                     r"result|final|correct|is)\s+)+", re.IGNORECASE)
# "\(y = -4\) is the correct solution", "1940 is the correct number of ways".
_VALUE_IS_ANSWER = re.compile(
    r"(\\\(.+?\\\)|\$[^$\n]+?\$|[-+]?\d[\d,]*(?:\.\d+)?(?:/\d+)?)\s+is\s+(?:indeed\s+)?(?:the|my)\s+"
    r"(final\s+|correct\s+|right\s+)?(answer|solution|result|value|number)\b", re.IGNORECASE)
# A last line that stops on an operator, a comma or a word (no closing punctuation) was cut off
# mid-sentence: "So, \\( x = 8k + 3 \\) for some", "... then the intervals where d(c) > 0 would".
_CUT_OFF = re.compile(r"(?:[-+*/=,(\[{^_\\]|\\[a-zA-Z]+|(?<![\\a-zA-Z])[a-zA-Z]{2,}|\b(?:a|I))\s*$")
# A line that re-checks a result states it again among other numbers; the conclusion is elsewhere.
_VERIFYING = re.compile(r"^\W*(?:let(?:'s| me| us)\s+(?:double[- ]?)?(?:check|verify|confirm)"
                        r"|(?:double[- ]?)?check(?:ing)?\b|verif(?:y|ying|ication)\b"
                        r"|to (?:double[- ]?)?(?:check|verify|confirm))", re.IGNORECASE)
# A line that concludes: "So, based on the information given, Karla would have saved 550 gallons ...".
_CONCLUDING = re.compile(r"^\W*(?:so|thus|therefore|hence|consequently|in conclusion|in summary|to conclude|finally|"
                         r"overall)\b", re.IGNORECASE)
# A standalone number in prose (not "8th", "x2", "2x" or part of a formula such as "3^2").
_PROSE_NUMBER = re.compile(r"(?<![\w.^_{}\\/])[-−]?\d[\d,]*(?:\.\d+)?(?![\w^_{}/])(?!\.\d)")
# A dollar sign before an amount ("$93 - $15 = $78."), which is currency, not a math delimiter.
_CURRENCY = re.compile(r"(?<![\\$\w])\$(?=\d[\d,]*(?:\.\d+)?(?:\s|[.,;:!?)]|$))")
NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
     "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])}
# What follows "the answer is" when it is not an answer ("the answer is correct").
_NOT_ANSWERS = {"correct", "incorrect", "right", "wrong", "consistent", "confirmed", "verified", "valid", "invalid",
                "as follows", "below", "above", "clear", "obvious", "not", "unclear", "that", "this", "yes, correct"}


# A list bullet or item label at the start of a value: "- ", "* ", "• ", "1. ", "2) ", "(a) ".
_BULLET = re.compile(r"^(?:[-*•]|\d{1,2}[.)]|\(?[a-h]\))\s+")


# A unit written after a math span: "$v = 7564$ m.", "$2.4 \\times 10^{-4}$ N", "$50$ km/h".
_UNIT_AFTER = re.compile(r"[ \t]*((?:\\(?:text|mathrm)\{[^{}]*\}|[A-Za-zµΩ°%/^{}\-−\d·]|[ \t](?=[A-Za-zµΩ/]))+?)"
                         r"[ \t]*(?=[.,;:!?)]*[ \t]*(?:$|\n)|[.,;][ \t]|\s+(?:and|or|which|so|for|because)\b)")
# Text between two math spans of one answer: "$x = 2$ or $x = 3$", "$45^\\circ$, $135^\\circ$ and $225^\\circ$".
_SPAN_GLUE = re.compile(r"\s*(?:,|;|\bor\b|\band\b|,\s*(?:or|and)\b)\s*")


def span_value(text: str, m: re.Match) -> str:
    """The value of the math span ``m`` of ``text``, with a unit written right after it ("$v = 7564$ m.")."""
    from virgo.grade.units import split_value_unit

    value = next(g for g in m.groups() if g is not None)
    after = _UNIT_AFTER.match(text, m.end())
    if after and after.group(1).strip() and split_value_unit("1 " + after.group(1).strip()):
        return f"{value} {after.group(1).strip()}"
    return value


def value_after(text: str, pos: int) -> str | None:
    """The answer value that starts at ``pos``: a math span, or the rest of the sentence. A lead-in line that ends
    in ":" ("The energy released is:") announces the value on the lines below it; a list bullet is not a value."""
    rest = text[pos:].lstrip(" \t*:：\n")
    new_line = text[:len(text) - len(rest)].rstrip(" \t*:：").endswith("\n")
    for _ in range(2):
        if new_line:  # a list under the anchor; on the anchor's own line "41. But" is a number, not a bullet
            rest = _BULLET.sub("", rest, count=1).lstrip(" *")
        if not rest:
            return None
        m = MATH_SPAN.match(rest)
        if m:
            value = span_value(rest, m)
            break
        line = rest.split("\n", 1)[0]
        if line.rstrip(" *").endswith((":", "：")) and "\n" in rest and not MATH_SPAN.search(line):
            rest = rest.split("\n", 1)[1].lstrip(" \t*\n")  # the lead-in: the value is below it
            new_line = True
            continue
        end = _SENTENCE_END.search(line)
        value = line[:end.start()] if end else line
        break
    else:
        return None
    value = clean(value).rstrip(",;")
    if not value or len(value) > MAX_VALUE_CHARS:
        return None
    return MathValue(value) if m else value


class MathValue(str):
    """A value read from a math span: mathematics as written, not prose to trim."""


def trim_value(v: str) -> str:
    """An "answer is" value without filler and trailing prose: "indeed 6" -> "6", "three boxes ..." -> "3",
    "12π inches per second" -> "12π"; a text answer ("Navin earns the most") stays whole."""
    if isinstance(v, MathValue):
        return str(v)
    v = _FILLER.sub("", v).strip() or v
    words = v.split()
    if words and words[0].lower().rstrip(".,") in NUMBER_WORDS:
        return NUMBER_WORDS[words[0].lower().rstrip(".,")]
    if len(words) > 1 and _MATH_START.match(v):
        return math_prefix(v)
    return v


def last_lines(tail: str, n: int = 3) -> list[str]:
    """The last ``n`` non-empty lines, a display-math block counting as one line."""
    joined = MATH_SPAN.sub(lambda m: m.group(0).replace("\n", " "), tail[-1500:])
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
        if balanced(head):
            return head
    return v


def balanced(v: str) -> bool:
    """As many closing as opening brackets of any kind (intervals like [1, 2) count as balanced)."""
    return sum(v.count(c) for c in "([{") == sum(v.count(c) for c in ")]}")


# A value starts like mathematics: a number, sign, bracket, LaTeX command, or a lone variable ("x = 5").
_MATH_START = re.compile(r"[-+−(\[{\\\d.π√∞]|[A-Za-z](?:\s*[=<>^_(]|$)")


_NOT_UNITS = {"different", "distinct", "possible", "total", "more", "less", "other", "ways", "times", "is", "are",
              "was", "and", "or", "which", "in", "of", "for", "the", "to", "as", "so"}
_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")
_UNIT_WORD = re.compile(r"[A-Za-z°%]+(?:\^\{?\d\}?|[²³])?")  # "cm", "units^3"
_UNIT_POWER = re.compile(r"\$?\^\s*\{?-?\d+\}?\$?[.,;]?|[²³][.,;]?")  # "^2", "$^{3}$" after a unit word


def math_prefix(v: str) -> str:
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
            if taken and re.fullmatch(r"[-+−]?[\d.,]+", taken[-1]) and _UNIT_WORD.fullmatch(tok) \
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


# A value that ends on an operator or a command that needs an argument was cut short ("4c^2 + 4c^2 -", "2 \\cdot");
# one that ends on a constant ("7\\pi", "\\infty") is whole.
_OPEN_END = re.compile(r"(?:[-+*/=^_,]|\\(?:cdot|times|div|pm|mp|frac|dfrac|tfrac|sqrt|left|right|le|leq|ge|geq|ne|"
                       r"neq|in|to|quad|qquad|approx|sim|mid|text|mathrm|,|;)(?![a-zA-Z]))\s*$")


def _closing_spans(line: str, spans: list[re.Match]) -> str:
    """The value of the math spans that close a line: the last one (the right-hand side of its chain, and a unit
    written after it), or all of an "or"/"and" list of them ("$x = 2$ or $x = 3$" -> "x = 2, x = 3")."""
    group = [spans[-1]]
    while len(group) < len(spans):
        prev = spans[-len(group) - 1]
        if not _SPAN_GLUE.fullmatch(line, prev.end(), group[0].start()):
            break
        group.insert(0, prev)
    if len(group) > 1:
        return ", ".join(clean(next(g for g in m.groups() if g is not None)) for m in group)
    return clean(_rhs(span_value(line, spans[-1])))


def _statement_value(text: str) -> str | None:
    """A mathematical value at the start of ``text`` (after filler words), up to the end of its clause."""
    v = _FILLER.sub("", text.strip())
    m = MATH_SPAN.match(v)
    if m:
        v = span_value(v, m)
    else:
        v = _cut_clause(v).strip()
        v = NUMBER_WORDS.get(v.split(" ", 1)[0].lower(), v) if v else v
        if not _MATH_START.match(v):
            return None  # prose ("grouped in 14 different ways"), not a value
        v = math_prefix(v)
    v = clean(_rhs(clean(v)))
    if _OPEN_END.search(v):
        return None  # "4c^2 + 4c^2 -": a formula cut short by prose, not a value
    return v if v and balanced(v) and _mathy(v) else None


def final_statement(tail: str) -> str | None:
    """The value stated by the closing lines: "... is 9.", "$$\\tan A = 2$$" (the right-hand side), "X is the answer".

    An explicit "X is the correct answer/solution" among the last three lines wins. Otherwise lines are read
    from the last one back, skipping lines that re-check a result, and an earlier line only when the later
    one is a finished sentence without a value ("I think that's the answer."); a concluding sentence
    ("So, ...") that states exactly one number gives it. A text cut off mid-sentence states no final value.
    """
    lines = last_lines(tail)
    if lines and (_CUT_OFF.search(lines[0]) or not balanced(lines[0])):
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
        line = line.replace("**", "")  # bold marks the value, it is not part of it
        stripped = _CURRENCY.sub("", line).rstrip(" .!")
        spans = list(MATH_SPAN.finditer(stripped))
        if spans and (spans[-1].end() >= len(stripped) - 1 or _UNIT_AFTER.match(stripped, spans[-1].end())):
            value = _closing_spans(stripped, spans)
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

    numbers = {n.replace("−", "-") for n in _PROSE_NUMBER.findall(MATH_SPAN.sub(span, line))}
    return numbers.pop() if len(numbers) == 1 else None




def display_value(tail: str) -> str | None:
    """The last display equation (``$$...$$`` or ``\\[...\\]``) when only remarks without values follow it:
    "\\[ v = 3.2 \\text{ m/s} \\]\n\nThis is the speed at the bottom of the ramp." -> "3.2 \\text{ m/s}"."""
    window = tail[-2000:]
    last = None
    for m in MATH_SPAN.finditer(window):
        if m.group(1) is not None or m.group(2) is not None:
            last = m
    if last is None:
        return None
    after = window[last.end():].strip()
    if len(after) > 600 or MATH_SPAN.search(after) or re.search(r"\d", after):
        return None
    if after and (_CUT_OFF.search(after) and not re.search(r"[.!?]\s*$", after)):
        return None  # the remark stops mid-sentence: the text was cut off
    value = clean(_rhs(last.group(1) if last.group(1) is not None else last.group(2)))
    return value if _mathy(value) and balanced(value) else None
