"""The long-thought response formats, in one place.

A long-thought response (STILL-2 / Virgo) is::

    <|begin_of_thought|>\\n\\n{thought}\\n\\n<|end_of_thought|>\\n\\n<|begin_of_solution|>{solution}<|end_of_solution|>

Reasoning models of the DeepSeek-R1 / Qwen3 family write ``<think>{thought}</think>{answer}`` instead (their chat
templates often pre-fill ``<think>``, so the response may start inside the thought), and a user may name any other
pair of markers (``ThoughtFormat.parse("<reasoning>...</reasoning>")``). A ``ThoughtFormat`` is one such layout:
a thought pair and, for Virgo, a solution pair.

This module owns the markers, renders Virgo responses from (thought, solution), parses responses back and
classifies how complete they are (``parse_response``, which trims the whitespace around each section, as a
response written by any model needs), and splits a rendered response back into exactly the sections it was
rendered from (``split_response``, for lossless data conversion). ``parse_response`` reads the Virgo layout unless
given other formats; the grader passes every format it recognises (``FORMATS`` plus the configured ones).
Everything else (data tools, training, inference budget control, the grader) imports the markers from here.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from virgo.boxed import last_boxed

BEGIN_THOUGHT = "<|begin_of_thought|>"
END_THOUGHT = "<|end_of_thought|>"
BEGIN_SOLUTION = "<|begin_of_solution|>"
END_SOLUTION = "<|end_of_solution|>"
MARKERS = (BEGIN_THOUGHT, END_THOUGHT, BEGIN_SOLUTION, END_SOLUTION)


class Status(str, enum.Enum):
    """How complete a response is. ``str`` valued so it serialises as itself in JSON."""

    COMPLETE = "complete"  # thought closed, solution opened and closed (or, without solution markers, given)
    TRUNCATED = "truncated"  # thought opened, never closed (the generation ran out mid-thought)
    UNCLOSED_SOLUTION = "unclosed_solution"  # solution opened, never closed
    NO_SOLUTION = "no_solution"  # thought closed, no solution section follows
    MALFORMED = "malformed"  # markers duplicated, out of order, or a solution without a thought
    PLAIN = "plain"  # no markers at all: a direct answer, not a long thought


@dataclass(frozen=True)
class ThoughtFormat:
    """One way of marking the thought: an opening and a closing marker, and optionally a solution pair."""

    name: str
    begin_thought: str
    end_thought: str
    begin_solution: str | None = None
    end_solution: str | None = None

    def __post_init__(self) -> None:
        if not self.begin_thought or not self.end_thought or self.begin_thought == self.end_thought:
            raise ValueError(f"thought markers must be two different non-empty strings, got "
                             f"{self.begin_thought!r} and {self.end_thought!r}")
        if (self.begin_solution is None) != (self.end_solution is None):
            raise ValueError("solution markers come in pairs")

    @property
    def markers(self) -> tuple[str, ...]:
        return tuple(m for m in (self.begin_thought, self.end_thought, self.begin_solution, self.end_solution) if m)

    def present_in(self, text: str) -> bool:
        return any(m in text for m in self.markers)

    @classmethod
    def parse(cls, spec: str) -> ThoughtFormat:
        """A user-configured pair: ``"<reasoning>...</reasoning>"`` (or ``…``), or the two markers separated by
        whitespace (``"<r> </r>"``)."""
        s = spec.strip()
        for sep in ("...", "…"):
            if sep in s:
                begin, end = (p.strip() for p in s.split(sep, 1))
                break
        else:
            parts = s.split()
            if len(parts) != 2:
                raise ValueError(f"thought markers {spec!r}: write them as '<open>...<close>' or '<open> <close>'")
            begin, end = parts
        return cls(f"custom:{begin}", begin, end)


VIRGO = ThoughtFormat("virgo", BEGIN_THOUGHT, END_THOUGHT, BEGIN_SOLUTION, END_SOLUTION)
THINK = ThoughtFormat("think", "<think>", "</think>")  # DeepSeek-R1, Qwen3, QwQ
FORMATS = (VIRGO, THINK)  # what the grader recognises without configuration


@dataclass(frozen=True)
class ParsedResponse:
    status: Status
    thought: str | None  # text of the thought section (possibly partial when TRUNCATED)
    solution: str | None  # text of the solution section (possibly partial when UNCLOSED_SOLUTION)
    boxed: str | None  # last \boxed{} of the solution, or of the whole text when there is no solution section
    format: str | None = None  # name of the ThoughtFormat found (None for a plain response)
    after_thought: str | None = None  # NO_SOLUTION: the text after the closing marker (may hold the answer)

    @property
    def thinks(self) -> bool:
        return self.thought is not None


_HEAD = f"{BEGIN_THOUGHT}\n\n"
_MIDDLE = f"\n\n{END_THOUGHT}\n\n{BEGIN_SOLUTION}"


def render_response(thought: str, solution: str) -> str:
    """Render (thought, solution) in the exact STILL-2 layout (see the paper digest, section 1.3).

    The sections are taken as they are (whitespace at their ends included), so ``split_response`` gives them
    back exactly; records made by ``parse_response`` hold trimmed sections already.
    """
    return f"{_HEAD}{thought}{_MIDDLE}{solution}{END_SOLUTION}"


def split_response(text: str) -> tuple[str, str] | None:
    """The (thought, solution) that ``render_response`` renders as exactly ``text``, or None if there are none.

    Unlike ``parse_response`` this keeps every character of the sections and accepts only the exact layout.
    """
    if not (text.startswith(_HEAD) and text.endswith(END_SOLUTION)) or any(text.count(m) != 1 for m in MARKERS):
        return None
    middle = text.find(_MIDDLE)
    thought, solution = text[len(_HEAD):middle], text[middle + len(_MIDDLE):-len(END_SOLUTION)]
    return (thought, solution) if render_response(thought, solution) == text else None


def detect_format(text: str, formats: Sequence[ThoughtFormat] = (VIRGO,)) -> ThoughtFormat | None:
    """The first of ``formats`` whose markers occur in ``text`` (None: a plain response)."""
    return next((f for f in formats if f.present_in(text)), None)


def parse_response(text: str, formats: Sequence[ThoughtFormat] = (VIRGO,)) -> ParsedResponse:
    """Split a response into thought and solution and classify it; never raises.

    ``formats``: the layouts to recognise, tried in order (default: Virgo's markers only, as every stage that
    writes Virgo data expects; the grader passes ``FORMATS`` and the configured pairs).
    """
    fmt = detect_format(text, formats)
    if fmt is None:
        return ParsedResponse(Status.PLAIN, None, None, last_boxed(text))
    if fmt.begin_solution is None:
        return _parse_thought_only(text, fmt)
    return _parse_with_solution(text, fmt)


def _parse_with_solution(text: str, fmt: ThoughtFormat) -> ParsedResponse:
    """Virgo's layout: thought pair then solution pair, each marker at most once."""
    name = fmt.name
    if any(text.count(m) > 1 for m in fmt.markers):
        return ParsedResponse(Status.MALFORMED, None, None, last_boxed(text), name)
    bt, et = text.find(fmt.begin_thought), text.find(fmt.end_thought)
    bs, es = text.find(fmt.begin_solution), text.find(fmt.end_solution)

    if bt < 0:
        if et < 0:
            # A solution without any thought is not the format.
            return ParsedResponse(Status.MALFORMED, None, None, last_boxed(text), name)
        # The opening marker is implicit when the prompt pre-fills it (as R1-style servers and the
        # SkyThought outputs do): the thought then starts at the first character of the response.
        bt, open_len = 0, 0
    else:
        open_len = len(fmt.begin_thought)
    if et < 0:
        if bs >= 0 or es >= 0:
            return ParsedResponse(Status.MALFORMED, None, None, last_boxed(text), name)
        return ParsedResponse(Status.TRUNCATED, text[bt + open_len:].strip(), None, None, name)
    if et < bt:
        return ParsedResponse(Status.MALFORMED, None, None, last_boxed(text), name)
    thought = text[bt + open_len:et].strip()
    if bs < 0:
        if es >= 0:
            return ParsedResponse(Status.MALFORMED, thought, None, last_boxed(text), name)
        # No solution section: the answer, if any, can only be in what follows the thought.
        after = text[et + len(fmt.end_thought):].strip()
        return ParsedResponse(Status.NO_SOLUTION, thought, None, last_boxed(after), name, after)
    if bs < et:
        return ParsedResponse(Status.MALFORMED, thought, None, last_boxed(text), name)
    if es < 0:
        solution = text[bs + len(fmt.begin_solution):].strip()
        return ParsedResponse(Status.UNCLOSED_SOLUTION, thought, solution, last_boxed(solution), name)
    if es < bs:
        return ParsedResponse(Status.MALFORMED, thought, None, last_boxed(text), name)
    solution = text[bs + len(fmt.begin_solution):es].strip()
    return ParsedResponse(Status.COMPLETE, thought, solution, last_boxed(solution), name)


