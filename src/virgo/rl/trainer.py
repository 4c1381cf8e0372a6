"""TRL's ``GRPOTrainer`` with mixed image / text-only batches fixed, Virgo's checkpoint-resume fix and tokens/s
in the log (`GRPOTrainer.log`).

Two things break when one batch holds visual and text-only prompts (trl 1.16, transformers 5.23); each is fixed at
the boundary where the two sides disagree, not by dropping text prompts or batching one prompt per step:

1. **The processor call of the scoring pass.** TRL's generation code marks a prompt without images with ``None``
   in its per-prompt image lists (``_tokenize_prompts``); that is what its vLLM paths expect (colocate mode
   indexes ``img_list[0]`` of any list it is given). ``_generate`` hands that list back, and
   ``_generate_and_score_completions`` passes it unchanged to ``processing_class(images=..., text=...)`` to rebuild
   ``pixel_values`` for the log-probability passes, where transformers' processor refuses ``None``
   (``fetch_images``: "only a single or a list of entries is supported but got type=<class 'NoneType'>"). The
   processor's own convention for a sample without images is an empty list. So ``_generate`` here returns the image
   lists with ``[]`` for text-only prompts: after generation (which keeps TRL's ``None``), before the processor and
   the per-sample image counts (``num_images``, which count ``[]`` and ``None`` alike).
2. **A micro-batch without any image.** TRL cuts the generation batch into micro-batches (and the
   log-probability passes into chunks) by slicing ``pixel_values`` / ``image_grid_thw`` per sample; a slice of only
   text-only samples is an empty tensor, and the Qwen VL models fail on empty image inputs (``torch.cat`` of an empty
   list in the vision tower, or a ``repeat_interleave`` size mismatch in Qwen3-VL). Empty image inputs mean "no
   image", so a forward pre-hook on the model that holds the vision tower (`drop_empty_images`, registered on
   ``family.inner(model)`` of the policy and of the reference model, which every forward reaches, PEFT or not)
   removes them before the model sees them.

The vision tower then runs only on the micro-batches that have images. Under DDP the trainable merger may get no
gradient on one rank while another rank's does: TRL sets ``ddp_find_unused_parameters`` for vision-language
models, which keeps the all-reduce paired. One more collective is not: with ``log_multimodal`` TRL gathers the
batch's images only on ranks whose batch has some, so a rank with only text-only prompts skips a ``gather_object``
the others wait in; `virgo.rl.config.RLConfig` turns ``log_multimodal`` off, and `virgo.rl.grpo.check_launch`
refuses it with several ranks and text-only prompts. (Tested: two CPU ranks under torchrun, each step a text-only
and a visual prompt per rank, each micro-batch with images on one rank and none on the other.)

3. **ZeRO-3 and FSDP2** shard the vision tower, so running it is a collective: every rank must run it in every
   forward, in the same order (`virgo.train.modality`). SFT adds a dummy image to the batch; GRPO's scoring rows
   (left-padded prompt + completion, the last ``logits_to_keep`` positions read) have no free slot for one, so
   here the dummy goes through the model's own ``get_image_features``, from hooks on the module that holds the
   vision tower, when a forward has no image (`VisionEveryForward`), at the point of the forward where
   ranks with images run the tower (after the embedding lookup), so the collectives pair. Its features, times
   zero, are added to the embeddings: the result is unchanged and the backward reaches the tower and merger on
   every rank (zero gradients), so their gradient collectives pair too. Decoding steps with a KV cache run no
   tower on any rank and are left alone.
"""

from __future__ import annotations

from typing import Any

import trl

from virgo.train.freeze import unwrap
from virgo.train.modality import DummyImage, needs_vision_every_step
from virgo.train.throughput import TokenMeter, is_training_event
from virgo.train.trainer import RestoreCheckpointWeights

IMAGE_INPUTS = (("pixel_values", "image_grid_thw"), ("pixel_values_videos", "video_grid_thw"))


