"""The long-thought response format, in one place.

A long-thought response (STILL-2 / Virgo) is::

    <|begin_of_thought|>\\n\\n{thought}\\n\\n<|end_of_thought|>\\n\\n<|begin_of_solution|>{solution}<|end_of_solution|>

This module owns the four markers, renders responses from (thought, solution), parses them back and
classifies how complete they are (``parse_response``, which trims the whitespace around each section, as
a response written by any model needs), and splits a rendered response back into exactly the sections it
was rendered from (``split_response``, for lossless data conversion). Everything else (data tools, training, inference budget control,
the grader) imports the markers from here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from virgo.boxed import last_boxed

BEGIN_THOUGHT = "<|begin_of_thought|>"
END_THOUGHT = "<|end_of_thought|>"
BEGIN_SOLUTION = "<|begin_of_solution|>"
END_SOLUTION = "<|end_of_solution|>"
MARKERS = (BEGIN_THOUGHT, END_THOUGHT, BEGIN_SOLUTION, END_SOLUTION)


class Status(str, enum.Enum):
    """How complete a response is. ``str`` valued so it serialises as itself in JSON."""

    COMPLETE = "complete"  # thought closed, solution opened and closed
    TRUNCATED = "truncated"  # thought opened, never closed (the generation ran out mid-thought)
    UNCLOSED_SOLUTION = "unclosed_solution"  # solution opened, never closed
    NO_SOLUTION = "no_solution"  # thought closed, no solution section follows
    MALFORMED = "malformed"  # markers duplicated, out of order, or a solution without a thought
    PLAIN = "plain"  # no markers at all: a direct answer, not a long thought


@dataclass(frozen=True)
class ParsedResponse:
    status: Status
    thought: str | None  # text of the thought section (possibly partial when TRUNCATED)
    solution: str | None  # text of the solution section (possibly partial when UNCLOSED_SOLUTION)
    boxed: str | None  # last \boxed{} of the solution, or of the whole text when there is no solution section

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


def _counts(text: str) -> dict[str, int]:
    return {m: text.count(m) for m in MARKERS}


def parse_response(text: str) -> ParsedResponse:
    """Split a response into thought and solution and classify it; never raises."""
    c = _counts(text)
    if not any(c.values()):
        return ParsedResponse(Status.PLAIN, None, None, last_boxed(text))
    if any(v > 1 for v in c.values()):
        return ParsedResponse(Status.MALFORMED, None, None, last_boxed(text))

    bt = text.find(BEGIN_THOUGHT)
    et = text.find(END_THOUGHT)
    bs = text.find(BEGIN_SOLUTION)
    es = text.find(END_SOLUTION)

    if bt < 0:
        if et < 0:
            # A solution without any thought is not the format.
            return ParsedResponse(Status.MALFORMED, None, None, last_boxed(text))
        # The opening marker is implicit when the prompt pre-fills it (as R1-style servers and the
        # SkyThought outputs do): the thought then starts at the first character of the response.
        bt, open_len = 0, 0
    else:
        open_len = len(BEGIN_THOUGHT)
    if et < 0:
        if bs >= 0 or es >= 0:
            return ParsedResponse(Status.MALFORMED, None, None, last_boxed(text))
        thought = text[bt + open_len:].strip()
        return ParsedResponse(Status.TRUNCATED, thought, None, None)
    if et < bt:
        return ParsedResponse(Status.MALFORMED, None, None, last_boxed(text))
    thought = text[bt + open_len:et].strip()
    if bs < 0:
        if es >= 0:
            return ParsedResponse(Status.MALFORMED, thought, None, last_boxed(text))
        # No solution section: the answer, if any, can only be in what follows the thought.
        return ParsedResponse(Status.NO_SOLUTION, thought, None, last_boxed(text[et:]))
    if bs < et:
        return ParsedResponse(Status.MALFORMED, thought, None, last_boxed(text))
    if es < 0:
        solution = text[bs + len(BEGIN_SOLUTION):].strip()
        return ParsedResponse(Status.UNCLOSED_SOLUTION, thought, solution, last_boxed(solution))
    if es < bs:
        return ParsedResponse(Status.MALFORMED, thought, None, last_boxed(text))
    solution = text[bs + len(BEGIN_SOLUTION):es].strip()
    return ParsedResponse(Status.COMPLETE, thought, solution, last_boxed(solution))


def strip_thought(text: str) -> str:
    """The part of a response that may hold the final answer: the solution, else what follows the thought.

    A truncated thought yields "" so that nothing inside an unfinished thought is ever graded as an answer.
    """
    p = parse_response(text)
    if p.status is Status.PLAIN or p.status is Status.MALFORMED:
        return text
    if p.solution is not None:
        return p.solution
    if p.status is Status.TRUNCATED:
        return ""
    return text[text.find(END_THOUGHT) + len(END_THOUGHT):].strip()
