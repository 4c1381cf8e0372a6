"""Incremental detokenization for streaming: new text per token without re-decoding the whole output.

Decoding one token alone is wrong for byte-level BPE (a character may span tokens, and some tokenizers change
spacing by context), so each step decodes a short window: the text of ``ids[prefix:]`` minus that of
``ids[prefix:read]``. A window ending in U+FFFD (an incomplete UTF-8 character) waits for the next token.
"""

from __future__ import annotations


class IncrementalDetokenizer:
    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.prefix = 0  # start of the decode window
        self.read = 0  # tokens already turned into emitted text

    def _decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def step(self, ids: list[int]) -> str:
        """New text for ``ids`` (the full token list so far, of which ``ids[:read]`` was already emitted)."""
        if len(ids) <= self.read:
            return ""
        prefix_text = self._decode(ids[self.prefix:self.read])
        new_text = self._decode(ids[self.prefix:])
        if len(new_text) <= len(prefix_text) or new_text.endswith("\ufffd"):
            return ""
        self.prefix, self.read = self.read, len(ids)
        return new_text[len(prefix_text):]

    def flush(self, ids: list[int]) -> str:
        """Whatever is left at the end, incomplete characters included."""
        if len(ids) <= self.read:
            return ""
        prefix_text = self._decode(ids[self.prefix:self.read])
        new_text = self._decode(ids[self.prefix:])
        self.prefix = self.read = len(ids)
        return new_text[len(prefix_text):]
