"""The decoding loop: batched, left-padded, one token per step over the KV cache, with per-row control.

A plain step loop rather than ``model.generate`` so that every row can carry its own settings (the server
batches unrelated requests), the thinking budget can force and take back tokens, finished rows leave the batch
at once (a long generation is not slowed by rows that stopped early), and text can be streamed per row.

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

from virgo.infer.budget import Markers, ThoughtControl
from virgo.infer.detok import IncrementalDetokenizer
from virgo.infer.requests import TextCallback
from virgo.infer.sampling import apply_repetition_penalty, choose

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
    repetition_penalty: float = 1.0
    seed: int = 0
    thinking_budget: int | None = None
    force_wait: int = 0
    on_text: TextCallback | None = None


@dataclass
class RowResult:
    token_ids: list[int]  # the live output tokens, without the stop token
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int  # live tokens plus the stop token when there is one
    thought_tokens: int
    budget_forced: bool
    waits: int


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
    stopped: bool = False


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
            from virgo.train.packing import rope_index_of

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

    @torch.inference_mode()
    def run(self, encoded: Sequence[Encoded], specs: Sequence[RowSpec]) -> Iterator[tuple[int, RowResult]]:
        """Decode every row; yields (row index, result) as each row finishes (not in input order)."""
        if len(encoded) != len(specs):
            raise ValueError("one RowSpec per prompt")
        if not encoded:
            return
        rows = []
        for i, (e, s) in enumerate(zip(encoded, specs)):
            g = None
            if s.temperature > 0:
                g = torch.Generator().manual_seed(int(s.seed))
            rows.append(_Row(i, s, e.input_ids.tolist(), ThoughtControl(self.markers, s.thinking_budget,
                                                                        s.force_wait), g,
                             detok=IncrementalDetokenizer(self.tok) if s.on_text else None))
        kw, attn, deltas = self._prefill_inputs(encoded)
        mrope = "pixel_values" in kw
        out = self.model(**kw, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        logits = out.logits[:, -1, :].float()
        live = attn.sum(-1)  # tokens each row attends to: the next position before the delta
        vocab = logits.shape[-1]
        # Logits-sized state lives where the logits are; the small per-row state stays on the CPU.
        seen = torch.zeros((len(rows), vocab), dtype=torch.bool, device=logits.device)
        for i, r in enumerate(rows):
            seen[i, [t for t in r.prompt if t < vocab]] = True
        penalty = torch.tensor([r.spec.repetition_penalty for r in rows], dtype=torch.float32, device=logits.device)

        while True:
            scores = logits
            for proc in self.logits_processors:
                scores = proc([r.gen for r in rows], scores)
            if bool((penalty != 1.0).any()):
                scores = apply_repetition_penalty(scores, seen, penalty)
            chosen = choose(scores, [r.spec.temperature for r in rows], [r.spec.top_p for r in rows],
                            [r.generator for r in rows])

            step_col = attn.shape[1]  # the cache column the tokens fed this step will occupy
            feed: list[int] = []
            finished: list[int] = []
            for i, r in enumerate(rows):
                token = r.ctl.forced()
                forced = token is not None
                if not forced:
                    token = chosen[i]
                    if token in self.stop_ids:
                        finished.append(i)
                        r.stopped = True
                        feed.append(self.pad_id)
                        continue
                acc = r.ctl.accept(r.gen, token, forced)
                if acc.rollback:
                    gone = r.cols[len(r.cols) - acc.rollback:]
                    del r.cols[len(r.cols) - acc.rollback:]
                    attn[i, gone] = 0
                    live[i] -= acc.rollback
                    seen[i] = False
                    seen[i, [t for t in r.prompt + r.gen if t < vocab]] = True
                r.cols.append(step_col)
                seen[i, acc.token] = True
                feed.append(acc.token)
                if self._stream(r) is False:
                    finished.append(i)
                    r.stopped = True
                elif len(r.gen) >= r.spec.max_new_tokens:
                    finished.append(i)

            for i in finished:
                r = rows[i]
                self._stream(r, final=True)
                yield r.index, RowResult(
                    token_ids=list(r.gen), finish_reason="stop" if r.stopped else "length",
                    prompt_tokens=len(r.prompt),
                    completion_tokens=len(r.gen) + (1 if r.stopped else 0),
                    thought_tokens=r.ctl.thought_tokens, budget_forced=r.ctl.budget_forced, waits=r.ctl.waits)
            if len(finished) == len(rows):
                return
            if finished:
                keep = [i for i in range(len(rows)) if i not in set(finished)]
                idx = torch.tensor(keep, dtype=torch.long)
                cache.batch_select_indices(idx.to(self.device))
                rows = [rows[i] for i in keep]
                feed = [feed[i] for i in keep]
                attn, live, deltas = attn[idx], live[idx], deltas[idx]
                seen, penalty = seen[idx.to(seen.device)], penalty[idx.to(seen.device)]

            attn = torch.cat([attn, torch.ones((len(rows), 1), dtype=attn.dtype)], dim=1)
            pos = (live + deltas).view(-1, 1)
            position_ids = pos.view(1, -1, 1).expand(3, -1, 1) if mrope else pos
            out = self.model(input_ids=torch.tensor(feed, dtype=torch.long, device=self.device)[:, None],
                             attention_mask=attn.to(self.device), position_ids=position_ids.to(self.device),
                             past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logits = out.logits[:, -1, :].float()
            live += 1

    def _stream(self, r: _Row, final: bool = False) -> bool | None:
        """Send a row's new text to its callback; held-back tokens (a possible partial end marker) wait."""
        if r.detok is None:
            return None
        if final:
            text = r.detok.flush(r.gen)
        else:
            upto = len(r.gen) - r.ctl.holdback(r.gen)
            text = r.detok.step(r.gen[:upto])
        if text:
            return r.spec.on_text(text)
        return None
