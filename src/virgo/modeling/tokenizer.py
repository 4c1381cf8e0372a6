"""Train a small byte-level BPE tokenizer locally, with the Qwen-VL specials and the thought markers."""

from __future__ import annotations

from collections.abc import Iterable

from virgo.prompts import CONTROL_TOKENS, load_chat_template
from virgo.thought import MARKERS

# Ids 0..N in this order; <|endoftext|> pads and <|im_end|> ends a turn, as in Qwen2-VL.
SPECIAL_TOKENS = [*CONTROL_TOKENS, *MARKERS]

# Qwen2's pre-tokenizer split: digits are single tokens, words keep one leading space or punctuation.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 2048, chat_template: str | None = None):
    """Return a ``PreTrainedTokenizerFast`` trained on ``corpus`` in a few seconds, carrying ``chat_template``
    (a template's text; default: the default template's)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        chat_template=chat_template if chat_template is not None else load_chat_template(),
        model_max_length=32768,
    )
