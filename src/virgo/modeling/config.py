"""The options of ``virgo make-tiny-model``, as a config dataclass (flags, YAML and --print-config come from it)."""

from __future__ import annotations

from dataclasses import dataclass

from virgo.config.fields import opt
from virgo.modeling.family import family_names
from virgo.modeling.tiny import DEFAULT_FAMILY, SIZES


@dataclass
class TinyModelConfig:
    """A tiny random model of a supported family, with a locally trained tokenizer and a real processor."""

    out: str = opt(help="Directory to write the model into (created if missing).", path=True)
    family: str = opt(DEFAULT_FAMILY, choices=family_names(),
                      help="Model family: its transformers classes, vision tower, chat template and processor.")
    size: str = opt("xs", choices=sorted(SIZES),
                    help="Preset size: xs (about 0.9M parameters, hidden 128) or s (about 5M, hidden 256).")
    seed: int = opt(0, ge=0, help="Seed for the tokenizer corpus and the random weights.")
    vocab_size: int | None = opt(None, ge=267, help="Tokenizer vocabulary size (default: the preset's, 2048; at "
                                                     "least the 256 byte symbols and the 11 special tokens).")

    def build(self):
        """Write the model directory; returns its path."""
        from virgo.modeling.tiny import make_tiny_model

        return make_tiny_model(self.out, family=self.family, size=self.size, seed=self.seed,
                               vocab_size=self.vocab_size)
