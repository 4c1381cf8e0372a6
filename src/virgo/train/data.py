"""Training data to token ids: read long-thought records, render them through the chat template, mask the prompt.

One sample is ``prompt + response + <|im_end|>``. The prompt (system and user turns with the image placeholders,
and the ``<|im_start|>assistant\\n`` header) is rendered with ``virgo.prompts`` and the config's ``chat_template``
exactly as at inference time and is masked out of the loss; the response and the closing ``<|im_end|>`` are
trained, so the model learns to stop.
Prompt and target are tokenized separately, as the prompt is tokenized alone when generating.

Image placeholders are expanded to the number of tokens each image costs under the configured pixel limits,
computed from the image's size without decoding its pixels. That gives the exact length of every sample before
training (the pre-flight report) while pixels are only decoded when a sample is drawn (``SFTDataset``).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from virgo.modeling.images import IMAGE_TOKEN, ImageLimits, image_token_count, open_image
from virgo.prompts import CONTROL_TOKENS, DEFAULT_CHAT_TEMPLATE, END_OF_TURN, build_messages, render_chat
from virgo.records import LongThoughtExample, RecordError, SFTExample, example_from_dict, read_all

IGNORE_INDEX = -100


class _AnyExample:
    """``read_all`` reads one record class; training files mix long-thought and generic examples."""

    from_dict = staticmethod(example_from_dict)


def read_examples(paths: Iterable[str | Path],
                  max_samples: int | None = None) -> list[LongThoughtExample | SFTExample]:
    """All records of every file, in order. Any bad line is an error naming file, line and field (no silent skips)."""
    examples = read_all(paths, _AnyExample, "training")  # type: ignore[arg-type]
    return examples[:max_samples] if max_samples else examples


@dataclass
class Encoded:
    """One tokenized sample: ids with image placeholders expanded; the first ``prompt_len`` ids are not trained."""

    id: str
    input_ids: np.ndarray  # int32
    prompt_len: int
    images: list[str]
    image_tokens: list[int]
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)

    def labels(self) -> np.ndarray:
        labels = self.input_ids.astype(np.int64)
        labels[: self.prompt_len] = IGNORE_INDEX
        return labels


TRAINED_OPEN, TRAINED_CLOSE = "\u27e6", "\u27e7"  # the trained span in format_sample


def format_sample(sample: Encoded, tokenizer, max_chars: int | None = None) -> str:
    """A sample's tokens as text with its loss mask: trained tokens inside ⟦ ⟧, runs of image tokens as ×N."""
    ids = sample.input_ids.tolist()
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        if ids[i] == image_id:
            while j < len(ids) and ids[j] == image_id and (j < sample.prompt_len) == (i < sample.prompt_len):
                j += 1
            parts.append(f"{IMAGE_TOKEN}\u00d7{j - i}")
        else:
            while j < len(ids) and ids[j] != image_id and (j < sample.prompt_len) == (i < sample.prompt_len):
                j += 1
            parts.append(tokenizer.decode(ids[i:j], skip_special_tokens=False))
        if i >= sample.prompt_len:
            parts[-1] = TRAINED_OPEN + parts[-1] + TRAINED_CLOSE
        i = j
    text = "".join(parts)
    if max_chars is not None and len(text) > max_chars:
        half = max_chars // 2
        text = f"{text[:half]} [... {len(text) - max_chars} characters ...] {text[-half:]}"
    return text


