"""Generation-based evaluation during training: the model generates on a benchmark slice, our grader scores it.

The paper picked its checkpoint (epoch 5 of 10) by how it reasons, not by its dev loss; this runs the same kind of
measurement at every evaluation of the Trainer (``eval_strategy``), after the dev loss, and adds ``eval_accuracy``
(and ``eval_correct``, ``eval_gen_items``) to the metrics, so ``metric_for_best_model: eval_accuracy`` selects the
checkpoint by it. Each evaluation is an ordinary `virgo eval` run folder (``OUTPUT_DIR/gen_eval/step-N``:
problems, generations, grades, metrics), made by `virgo.eval.run.evaluate` with the transformers backend on the
model in memory, greedy, with the configured thinking budget.

Where the weights live decides how: a single process or DDP generates with the training model itself (switched to
eval mode and back); under ZeRO-3 or FSDP2 every rank takes part in gathering the full weights, and the main rank
generates on a copy built from them. Only the main rank generates and grades; the metrics are then broadcast, so
every rank's Trainer sees the same numbers (the best-checkpoint bookkeeping runs on every rank).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virgo.modeling.load import set_use_cache as _use_cache
from virgo.records import Problem

OUT_DIR = "gen_eval"


@dataclass
class GenerationEval:
    problems: list[Problem]
    out_dir: Path
    generate: dict[str, Any]  # decoding settings (virgo.infer.GenerateConfig's fields), given to virgo.eval
    grade: Any  # virgo.grade.config.GradeConfig
    profile: str
    processor: Any
    benchmark: str | None = None
    split: str | None = None

    @classmethod
    def from_config(cls, cfg: Any, processor: Any) -> GenerationEval | None:
        """From the ``gen_eval_*`` fields of a `virgo.train.config.TrainConfig`; None when not asked for."""
        if not cfg.gen_eval_benchmark:
            return None
        from virgo.grade.config import GradeConfig

        problems, profile, split = load_problems(cfg)
        generate = {"max_new_tokens": cfg.gen_eval_max_new_tokens, "prompt": cfg.gen_eval_prompt or cfg.prompt,
                    "system": cfg.system, "chat_template": cfg.chat_template, "batch_size": cfg.gen_eval_batch_size,
                    "thinking_budget": cfg.gen_eval_thinking_budget, "seed": cfg.seed}
        grade = GradeConfig(profile=cfg.gen_eval_profile or profile, workers=cfg.gen_eval_workers)
        return cls(problems, Path(cfg.output_dir) / OUT_DIR, generate, grade, grade.profile or "default", processor,
                   benchmark=Path(cfg.gen_eval_benchmark).stem, split=split)

    def describe(self) -> str:
        budget = self.generate["thinking_budget"]
        budget = "none" if budget is None else budget
        return (f"generation-based evaluation: {len(self.problems)} item(s) of {self.benchmark}"
                f"{f' ({self.split})' if self.split else ''}, grading profile {self.profile}, up to "
                f"{self.generate['max_new_tokens']} new tokens, thinking budget {budget}")

    def run(self, trainer: Any) -> dict[str, float]:
        """Generate and grade with the trainer's current weights; every rank calls it, every rank gets the metrics."""
        from virgo.eval.run import evaluate

        step = trainer.state.global_step
        with generation_model(trainer) as model:
            metrics: dict[str, float] = {}
            if trainer.is_world_process_zero():
                m = evaluate((model, self.processor), self.problems, self.out_dir / f"step-{step}", self.generate,
                             self.profile, benchmark=self.benchmark, split=self.split, grade=self.grade,
                             workers=self.grade.workers, progress=False, report=False)
                metrics = {"eval_accuracy": float(m["accuracy"] or 0.0), "eval_correct": float(m["correct"]),
                           "eval_gen_items": float(m["n"])}
        return broadcast(metrics)


def load_problems(cfg: Any) -> tuple[list[Problem], str, str | None]:
    """(problems, grading profile, split) of ``cfg.gen_eval_benchmark``: a Problem JSONL file, or a registered
    benchmark read from ``cfg.gen_eval_data_dir``; a seeded subset of ``cfg.gen_eval_limit`` items."""
    from virgo.eval.registry import get_benchmark, select
    from virgo.records import read_records

    name = cfg.gen_eval_benchmark
    if name.endswith(".jsonl"):
        if not Path(name).is_file():
            raise FileNotFoundError(f"gen_eval_benchmark: {name} not found")
        problems, profile, split = read_records(name, Problem), "default", None
    else:
        spec = get_benchmark(name)
        split = cfg.gen_eval_split or spec.default_split
        problems, profile = spec.load_full(cfg.gen_eval_data_dir, split).problems, spec.profile
    if not problems:
        raise ValueError(f"gen_eval_benchmark {name!r}: no items")
    return select(problems, cfg.gen_eval_limit, seed=cfg.seed), profile, split


@contextmanager
def generation_model(trainer: Any) -> Iterator[Any]:
    """The trainer's model ready to generate on the main rank (None elsewhere), restored afterwards."""
    from virgo.train import fsdp

    tr = trainer
    if fsdp.is_sharded(tr.model) or tr.is_deepspeed_enabled:
        if hasattr(tr.accelerator.unwrap_model(tr.model), "peft_config"):
            raise ValueError("generation-based evaluation of a LoRA model under zero3/fsdp2 is not supported: "
                             "evaluate the saved checkpoints with `virgo eval` instead")
        # Both gathers are collectives: every rank takes part, the main rank gets the weights.
        state = fsdp.full_state_dict(tr.model) if fsdp.is_sharded(tr.model) else \
            tr.accelerator.get_state_dict(tr.model_wrapped)
        yield _fresh_copy(tr.accelerator.unwrap_model(tr.model), state) if tr.is_world_process_zero() else None
        return
    if not tr.is_world_process_zero():
        yield None
        return
    model = tr.accelerator.unwrap_model(tr.model)
    model.eval()
    _use_cache(model, True)
    try:
        yield model
    finally:
        model.train()
        _use_cache(model, False)  # training runs without a KV cache


def _fresh_copy(model: Any, state_dict: dict[str, Any]) -> Any:
    """A plain (unsharded) model of the same class and config, holding ``state_dict``."""
    import torch

    from virgo.train.fsdp import unsharded_class

    with torch.device("cpu"):
        copy = unsharded_class(model)._from_config(model.config, dtype=next(iter(state_dict.values())).dtype)
    missing, unexpected = copy.load_state_dict(state_dict, strict=False)
    tied = set(getattr(copy, "_tied_weights_keys", None) or ())  # a tied head may be gathered under one name
    if unexpected or set(missing) - tied:
        raise RuntimeError(f"gathered weights do not fit {type(model).__name__}: missing {sorted(missing)[:5]}, "
                           f"unexpected {sorted(unexpected)[:5]}")
    copy.tie_weights()
    _use_cache(copy, True)
    return copy.eval()


def broadcast(metrics: dict[str, float]) -> dict[str, float]:
    """The main rank's metrics on every rank."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return metrics
    box = [metrics]
    dist.broadcast_object_list(box, src=0)
    return box[0]
