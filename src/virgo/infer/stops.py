"""Stop strings (OpenAI's and vLLM's ``stop``): the output ends where one first appears, without it.

"First" as the text is made: generation stops at the step whose new text completes a stop string, cut before the
earliest one present then (a longer one that began earlier but would complete later never does). vLLM does the
same, except that it takes the first of its list found rather than the earliest in the text.

Text arrives a piece at a time (`virgo.infer.detok`), and a stop string may straddle pieces and tokens, so the
matcher searches the tail that a new piece could complete, and what it lets out for streaming is only text that
no stop string can still claim: the last ``longest - 1`` characters wait for the next piece.

Not transformers' ``StopStringCriteria``: that one stops `model.generate` for the whole batch's stop strings,
keeps the stop string in the output and tells no offset to cut at; the decoding loop here is Virgo's own (per-row
settings), and the text must end before the stop string, as vLLM and OpenAI return it.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.longest = max((len(s) for s in self.stops), default=0)
        self.text = ""  # everything fed so far
        self.sent = 0  # characters let out
        self.at: int | None = None  # where the first stop string starts, once found

    def feed(self, piece: str) -> str:
        """Take the next piece of text; returns what can be let out now (nothing past a stop string)."""
        if self.at is not None or not piece:
            return ""
        start = max(0, len(self.text) - self.longest + 1)  # a match ending in the new piece starts here or later
        self.text += piece
        hits = [i for i in (self.text.find(s, start) for s in self.stops) if i >= 0]
        if hits:
            self.at = min(hits)
            return self._release(self.at)
        return self._release(len(self.text) - self.longest + 1)

    def finish(self) -> str:
        """The rest, at the end of the output (a partial stop string is text)."""
        return self._release(len(self.text) if self.at is None else self.at)

    @property
    def output(self) -> str:
        """The text as returned: up to the stop string, or all of it."""
        return self.text if self.at is None else self.text[:self.at]

    def _release(self, upto: int) -> str:
        if upto <= self.sent:
            return ""
        out, self.sent = self.text[self.sent:upto], upto
        return out