def _parse_thought_only(text: str, fmt: ThoughtFormat) -> ParsedResponse:
    """``<think>...</think> answer``: the answer is everything after the last closing marker.

    The opening marker may be implicit (pre-filled by the chat template). Several thought blocks are read as one
    thought up to the last closing marker; an opening marker after it is a thought that never closed.
    """
    name = fmt.name
    last_end = text.rfind(fmt.end_thought)
    last_begin = text.rfind(fmt.begin_thought)
    if last_end < 0 or last_begin > last_end:
        start = last_begin + len(fmt.begin_thought) if last_begin >= 0 else 0
        return ParsedResponse(Status.TRUNCATED, text[start:].strip(), None, None, name)
    first_begin = text.find(fmt.begin_thought)
    start = first_begin + len(fmt.begin_thought) if 0 <= first_begin < last_end else 0
    thought = text[start:last_end].strip()
    answer = text[last_end + len(fmt.end_thought):].strip()
    if not answer:
        return ParsedResponse(Status.NO_SOLUTION, thought, None, None, name, "")
    return ParsedResponse(Status.COMPLETE, thought, answer, last_boxed(answer), name)


def answer_text(parsed: ParsedResponse, text: str) -> str:
    """The part of a parsed response that may hold the final answer: the solution, else what follows the thought,
    else (a plain or malformed response) the whole text; "" for a thought that never closed."""
    if parsed.status is Status.PLAIN or parsed.status is Status.MALFORMED:
        return text
    if parsed.solution is not None:
        return parsed.solution
    if parsed.status is Status.TRUNCATED:
        return ""
    return parsed.after_thought or ""


def strip_thought(text: str, formats: Sequence[ThoughtFormat] = (VIRGO,)) -> str:
    """The part of a response that may hold the final answer: the solution, else what follows the thought.

    A truncated thought yields "" so that nothing inside an unfinished thought is ever graded as an answer.
    """
    return answer_text(parse_response(text, formats), text)
