"""Thought and answer apart, as reasoning servers return them (``reasoning_content`` / ``content``), and back.

- `split_reasoning(text)`: a finished raw output -> (reasoning, content), by `virgo.thought.parse_response`;
- `StreamSplitter`: the same split on text arriving in pieces (markers may be cut across pieces);
- `join_reasoning(reasoning, content, finish_reason)`: a reasoning server's answer -> raw text in the Virgo
  layout, so any server's output grades like a local generation.
"""

from __future__ import annotations

from virgo.thought import (
    BEGIN_SOLUTION,
    BEGIN_THOUGHT,
    END_SOLUTION,
    END_THOUGHT,
    Status,
    parse_response,
    strip_thought,
)

THOUGHT, ANSWER = "thought", "answer"


def split_reasoning(text: str) -> tuple[str | None, str]:
    """(thought or None, answer text): the answer is the solution (or what follows the thought); a plain or
    malformed output is all answer; a thought that never closed leaves an empty answer."""
    p = parse_response(text)
    if p.status in (Status.PLAIN, Status.MALFORMED):
        return None, text
    return p.thought, strip_thought(text).strip()


def join_reasoning(reasoning: str | None, content: str | None, finish_reason: str) -> str:
    """Raw Virgo-layout text from a reasoning server's ``reasoning_content`` and ``content``."""
    content = content or ""
    if reasoning is None:
        return content
    text = f"{BEGIN_THOUGHT}\n\n{reasoning.strip()}"
    if not content and finish_reason == "length":
        return text  # cut off inside the thought
    text += f"\n\n{END_THOUGHT}\n\n"
    if BEGIN_SOLUTION in content:
        return text + content
    closed = END_SOLUTION if finish_reason != "length" else ""
    return f"{text}{BEGIN_SOLUTION}{content.strip()}{closed}"


def _partial_marker_len(buf: str, markers: tuple[str, ...]) -> int:
    """Length of the longest suffix of ``buf`` that could be the start of one of ``markers``."""
    best = 0
    for m in markers:
        for k in range(min(len(m) - 1, len(buf)), best, -1):
            if buf.endswith(m[:k]):
                best = k
                break
    return best


class StreamSplitter:
    """Feed raw text pieces; get back ``(kind, text)`` pieces with kind ``thought`` or ``answer``, markers removed.

    Whitespace around each section is dropped as `split_reasoning` strips it. An output that does not start with
    ``<|begin_of_thought|>`` is a plain answer and passes through unchanged.
    """

    def __init__(self) -> None:
        self.mode = "start"  # start -> thought -> answer -> done, or start -> plain
        self.buf = ""
        self.section_started = False  # first non-blank text of the current section emitted
        self.pending_ws = ""  # trailing blanks held until more text shows they are inside the section

    def feed(self, text: str) -> list[tuple[str, str]]:
        self.buf += text
        out: list[tuple[str, str]] = []
        while True:
            before = (self.mode, len(self.buf))
            self._advance(out)
            if (self.mode, len(self.buf)) == before:
                return out

    def finish(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.mode == "start" and self.buf:
            self.mode = "plain"
        if self.mode == "plain":
            self._emit(out, ANSWER, self.buf, strip=False)
        elif self.mode in ("thought", "answer"):
            self._emit(out, THOUGHT if self.mode == "thought" else ANSWER, self.buf)
        self.buf = ""
        return out

    def _advance(self, out: list[tuple[str, str]]) -> None:
        if self.mode == "start":
            s = self.buf.lstrip()
            if s.startswith(BEGIN_THOUGHT):
                self.buf = s[len(BEGIN_THOUGHT):]
                self._section("thought")
            elif s and not BEGIN_THOUGHT.startswith(s):
                self.mode = "plain"
        elif self.mode == "plain":
            self._emit(out, ANSWER, self.buf, strip=False)
            self.buf = ""
        elif self.mode == "thought":
            self._until(out, THOUGHT, END_THOUGHT, "answer")
        elif self.mode == "answer":
            if BEGIN_SOLUTION in self.buf:
                i = self.buf.index(BEGIN_SOLUTION)
                self._emit(out, ANSWER, self.buf[:i])
                self.buf = self.buf[i + len(BEGIN_SOLUTION):]
            self._until(out, ANSWER, END_SOLUTION, "done")
        elif self.mode == "done":
            self.buf = ""  # anything after the end of the solution is not part of the answer

    def _until(self, out: list[tuple[str, str]], kind: str, end: str, next_mode: str) -> None:
        if end in self.buf:
            i = self.buf.index(end)
            self._emit(out, kind, self.buf[:i])
            self.buf = self.buf[i + len(end):]
            self._section(next_mode)
            return
        keep = _partial_marker_len(self.buf, (end, BEGIN_SOLUTION) if kind == ANSWER else (end,))
        cut = len(self.buf) - keep
        self._emit(out, kind, self.buf[:cut])
        self.buf = self.buf[cut:]

    def _section(self, mode: str) -> None:
        self.mode = mode
        self.section_started = False
        self.pending_ws = ""

    def _emit(self, out: list[tuple[str, str]], kind: str, text: str, strip: bool = True) -> None:
        if not strip:
            if text:
                out.append((kind, text))
            return
        if not self.section_started:
            text = text.lstrip()
            if not text:
                return
            self.section_started = True
        text = self.pending_ws + text
        body = text.rstrip()
        self.pending_ws = text[len(body):]
        if body:
            out.append((kind, body))
