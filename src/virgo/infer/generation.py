"""The decoding loop: batched, left-padded, one token per step over the KV cache, with per-row control.

A plain step loop rather than ``model.generate`` so that every row can carry its own settings (the server
batches unrelated requests), the thinking budget can force and take back tokens, finished rows leave the batch
at once and new rows take their place (continuous batching: prefilled together, their KV cache left-padded to the
batch's width or the batch's to theirs, then concatenated), and text can be streamed per row. Why not
transformers' own continuous batching (``generate_batch``, paged attention): its requests are token ids only (no
images, no M-RoPE positions), and it has no place for the thought control's forcing and taking back.

Positions are passed explicitly. Qwen2-VL rotates with 3-D M-RoPE positions; the prompt's come from the
model's ``get_rope_index`` (images take grid coordinates), and every later token of a row sits at
``live tokens + delta``, where delta is the gap that function reports. Tokens taken back by budget forcing are
masked out of the attention and do not advance the position, so the result is as if they were never generated.
Greedy output equals ``model.generate`` (tests/test_infer_generation.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from virgo.infer.batch import Batch
from virgo.infer.budget import Markers, ThoughtControl
from virgo.infer.detok import IncrementalDetokenizer
from virgo.infer.requests import StopCheck, TextCallback
from virgo.infer.sampling import apply_presence_frequency, apply_repetition_penalty, choose
from virgo.infer.stops import StopMatcher

# A logits processor here sees each row's generated tokens so far (a list per row) and the [B, V] scores.
LogitsProcessor = Callable[[list[list[int]], torch.Tensor], torch.Tensor]


@dataclass
class Encoded:
    """Model inputs of one prompt, unpadded."""

    input_ids: torch.Tensor  # [L] long
    mm_token_type_ids: torch.Tensor  # [L] int (0 text, 1 image)
    pixel_values: torch.Tensor | None = None
    image_grid_thw: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass
class RowSpec:
    """Decoding settings of one row."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int = 0
    thinking_budget: int | None = None
    force_wait: int = 0
    stop: tuple[str, ...] = ()  # stop strings: the row ends where one appears, the text before it
    on_text: TextCallback | None = None
    should_stop: StopCheck | None = None  # asked before every step; True drops the row ("cancelled")


@dataclass
class RowResult:
    token_ids: list[int]  # the live output tokens, without the stop token
    finish_reason: str  # "stop" | "length" | "cancelled"
    prompt_tokens: int
    completion_tokens: int  # live tokens plus the stop token when there is one
    thought_tokens: int
    budget_forced: bool
    waits: int
    interventions: list[tuple[str, int]] = field(default_factory=list)  # (kind, token index) of forced text
    text: str | None = None  # the text up to a stop string, when one ended the row (the tokens run past it)


@dataclass
class _Row:
    index: int  # position in the caller's list
    spec: RowSpec
    prompt: list[int]
    ctl: ThoughtControl
    generator: torch.Generator | None
    gen: list[int] = field(default_factory=list)
    cols: list[int] = field(default_factory=list)  # cache column of each live token
    detok: IncrementalDetokenizer | None = None
    stops: StopMatcher | None = None
    stopped: bool = False
    matched: bool = False  # ended by a stop string (no stop token to count)
    cancelled: bool = False


def _result(r: _Row) -> RowResult:
    return RowResult(token_ids=list(r.gen),
                     finish_reason="cancelled" if r.cancelled else "stop" if r.stopped or r.matched else "length",
                     prompt_tokens=len(r.prompt),
                     completion_tokens=len(r.gen) + (1 if r.stopped and not r.matched else 0),
                     thought_tokens=r.ctl.thought_tokens, budget_forced=r.ctl.budget_forced, waits=r.ctl.waits,
                     interventions=list(r.ctl.interventions), text=r.stops.output if r.matched else None)


def stop_token_ids(model, tokenizer) -> set[int]:
    """End of turn, the tokenizer's EOS and whatever the checkpoint's generation config calls EOS."""
    from virgo.prompts import END_OF_TURN

    ids = {tokenizer.convert_tokens_to_ids(END_OF_TURN)}
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    unk = tokenizer.unk_token_id
    return {i for i in ids if i is not None and i != unk}


