"""FSDP2 that really runs without GPUs: torch's ``fully_shard`` on the model family's units, under torchrun.

accelerate's FSDP plugin silently falls back to DDP on CPU (docs: feasibility sections 4 and 7), so
``launch=fsdp2`` on CPU shards the model here, with torch's own API, before the Trainer sees it: every unit of
``Family.fsdp_units`` (vision blocks, then the whole vision tower, which ``generate`` calls outside the root's
forward, then the decoder layers), then the root, over a one-dimensional device mesh of all ranks. Parameters
become ``DTensor`` s placed ``Shard(0)``.

The Trainer then runs its usual loop on that model (`virgo.train.trainer.SFTTrainer`). What has to differ:

- accelerate must not wrap the model in DDP: it refuses DTensor parameters ("incompatible with DDP") unless the
  model is marked as already prepared (``_is_accelerate_prepared``, accelerate's own guard against double
  wrapping, which makes ``prepare_model`` return the model as is). transformers 5.23's own route for a model
  sharded beforehand (``is_distributed_loading_by_transformers``) is tied to ``from_pretrained(distributed_config=
  ...)`` and refuses checkpoints with optimizer state, so it does not fit.
- saving gathers the full state dict on every rank (``get_model_state_dict(full_state_dict=True,
  cpu_offload=True)``), and the main rank writes a plain HF model dir from it; checkpoints also hold the full
  optimizer state (``get_optimizer_state_dict``), so a resumed run continues exactly. Resuming loads both back
  with ``set_model_state_dict`` / ``set_optimizer_state_dict``.
- bf16 mixed precision is FSDP2's ``MixedPrecisionPolicy`` (bf16 compute, fp32 reduction and master weights),
  since accelerate's autocast wrapper is skipped for a prepared model.

Gradient accumulation reduce-scatters after every micro-batch (accelerate's ``no_sync`` is DDP's), which costs
communication but not correctness.

On GPUs ``virgo train --launch fsdp2`` goes through ``accelerate launch`` with ``recipes/launch/fsdp2.yaml``
(accelerate's FSDP2 plugin, which does run there); `wrap_class_names` gives it the family's unit classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

OPTIMIZER_NAME = "optimizer.pt"  # transformers' name for the optimizer state in a checkpoint


def is_sharded(model: Any) -> bool:
    """Whether ``model`` was sharded by FSDP2's ``fully_shard`` (its class becomes an ``FSDPModule``)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def unsharded_class(model: Any) -> type:
    """The model's own class (``fully_shard`` swaps a module's class for ``FSDP<Name>(FSDPModule, Name)``)."""
    from torch.distributed.fsdp import FSDPModule

    return next(c for c in type(model).__mro__ if not issubclass(c, FSDPModule)) if is_sharded(model) else type(model)


def shard(model: Any, *, device: Any = None, bf16: bool = False) -> Any:
    """``fully_shard`` the family's units, then the root, over all ranks; returns the same (now sharded) model."""
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    from virgo.modeling.family import detect

    if not dist.is_initialized():
        raise RuntimeError("FSDP2 needs the process group: start the ranks with torchrun (virgo train -n N)")
    device = torch.device(device or "cpu")
    if device.type != "cpu":
        model.to(device)
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    kwargs: dict[str, Any] = {"mesh": mesh}
    if bf16:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for unit in detect(model).fsdp_units(model):
        fully_shard(unit, **kwargs)
    fully_shard(model, **kwargs)
    if hasattr(model, "generate"):
        register_fsdp_forward_method(model, "generate")  # generate() gathers the root's shards like forward()
    model._is_accelerate_prepared = True  # accelerate: do not wrap (DDP) or move it again
    return model


def _options(**kw: Any):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kw)


def full_state_dict(model: Any) -> dict[str, Any]:
    """The whole model's state dict as plain CPU tensors; a collective: every rank must call it."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model, options=_options(cpu_offload=True))


def without_tied_copies(model: Any, state_dict: dict[str, Any]) -> dict[str, Any]:
    """The state dict minus the targets of tied weights (``lm_head.weight`` when tied to the embeddings).

    The gather returns a tied weight once per name as separate tensors, so ``save_pretrained`` cannot see that they
    are one; dropping the copy makes the file hold exactly what an unsharded save holds.
    """
    tied = getattr(model, "all_tied_weights_keys", None) or {}
    return {k: v for k, v in state_dict.items() if not (k in tied and tied[k] in state_dict)}


def load_full_state_dict(model: Any, state_dict: dict[str, Any]) -> None:
    """Load a full (unsharded) state dict into the sharded model; every rank passes the same dict."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    set_model_state_dict(model, state_dict, options=_options())


def save_optimizer(model: Any, optimizer: Any, output_dir: str | Path, *, is_main: bool) -> None:
    """Gather the optimizer state (collective) and write it on the main rank."""
    import torch
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    state = get_optimizer_state_dict(model, _torch_optimizer(optimizer), options=_options(cpu_offload=True))
    if is_main:
        torch.save(state, Path(output_dir) / OPTIMIZER_NAME)


def load_optimizer(model: Any, optimizer: Any, checkpoint: str | Path) -> bool:
    """Load a checkpoint's full optimizer state into the sharded optimizer (every rank reads the file); False when
    the checkpoint has none."""
    import torch
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    path = Path(checkpoint) / OPTIMIZER_NAME
    if not path.is_file():
        return False
    state = torch.load(path, map_location="cpu", weights_only=True)
    set_optimizer_state_dict(model, _torch_optimizer(optimizer), state, options=_options())
    return True


def _torch_optimizer(optimizer: Any) -> Any:
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps the torch one


def wrap_class_names(model_path: str) -> list[str]:
    """Class names of the family's FSDP units for ``model_path`` (accelerate's ``transformer_layer_cls_to_wrap``):
    the model is built on the meta device from its config, so no weights are read."""
    import torch
    from transformers import AutoConfig

    from virgo.modeling.family import detect

    family = detect(model_path)
    config = AutoConfig.from_pretrained(model_path)
    with torch.device("meta"):
        model = family.model_cls._from_config(config)
    names: list[str] = []
    for unit in family.fsdp_units(model):
        if type(unit).__name__ not in names:
            names.append(type(unit).__name__)
    return names