def render_sample(ex: LongThoughtExample | SFTExample, *, prompt: str, system: str | None,
                  chat_template: str = DEFAULT_CHAT_TEMPLATE) -> tuple[str, str]:
    """(prompt text, target text): the target is the response followed by the end-of-turn token."""
    prompt_text = render_chat(build_messages(ex.question, len(ex.images), prompt=prompt, system=system),
                              add_generation_prompt=True, template=chat_template)
    full = render_chat(build_messages(ex.question, len(ex.images), prompt=prompt, system=system,
                                      response=ex.response), template=chat_template)
    if not full.startswith(prompt_text):
        raise RecordError("the chat template does not render the prompt as a prefix of the full conversation",
                          field="question")
    target = full[len(prompt_text):]
    end = target.rfind(END_OF_TURN)
    if end < 0:
        raise RecordError(f"rendered assistant turn does not end with {END_OF_TURN}", field="response")
    found = [t for t in CONTROL_TOKENS if t in ex.response]
    if found:  # an <|image_pad|> here would be scattered an image feature the batch does not have
        raise RecordError(f"example {ex.id!r}: the response contains the chat-template token(s) "
                          f"{', '.join(found)}", field="response")
    return prompt_text, target[: end + len(END_OF_TURN)]  # what follows <|im_end|> is only a newline


def encode_examples(examples: Sequence[LongThoughtExample | SFTExample], processor, *, prompt: str,
                    system: str | None, limits: ImageLimits, chat_template: str = DEFAULT_CHAT_TEMPLATE,
                    progress: bool = True) -> list[Encoded]:
    """Tokenize every example (prompt and target separately) and expand each image placeholder."""
    from tqdm.auto import tqdm

    tok = processor.tokenizer
    image_token_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    out: list[Encoded] = []
    chunk = 256  # the fast tokenizer batches in Rust; chunks keep memory flat on big datasets
    bar = tqdm(total=len(examples), desc="tokenizing", unit="ex", disable=not progress)
    for start in range(0, len(examples), chunk):
        batch = examples[start:start + chunk]
        texts = [render_sample(ex, prompt=prompt, system=system, chat_template=chat_template) for ex in batch]
        prompt_ids = tok([p for p, _ in texts], add_special_tokens=False)["input_ids"]
        target_ids = tok([t for _, t in texts], add_special_tokens=False)["input_ids"]
        for ex, p_ids, t_ids in zip(batch, prompt_ids, target_ids):
            try:
                counts = [image_token_count(processor, p, limits) for p in ex.images]
            except (OSError, ValueError) as e:
                raise RecordError(f"example {ex.id!r}: cannot read image: {e}", field="images") from None
            slots = [i for i, t in enumerate(p_ids) if t == image_token_id]
            if len(slots) != len(ex.images):
                raise RecordError(f"example {ex.id!r}: {len(ex.images)} image(s) but {len(slots)} {IMAGE_TOKEN} "
                                  f"placeholder(s) in the rendered prompt", field="question")
            expanded: list[int] = []
            prev = 0
            for slot, n in zip(slots, counts):
                expanded += p_ids[prev:slot] + [image_token_id] * n
                prev = slot + 1
            expanded += p_ids[prev:]
            ids = np.asarray(expanded + t_ids, dtype=np.int32)
            out.append(Encoded(ex.id, ids, len(expanded), list(ex.images), counts))
        bar.update(len(batch))
    bar.close()
    return out


@dataclass
class Preflight:
    """What the cutoff does to the data, reported before training starts."""

    examples: int = 0
    text_only: int = 0
    with_images: int = 0
    images: int = 0
    image_tokens: int = 0
    cutoff_len: int = 0
    overlong: str = "drop"
    over_cutoff: int = 0
    dropped: int = 0
    dropped_prompt_too_long: int = 0  # prompt alone (with its image tokens) exceeds the cutoff: always dropped
    truncated: int = 0
    response_tokens_cut: int = 0
    kept: int = 0
    trained_tokens: int = 0  # label tokens over the kept samples, per epoch
    eval_samples: int = 0  # the dev set (held out by val_size, or read from eval_files)
    eval_source: str = ""
    length: dict[str, float] = field(default_factory=dict)  # before the cutoff
    over_cutoff_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}

    def lines(self) -> list[str]:
        ln = self.length
        out = [
            (f"pre-flight: {self.examples} examples ({self.text_only} text-only, {self.with_images} with "
             f"{self.images} image(s) = {self.image_tokens} image tokens)"),
            (f"  tokens per sample: min {ln.get('min', 0):.0f}, median {ln.get('median', 0):.0f}, "
             f"p95 {ln.get('p95', 0):.0f}, max {ln.get('max', 0):.0f} (image tokens included)"),
            (f"  max_length {self.cutoff_len}: {self.over_cutoff} sample(s) longer; overlong={self.overlong}: "
             f"{self.dropped} dropped ({self.dropped_prompt_too_long} because the prompt alone is longer), "
             f"{self.truncated} truncated ({self.response_tokens_cut} response tokens cut; image tokens never cut)"),
            f"  training on {self.kept} samples, {self.trained_tokens} trained tokens per epoch",
        ]
        if self.eval_samples:
            out.append(f"  dev set: {self.eval_samples} samples ({self.eval_source})")
        return out


