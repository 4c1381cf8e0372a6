"""TRL's ``GRPOTrainer`` with mixed image / text-only batches fixed, and Virgo's checkpoint-resume fix.

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
and a visual prompt per rank, each micro-batch with images on one rank and none on the other.) ZeRO-3 and FSDP2
shard the vision tower, so every rank must run it on every micro-batch; SFT adds a dummy image for that
(`virgo.train.modality`), RL does not yet and refuses those launches for mixed problem sets (see
``src/virgo/rl/README.md``).
"""

from __future__ import annotations

from typing import Any

import trl

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


class GRPOTrainer(RestoreCheckpointWeights, trl.GRPOTrainer):
    """``trl.GRPOTrainer`` for Qwen VL models fed mixed visual and text-only prompts (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The policy and, with beta > 0 and full fine-tuning, TRL's separate reference model both score micro-batches.
        models = [m for m in (self.model, self.ref_model) if m is not None]
        self._empty_image_hooks = [install_empty_image_hook(self.accelerator.unwrap_model(m)) for m in models]

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