class Decoder:
    """Runs batches of `Encoded` prompts to completion on a loaded model."""

    def __init__(self, model, tokenizer, *, logits_processors: Sequence[LogitsProcessor] = ()):
        self.model = model
        self.tok = tokenizer
        self.markers = Markers.from_tokenizer(tokenizer)
        self.stop_ids = stop_token_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.logits_processors = list(logits_processors)
        self.device = next(model.parameters()).device

    # -- prompt ---------------------------------------------------------------------------------------------

    def _prefill_inputs(self, rows: Sequence[Encoded]) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """Left-padded batch inputs, the attention mask and each row's M-RoPE delta."""
        width = max(len(r) for r in rows)
        b = len(rows)
        ids = torch.full((b, width), self.pad_id, dtype=torch.long)
        mm = torch.zeros((b, width), dtype=torch.int32)
        attn = torch.zeros((b, width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r)
            ids[i, width - n:] = r.input_ids
            mm[i, width - n:] = r.mm_token_type_ids
            attn[i, width - n:] = 1
        with_images = [r for r in rows if r.pixel_values is not None]
        kw: dict = {}
        if with_images:
            from virgo.modeling.family import rope_index_of

            grid = torch.cat([r.image_grid_thw for r in with_images])
            positions, deltas = rope_index_of(self.model)(ids, mm_token_type_ids=mm, image_grid_thw=grid,
                                                          attention_mask=attn)
            kw.update(pixel_values=torch.cat([r.pixel_values for r in with_images]).to(self.device),
                      image_grid_thw=grid.to(self.device), mm_token_type_ids=mm.to(self.device),
                      position_ids=positions.to(self.device))
            deltas = deltas.view(-1).to(torch.long)
        else:
            kw["position_ids"] = (attn.cumsum(-1) - 1).clamp(min=0).to(self.device)
            deltas = torch.zeros(b, dtype=torch.long)
        kw.update(input_ids=ids.to(self.device), attention_mask=attn.to(self.device))
        return kw, attn, deltas

    # -- the loop -------------------------------------------------------------------------------------------

    def _rows(self, encoded: Sequence[Encoded], specs: Sequence[RowSpec], first: int = 0) -> list[_Row]:
        rows = []
        for i, (e, s) in enumerate(zip(encoded, specs), start=first):
            g = torch.Generator().manual_seed(int(s.seed)) if s.temperature > 0 else None
            rows.append(_Row(i, s, e.input_ids.tolist(), ThoughtControl(self.markers, s.thinking_budget,
                                                                        s.force_wait), g,
                             detok=IncrementalDetokenizer(self.tok) if s.on_text or s.stop else None,
                             stops=StopMatcher(s.stop) if s.stop else None))
        return rows

    def run(self, encoded: Sequence[Encoded], specs: Sequence[RowSpec]) -> Iterator[tuple[int, RowResult]]:
        """Decode every row together; yields (row index, result) as each row finishes (not in input order)."""
        if len(encoded) != len(specs):
            raise ValueError("one RowSpec per prompt")
        waiting = list(zip(encoded, specs))

        def pull(n: int) -> list[tuple[Encoded, RowSpec]]:
            taken, waiting[:] = waiting[:n], waiting[n:]
            return taken

        yield from self.run_continuous(pull, capacity=max(1, len(waiting)))

    def _admit(self, b: Batch | None, logits: torch.Tensor | None, new: Sequence[tuple[Encoded, RowSpec]],
               first: int) -> tuple[Batch, torch.Tensor]:
        """Prefill ``new`` rows (indices from ``first``) together and take them into the running batch ``b``."""
        encoded, specs = [e for e, _ in new], [s for _, s in new]
        rows = self._rows(encoded, specs, first)
        kw, attn, deltas = self._prefill_inputs(encoded)
        out = self.model(**kw, use_cache=True, logits_to_keep=1)
        fresh = out.logits[:, -1, :].float()
        vocab = fresh.shape[-1]
        # Logits-sized state lives where the logits are; the small per-row state stays on the CPU.
        seen = torch.zeros((len(rows), vocab), dtype=torch.bool, device=fresh.device)
        for i, r in enumerate(rows):
            seen[i, [t for t in r.prompt if t < vocab]] = True
        nb = Batch(rows, out.past_key_values, attn, attn.sum(-1), deltas, seen,
                    torch.tensor([r.spec.repetition_penalty for r in rows], dtype=torch.float32,
                                 device=fresh.device), mrope="pixel_values" in kw)
        if any(r.spec.presence_penalty or r.spec.frequency_penalty for r in rows):
            nb.counts = torch.zeros((len(rows), vocab), dtype=torch.float32, device=fresh.device)
            nb.presence = torch.tensor([r.spec.presence_penalty for r in rows], dtype=torch.float32,
                                       device=fresh.device)
            nb.frequency = torch.tensor([r.spec.frequency_penalty for r in rows], dtype=torch.float32,
                                        device=fresh.device)
        if b is None:
            return nb, fresh
        b.merge(nb)
        return b, torch.cat([logits, fresh])

    @torch.inference_mode()
    def run_continuous(self, pull: Callable[[int], Sequence[tuple[Encoded, RowSpec]]],
                       capacity: int) -> Iterator[tuple[int, RowResult]]:
        """Continuous batching: up to ``capacity`` rows decode together, and before every step the room that
        finished rows left is offered to ``pull(room)``, whose rows are prefilled together and join the batch (a
        long thought no longer holds the rows behind it until the whole batch is done). Row indices count the
        rows in the order they were pulled; yields (row index, result) as each row finishes. Ends when no row is
        left and ``pull`` gives none. Caches that are not plain per-layer key / value tensors (sliding-window
        layers) take new rows only into an empty batch."""
        b: Batch | None = None
        logits: torch.Tensor | None = None
        pulled = 0
        while True:
            room = capacity - (len(b.rows) if b is not None else 0)
            new = pull(room) if room > 0 and (b is None or b.mergeable) else []
            if new:
                b, logits = self._admit(b, logits, new, pulled)
                pulled += len(new)
            if b is None:
                return
            vocab = logits.shape[-1]
            scores = logits
            for proc in self.logits_processors:
                scores = proc([r.gen for r in b.rows], scores)
            if bool((b.penalty != 1.0).any()):
                scores = apply_repetition_penalty(scores, b.seen, b.penalty)
            if b.counts is not None:
                scores = apply_presence_frequency(scores, b.counts, b.presence, b.frequency)
            chosen = choose(scores, [r.spec.temperature for r in b.rows], [r.spec.top_p for r in b.rows],
                            [r.generator for r in b.rows], top_ks=[r.spec.top_k for r in b.rows],
                            min_ps=[r.spec.min_p for r in b.rows])
            feed: list[int] = []
            finished: list[int] = []
            step_col = b.attn.shape[1]  # the cache column the tokens fed this step will occupy
            for i, r in enumerate(b.rows):
                token, done = self._advance(b, i, r, chosen[i], step_col, vocab)
                feed.append(token)
                if done:
                    finished.append(i)
            for i in finished:
                r = b.rows[i]
                if not r.cancelled:
                    self._stream(r, final=True)
                yield r.index, _result(r)
            if len(finished) == len(b.rows):
                b = logits = None  # the cache goes with the last row; new rows start a batch of their own
                continue
            if finished:
                keep = [i for i in range(len(b.rows)) if i not in set(finished)]
                b.keep(keep, self.device)
                if b.mergeable:  # plain key / value tensors: their columns can be cut
                    b.trim()
                feed = [feed[i] for i in keep]
            b.attn = torch.cat([b.attn, torch.ones((len(b.rows), 1), dtype=b.attn.dtype)], dim=1)
            pos = (b.live + b.deltas).view(-1, 1)
            position_ids = pos.view(1, -1, 1).expand(3, -1, 1) if b.mrope else pos
            out = self.model(input_ids=torch.tensor(feed, dtype=torch.long, device=self.device)[:, None],
                             attention_mask=b.attn.to(self.device), position_ids=position_ids.to(self.device),
                             past_key_values=b.cache, use_cache=True)
            b.cache = out.past_key_values
            logits = out.logits[:, -1, :].float()
            b.live += 1

    def _advance(self, b: Batch, i: int, r: _Row, chosen: int, step_col: int, vocab: int) -> tuple[int, bool]:
        """One row's step: cancelled, forced by the thought control, stopped, or the sampled token; returns (the
        token to feed, whether the row is finished)."""
        if r.spec.should_stop is not None and r.spec.should_stop():
            r.cancelled = True
            return self.pad_id, True
        token = r.ctl.forced()
        forced = token is not None
        if not forced:
            token = chosen
            if token in self.stop_ids:
                r.stopped = True
                return self.pad_id, True
        acc = r.ctl.accept(r.gen, token, forced)
        if acc.rollback:  # a multi-token end marker taken back: mask its columns as if never generated
            gone = r.cols[len(r.cols) - acc.rollback:]
            del r.cols[len(r.cols) - acc.rollback:]
            b.attn[i, gone] = 0
            b.live[i] -= acc.rollback
            b.seen[i] = False
            b.seen[i, [t for t in r.prompt + r.gen if t < vocab]] = True
        r.cols.append(step_col)
        b.seen[i, acc.token] = True
        if b.counts is not None:  # the output so far (r.gen holds acc.token by now)
            if acc.rollback:
                b.counts[i] = torch.bincount(torch.tensor([t for t in r.gen if t < vocab], dtype=torch.long),
                                             minlength=vocab).to(b.counts)
            elif acc.token < vocab:
                b.counts[i, acc.token] += 1
        if self._stream(r) is False or r.matched:
            r.stopped = True
            return acc.token, True
        return acc.token, len(r.gen) >= r.spec.max_new_tokens

    def _stream(self, r: _Row, final: bool = False) -> bool | None:
        """Send a row's new text to its callback and its stop strings; held-back tokens (a possible partial end
        marker) wait, and so does text a stop string may still claim."""
        if r.detok is None:
            return None
        if final:
            text = r.detok.flush(r.gen)
        else:
            upto = len(r.gen) - r.ctl.holdback(r.gen)
            text = r.detok.step(r.gen[:upto])
        if r.stops is not None:
            text = r.stops.feed(text) + (r.stops.finish() if final else "")
            r.matched = r.stops.at is not None
        if text and r.spec.on_text is not None:
            return r.spec.on_text(text)
        return None