def apply_cutoff(encoded: list[Encoded], cutoff_len: int, overlong: str) -> tuple[list[Encoded], Preflight]:
    """Drop or truncate samples longer than ``cutoff_len``; only response tokens are ever cut."""
    rep = Preflight(examples=len(encoded), cutoff_len=cutoff_len, overlong=overlong)
    lengths = [len(e) for e in encoded]
    if lengths:
        srt = sorted(lengths)
        rep.length = {"min": srt[0], "median": statistics.median(srt), "mean": statistics.fmean(srt),
                      "p95": srt[min(len(srt) - 1, int(0.95 * len(srt)))], "max": srt[-1]}
    kept: list[Encoded] = []
    for e in encoded:
        rep.images += len(e.images)
        rep.image_tokens += sum(e.image_tokens)
        if e.images:
            rep.with_images += 1
        else:
            rep.text_only += 1
        if len(e) > cutoff_len:
            rep.over_cutoff += 1
            rep.over_cutoff_ids.append(e.id)
            if e.prompt_len >= cutoff_len:
                rep.dropped += 1
                rep.dropped_prompt_too_long += 1
                continue
            if overlong == "drop":
                rep.dropped += 1
                continue
            rep.truncated += 1
            rep.response_tokens_cut += len(e) - cutoff_len
            e = Encoded(e.id, e.input_ids[:cutoff_len], e.prompt_len, e.images, e.image_tokens, truncated=True)
        kept.append(e)
        rep.trained_tokens += len(e) - e.prompt_len
    rep.kept = len(kept)
    return kept, rep