def drop_empty_images(module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """Forward pre-hook: image (or video) inputs with no image in them are removed, as if none had been given."""
    for pixels, grid in IMAGE_INPUTS:
        g, p = kwargs.get(grid), kwargs.get(pixels)
        if (g is not None and g.numel() == 0) or (p is not None and p.numel() == 0):
            kwargs.pop(grid, None)
            kwargs.pop(pixels, None)
    return args, kwargs


def install_empty_image_hook(model) -> Any:
    """Register `drop_empty_images` on the module that takes the image inputs (the handle removes it)."""
    from virgo.modeling.family import detect

    inner = detect(model).inner(model)
    return inner.register_forward_pre_hook(drop_empty_images, with_kwargs=True)


def _tensors(value) -> list:
    """Every tensor in a model output (tensors, tuples / lists, ModelOutput fields)."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):  # ModelOutput is a dict of its set fields
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _decoding(kwargs: dict[str, Any]) -> bool:
    """A generation step after the prefill: the KV cache already holds tokens (no rank runs the tower then)."""
    cache = kwargs.get("past_key_values")
    return cache is not None and hasattr(cache, "get_seq_length") and cache.get_seq_length() > 0


class VisionEveryForward:
    """Hooks that run the vision tower on a dummy image in a forward that has no image (module docstring, 3), at
    the point where a forward with images runs it: in a scoring or training forward the Qwen VL models embed the
    tokens first, then run the tower, so the dummy runs after the embedding lookup (a pre-hook on the language
    model) and its zeroed features are added to the embeddings; in generate()'s first step the tower ran before the
    forward (its features come in ``mm_encoder_outputs``), so the dummy runs in the model's pre-hook and is added to
    the output."""

    def __init__(self, dummy):
        self.dummy = dummy  # virgo.train.modality.DummyImage
        self.inner = None
        self.armed = False  # this forward has no image: the language model's pre-hook runs the dummy
        self.zero = None  # the dummy's features x 0, for the forward hook (generate()'s first step)

    def install(self, model, inner) -> list:
        self.inner = inner
        # prepend: before DeepSpeed's own hooks (on a model it wrapped already, such as TRL's reference model),
        # which record the module in ZeRO-3's trace; the tower must come before the language model there too. The
        # inner hook is not prepended: it must see the inputs after `drop_empty_images`.
        return [model.register_forward_pre_hook(self.before_model, with_kwargs=True, prepend=True),
                inner.register_forward_pre_hook(self.before, with_kwargs=True),
                inner.language_model.register_forward_pre_hook(self.before_language_model, with_kwargs=True,
                                                               prepend=True),
                inner.register_forward_hook(self.after, with_kwargs=True)]

    def _dummy_zero(self, device):
        out = self.inner.get_image_features(pixel_values=self.dummy.pixel_values.to(device),
                                            image_grid_thw=self.dummy.grid_thw.to(device))
        return sum(t.float().sum() for t in _tensors(out) if t.is_floating_point()) * 0.0

    @staticmethod
    def _imageless(kwargs: dict[str, Any]) -> bool:
        encoded = kwargs.get("mm_encoder_outputs") or {}
        has_images = any(kwargs.get(pixels) is not None for pixels, _ in IMAGE_INPUTS) or any(
            encoded.get(k) is not None for k in ("image", "video"))
        return not has_images and not _decoding(kwargs)

    def before_model(self, module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """generate()'s first step: ranks with images ran the tower before this forward began; so here."""
        self.zero = None
        if kwargs.get("mm_encoder_outputs") is not None and self._imageless(kwargs):
            ref = next((t for t in (kwargs.get("input_ids"), kwargs.get("inputs_embeds")) if t is not None), None)
            self.zero = self._dummy_zero(ref.device if ref is not None else None)
        return args, kwargs

    def before(self, module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """A scoring or training forward: the language model's pre-hook runs the dummy."""
        self.armed = kwargs.get("mm_encoder_outputs") is None and self._imageless(kwargs)
        return args, kwargs

    def before_language_model(self, module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """Between the embedding lookup and the language model: where a forward with images runs the tower. The
        zeroed features join the embeddings here, after the embedding's own output, so the backward too reaches
        the tower before the embedding, as on a rank whose image features are scattered into the embeddings."""
        embeds = kwargs.get("inputs_embeds")
        if not self.armed or embeds is None:
            return args, kwargs
        self.armed = False
        kwargs["inputs_embeds"] = embeds + self._dummy_zero(embeds.device).to(embeds.dtype)
        return args, kwargs

    def after(self, module, args: tuple, kwargs: dict[str, Any], output):
        self.armed = False
        if self.zero is None:
            return output
        zero, self.zero = self.zero, None
        hidden = output.last_hidden_state
        output.last_hidden_state = hidden + zero.to(hidden.dtype)
        return output


class GRPOTrainer(RestoreCheckpointWeights, trl.GRPOTrainer):
    """``trl.GRPOTrainer`` for Qwen VL models fed mixed visual and text-only prompts (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.token_meter = TokenMeter()
        self._tokens_logged: int | None = None  # TRL's token count at the previous training log event
        # The policy and, with beta > 0 and full fine-tuning, TRL's separate reference model both score micro-batches.
        models = [self.accelerator.unwrap_model(m) for m in (self.model, self.ref_model) if m is not None]
        self._empty_image_hooks = [install_empty_image_hook(m) for m in models]
        if needs_vision_every_step(self.args.launch, self.args.world_size, self.args.deepspeed):
            self._empty_image_hooks += [h for m in models for h in self._vision_every_forward(m)]

    def training_step(self, *args, **kwargs):
        if self._tokens_logged is None:  # this session's first step: a resumed run's count is restored by now
            self._tokens_logged = int(self.state.num_input_tokens_seen)
        self.token_meter.mark()
        return super().training_step(*args, **kwargs)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Tokens per second on each training log event, as `virgo train` has them (`virgo.train.throughput`), from
        TRL's count (``num_tokens``: prompts and completions over all processes, added as each batch is
        generated): the interval covers generation, scoring and the update."""
        if self.model.training and self._tokens_logged is not None and is_training_event(logs):
            seen = int(self.state.num_input_tokens_seen)
            fields = self.token_meter.fields(logs, seen - self._tokens_logged, seen)
            fields.pop("num_input_tokens_seen")  # TRL logs it as num_tokens
            logs.update(fields)
            self._tokens_logged = seen
        super().log(logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict=None):
        """Save without TRL's ``ref`` adapter: the frozen copy of the initial adapter that TRL adds to a PEFT model
        as the KL reference is not part of the result, and a resumed run makes it again from the initial adapter.
        Under ZeRO-3 the Trainer gathers only trainable parameters for a PEFT model, so PEFT's save of every adapter
        failed on the frozen ``ref`` (KeyError ``modules_to_save.ref...``) at the end of a LoRA run."""
        configs = getattr(self.accelerator.unwrap_model(self.model), "peft_config", None)
        ref = configs.pop("ref", None) if isinstance(configs, dict) else None
        try:
            super()._save(output_dir, state_dict=state_dict)
        finally:
            if ref is not None:
                configs["ref"] = ref

    def _vision_every_forward(self, model) -> list:
        from virgo.modeling.family import IMAGE_TOKEN, detect

        processor = self.processing_class
        dummy = DummyImage.for_processor(processor.image_processor,
                                         processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
        # the transformers model, under PEFT's wrapper: PeftModel.generate calls its forward, not the wrapper's
        return VisionEveryForward(dummy).install(unwrap(model), detect(model).inner(model))

    def _generate(self, prompts: list):
        out = super()._generate(prompts)
        # (prompt_ids, completion_ids, tool_mask, completions, logprobs, extra_fields, images, tool_images)
        if len(out) != 8:
            raise RuntimeError(f"trl.GRPOTrainer._generate returned {len(out)} values, expected 8: this TRL version "
                               "is not the one virgo.rl.trainer was written for (trl 1.16)")
        images = out[6]
        if images is not None:
            images = [list(imgs) if imgs else [] for imgs in images]
        return (*out[:6], images, out[7])
