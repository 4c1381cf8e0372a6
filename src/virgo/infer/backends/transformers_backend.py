"""In-process generation with transformers: batched over the KV cache, left padded, sorted by length."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from virgo.infer.backends.base import Backend, ContextLengthError, GenerationFailures
from virgo.infer.config import GenerateConfig
from virgo.infer.generation import Decoder, Encoded, LogitsProcessor, RowSpec
from virgo.infer.requests import GenOutput, GenRequest
from virgo.modeling.family import resolve_chat_template
from virgo.modeling.images import DEFAULT_MAX_PIXELS, ImageLimits, image_token_count, open_image
from virgo.prompts import render_chat


def _count_image_parts(messages: list[dict[str, Any]]) -> int:
    n = 0
    for m in messages:
        if isinstance(m.get("content"), list):
            n += sum(1 for part in m["content"] if isinstance(part, dict) and part.get("type") == "image")
    return n


class TransformersBackend(Backend):
    """``model`` is a checkpoint path or an already-loaded ``(model, processor)`` pair."""

    name = "transformers"

    def __init__(self, model: Any, processor: Any = None, *, dtype: str = "float32",
                 logits_processors: Sequence[LogitsProcessor] = (), trust_remote_code: bool = False,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS):
        if isinstance(model, (tuple, list)):
            model, processor = model
        if isinstance(model, (str, Path)):
            from virgo.modeling.load import load_model, load_processor

            self.model_name = str(model)
            processor = load_processor(model, trust_remote_code=trust_remote_code)
            model = load_model(model, dtype=dtype, trust_remote_code=trust_remote_code)
        else:
            if processor is None:
                raise ValueError("an already-loaded model needs its processor: pass (model, processor)")
            self.model_name = str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
        model.eval()
        self.model = model
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.max_pixels = max_pixels
        self.decoder = Decoder(model, self.tokenizer, logits_processors=logits_processors)
        text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.context_length: int | None = getattr(text_config, "max_position_embeddings", None)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    # -- prompts --------------------------------------------------------------------------------------------

    def prompt_text(self, req: GenRequest, cfg: GenerateConfig) -> str:
        n = _count_image_parts(req.messages)
        if n != len(req.images):
            raise ValueError(f"request {req.id!r}: {n} image placeholder(s) in the messages but "
                             f"{len(req.images)} image(s)")
        template = resolve_chat_template(req.settings(cfg).chat_template, self.model)  # auto: the model family's
        return render_chat(req.messages, add_generation_prompt=True, template=template)

    def encode(self, req: GenRequest, cfg: GenerateConfig) -> Encoded:
        import torch

        text = self.prompt_text(req, cfg)
        if req.images:
            if not hasattr(self.processor, "image_processor"):
                raise ValueError(f"request {req.id!r} has images but {self.model_name} has no image processor")
            images = [open_image(im, max_pixels=self.max_pixels) for im in req.images]
            x = self.processor(text=[text], images=images, return_tensors="pt")
            ids = x["input_ids"][0]
            mm = x.get("mm_token_type_ids")
            mm = mm[0] if mm is not None else (ids == self.model.config.image_token_id).to(torch.int32)
            return Encoded(ids, mm.to(torch.int32), x["pixel_values"], x["image_grid_thw"])
        ids = torch.tensor(self.tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)
        return Encoded(ids, torch.zeros_like(ids, dtype=torch.int32))

    def length_estimate(self, req: GenRequest, cfg: GenerateConfig) -> int:
        """The prompt's length as `encode` makes it, without decoding pixels: for sorting requests.

        Each image (a path, a data URL or an open PIL image) costs what the processor's resize gives for its size
        in place of its one placeholder token. A request that `encode` will refuse (a bad image, one over
        ``max_pixels``) sorts as empty; it fails with a clear error when its batch is encoded.
        """
        try:
            n = len(self.tokenizer(self.prompt_text(req, cfg), add_special_tokens=False)["input_ids"])
            if req.images and hasattr(self.processor, "image_processor"):
                limits = ImageLimits.for_processor(self.processor)  # the processor's own resize
                for im in req.images:
                    n += image_token_count(self.processor, im, limits, max_pixels=self.max_pixels) - 1
        except (ValueError, KeyError, TypeError):
            return 0
        return n

    # -- generation -----------------------------------------------------------------------------------------

    def room(self, req: GenRequest, cfg: GenerateConfig, prompt_tokens: int) -> int:
        """The tokens this request may generate: its ``max_new_tokens``, cut to what the model's context leaves
        after the prompt (rope models run on past it, into positions they never trained on). A prompt that fills
        the context, or one that leaves less than the request's own explicit limit, fails the request."""
        limit = req.settings(cfg).max_new_tokens
        if self.context_length is None:
            return limit
        left = self.context_length - prompt_tokens
        if left <= 0:  # refused before the prefill: a prompt this long would only exhaust memory
            raise ContextLengthError(f"request {req.id!r}: the prompt is {prompt_tokens} tokens, over the model's "
                                     f"context of {self.context_length}", param="messages")
        if limit > left and req.max_tokens_given:  # worded as vLLM's server words it
            raise ContextLengthError(f"'max_tokens' or 'max_completion_tokens' is too large: {limit}. This model's "
                                     f"maximum context length is {self.context_length} tokens and the request has "
                                     f"{prompt_tokens} input tokens ({limit} > {self.context_length} - "
                                     f"{prompt_tokens})", param="max_tokens")
        return min(limit, left)

    def row_spec(self, req: GenRequest, cfg: GenerateConfig, max_new_tokens: int) -> RowSpec:
        """The row's decoding settings; ``max_new_tokens`` is the request's limit cut to the context (`room`)."""
        c = req.settings(cfg)
        return RowSpec(max_new_tokens=max_new_tokens, temperature=c.temperature, top_p=c.top_p, top_k=c.top_k,
                       min_p=c.min_p, presence_penalty=c.presence_penalty, frequency_penalty=c.frequency_penalty,
                       repetition_penalty=c.repetition_penalty, seed=req.resolved_seed(cfg),
                       thinking_budget=c.thinking_budget, force_wait=c.force_wait, stop=tuple(c.stop),
                       on_text=req.on_text,
                       should_stop=req.should_stop)

    def iter_generate(self, requests: Sequence[GenRequest], cfg: GenerateConfig) -> Iterator[tuple[int, GenOutput]]:
        # Longest first: similar lengths decode side by side (little padding), and memory peaks at the start.
        order = collections.deque(sorted(range(len(requests)), key=lambda i: -self.length_estimate(requests[i], cfg)))
        pulled: list[int] = []

        def pull(n: int) -> list[GenRequest]:
            taken = [order.popleft() for _ in range(min(n, len(order)))]
            pulled.extend(taken)
            return [requests[i] for i in taken]

        failures: dict[int, BaseException] = {}
        for j, out in self.iter_generate_pull(pull, cfg):
            if isinstance(out, BaseException):
                failures[pulled[j]] = out
            else:
                yield pulled[j], out
        if failures:
            raise GenerationFailures(failures)

    def iter_generate_pull(self, pull: Callable[[int], Sequence[GenRequest]], cfg: GenerateConfig, *,
                           on_error: Callable[[int, BaseException], None] | None = None,
                           ) -> Iterator[tuple[int, GenOutput | BaseException]]:
        """Continuous batching (`virgo.infer.generation.Decoder.run_continuous`): up to ``cfg.batch_size`` rows
        decode together and ``pull(room)`` fills the room finished rows leave. Yields (index in pull order, output)
        as each request finishes. A bad image or prompt (one over the context) fails its own request only: its
        error goes to ``on_error(index, error)`` the moment it is pulled (a server answers it at once, not when
        the next row finishes), or without one is yielded in place of the output."""
        pulled = 0
        rows: list[tuple[int, RowSpec]] = []  # decoder row -> (request index, its spec)

        def take(n: int) -> list[tuple[Encoded, RowSpec]]:
            nonlocal pulled
            got = []
            while len(got) < n:
                reqs = pull(n - len(got))
                if not reqs:
                    break
                for req in reqs:
                    i, pulled = pulled, pulled + 1
                    try:
                        e = self.encode(req, cfg)
                        spec = self.row_spec(req, cfg, self.room(req, cfg, len(e)))
                    except ValueError as err:
                        if on_error is not None:
                            on_error(i, err)
                        else:
                            failed.append((i, err))
                        continue
                    rows.append((i, spec))
                    got.append((e, spec))
            return got

        failed: list[tuple[int, BaseException]] = []
        for j, res in self.decoder.run_continuous(take, capacity=cfg.batch_size):
            yield from failed
            failed.clear()
            i, spec = rows[j]
            text = res.text if res.text is not None else self._decode(res.token_ids)
            yield i, GenOutput(
                text=text, finish_reason=res.finish_reason, prompt_tokens=res.prompt_tokens,
                completion_tokens=res.completion_tokens, thought_tokens=res.thought_tokens,
                seed=spec.seed, budget_forced=res.budget_forced, waits=res.waits,
                interventions=[{"kind": kind, "offset": min(len(text), len(self._decode(res.token_ids[:at])))}
                               for kind, at in res.interventions],
                token_ids=res.token_ids)
        yield from failed