class SFTDataset:
    """A map-style dataset of encoded samples; images are decoded and processed when a sample is drawn."""

    def __init__(self, samples: list[Encoded], processor, limits: ImageLimits):
        self.samples = samples
        self.image_processor = processor.image_processor
        self.limits = limits

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        s = self.samples[i]
        item: dict[str, Any] = {"input_ids": torch.from_numpy(s.input_ids.astype(np.int64)),
                                "labels": torch.from_numpy(s.labels())}
        if s.images:
            images = [open_image(p) for p in s.images]
            px = self.image_processor(images=images, size=self.limits.size(), return_tensors="pt")
            merge = self.image_processor.merge_size ** 2
            got = [int(g.prod()) // merge for g in px["image_grid_thw"]]
            if got != s.image_tokens:  # the size-based count and the processor must agree, or tokens misalign
                raise RuntimeError(f"sample {s.id!r}: image tokens {got} from the processor, {s.image_tokens} planned")
            item["pixel_values"] = px["pixel_values"]
            item["image_grid_thw"] = px["image_grid_thw"]
        return item


def dev_count(val_size: float, n: int) -> int:
    """Samples to hold out: a fraction of ``n`` when < 1 (at least one), else a count (LLaMA-Factory's rule)."""
    if val_size <= 0:
        return 0
    k = max(1, round(val_size * n)) if val_size < 1 else int(val_size)
    if k >= n:
        raise ValueError(f"val_size={val_size} holds out {k} of {n} samples: nothing would be left to train on")
    return k


def split_dev(samples: list[Encoded], val_size: float, seed: int) -> tuple[list[Encoded], list[Encoded]]:
    """(train, dev): a seeded random ``val_size`` of the samples held out; both keep the file order."""
    k = dev_count(val_size, len(samples))
    held = set(np.random.default_rng(seed).permutation(len(samples))[:k].tolist())
    return ([s for i, s in enumerate(samples) if i not in held], [s for i, s in enumerate(samples) if i in held])


def _encode_files(files: Sequence[str], cfg, processor, limits: ImageLimits, *, max_samples: int | None,
                  progress: bool) -> tuple[list[Encoded], Preflight]:
    examples = read_examples(files, max_samples)
    if not examples:
        raise ValueError(f"no examples in {list(files)}")
    encoded = encode_examples(examples, processor, prompt=cfg.prompt, system=cfg.system, limits=limits,
                              chat_template=cfg.chat_template, progress=progress)
    kept, report = apply_cutoff(encoded, cfg.max_length, cfg.overlong)
    if not kept:
        raise ValueError(f"every sample of {list(files)} is longer than max_length={cfg.max_length} and was dropped")
    return kept, report


def build_datasets(cfg, processor, *, progress: bool = True) -> tuple[SFTDataset, SFTDataset | None, Preflight]:
    """(train, dev or None, pre-flight report): ``cfg.train_files`` encoded and cut off; the dev set is a seeded
    ``val_size`` of them (held out after the cutoff, so it is made of trainable samples) or ``cfg.eval_files``."""
    if not cfg.train_files:
        raise ValueError("train_files is empty: set train_files=PATH.jsonl (a list is allowed)")
    if cfg.chat_template == "auto":  # virgo.train.sft resolves it from the model's family before this
        raise ValueError("chat_template=auto: resolve it to the model family's template first "
                         "(virgo.modeling.family.resolve_chat_template)")
    limits = ImageLimits.for_processor(processor, cfg.image_min_pixels, cfg.image_max_pixels)
    kept, report = _encode_files(cfg.train_files, cfg, processor, limits, max_samples=cfg.max_samples,
                                 progress=progress)
    dev: list[Encoded] = []
    if cfg.val_size:
        seed = cfg.data_seed if cfg.data_seed is not None else cfg.seed
        kept, dev = split_dev(kept, cfg.val_size, seed)
        report.kept, report.trained_tokens = len(kept), sum(len(e) - e.prompt_len for e in kept)
        report.eval_source = f"val_size={cfg.val_size} of the training samples, seed {seed}"
    elif cfg.eval_files:
        dev, _ = _encode_files(cfg.eval_files, cfg, processor, limits, max_samples=None, progress=progress)
        report.eval_source = ", ".join(map(str, cfg.eval_files))
    report.eval_samples = len(dev)
    return SFTDataset(kept, processor, limits), (SFTDataset(dev, processor, limits) if dev else None), report


def build_dataset(cfg, processor, *, progress: bool = True) -> tuple[SFTDataset, Preflight]:
    """The training set and the pre-flight report (see `build_datasets`)."""
    train, _, report = build_datasets(cfg, processor, progress=progress)
    return train, report


def contamination_warnings(cfg) -> list[str]:
    """`virgo.data.decontaminate.preflight_warnings` for the training files against ``cfg.decontaminate_against``
    (or ``$VIRGO_BENCH_DIR``): one warning per (training file, benchmark) that share an n-gram."""
    import os

    dirs = list(cfg.decontaminate_against) or ([os.environ["VIRGO_BENCH_DIR"]] if os.environ.get("VIRGO_BENCH_DIR")
                                               else [])
    if not dirs:
        return []
    from virgo.data.decontaminate import preflight_warnings

    return preflight_warnings(cfg.train_files, dirs)
