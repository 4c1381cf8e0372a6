"""The demo's stages as functions a worker process runs (`virgo.demo.jobs`): train a variant, evaluate a model,
self-distill. Arguments and results are plain values (paths as strings), so they pickle and fit in the run log.
``threads`` is the torch thread count the job runs with (set by the worker).

Every stage is the library a real run uses: `virgo.train.train` (through the stage's recipe, `virgo.demo.base`),
`virgo.eval.evaluate` (`virgo.infer` + `virgo.grade`), `virgo.distill.distill`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from virgo.demo import recipe

# Rows decoded together. The tiny model's decode step costs little beside the Python work around it, so larger
# batches amortise that: one evaluation set (200 questions) is one batch. The batch changes the answers only
# through floating-point rounding (padding changes the shapes of the sums).
EVAL_BATCH = 200
DISTILL_BATCH = 200


def gen_config(**kw: Any):
    """The demo's decoding (`recipe`): greedy unless ``kw`` says otherwise."""
    from virgo.infer import GenerateConfig

    base = {"max_new_tokens": recipe.MAX_NEW_TOKENS, "temperature": 0.0,
            "repetition_penalty": recipe.REPETITION_PENALTY, "prompt": "plain", "batch_size": EVAL_BATCH}
    return GenerateConfig(**{**base, **kw})


def train_variant(init: str, train_files: list[str], out: str, stage: str, *, seed: int, max_steps: int | None,
                  progress: bool, recipes: str | None = None, threads: int = 1) -> str:
    """Fine-tune ``init`` into ``out`` with the stage's recipe (``recipes/<stage>.yaml``); returns ``out``."""
    from virgo.demo.base import run_stage

    return str(run_stage(Path(init), [Path(f) for f in train_files], Path(out), stage, seed=seed, threads=threads,
                         progress=progress, max_steps=max_steps, recipes=recipes))


def evaluate_model(model: str, sets: dict[str, str], run_dir: str, *, prompt: str, progress: bool,
                   threads: int = 1) -> None:
    """Greedy answers to each held-out set (name -> problems JSONL), graded, into ``run_dir/<set>``."""
    from virgo.eval import evaluate
    from virgo.records import Problem
    from virgo.records.jsonl import read_records

    for name, problems_file in sets.items():
        evaluate(model, read_records(problems_file, Problem), Path(run_dir) / name, gen_config(prompt=prompt),
                 "default", label=name, progress=progress, report=False)


def self_distill(teacher: str, problems_file: str, out: str, *, part: int, parts: int, seed: int,
                 progress: bool, threads: int = 1) -> dict[str, Any]:
    """The paper's self-distillation on part ``part`` of ``parts`` of the visual training problems (a contiguous
    slice, so the parts' datasets concatenated are in the problems' order): the teacher samples ``SD_SAMPLES``
    rollouts per problem, the grader keeps the shortest correct one. Each problem is distilled on its own (its
    rollouts are seeded by the run's seed, the problem and the sample), so the parts give what one run would.
    Returns what results.json records and the dataset's path."""
    from virgo.distill import distill
    from virgo.distill.config import BandConfig, DistillConfig
    from virgo.records import Problem
    from virgo.records.jsonl import read_records

    problems = read_records(problems_file, Problem)
    problems = problems[len(problems) * part // parts:len(problems) * (part + 1) // parts]
    cfg = gen_config(prompt=recipe.VARIANT_PROMPT, n=recipe.SD_SAMPLES, temperature=recipe.SD_TEMPERATURE, top_p=1.0,
                     seed=seed, batch_size=DISTILL_BATCH)
    sd = distill(problems, DistillConfig(
        problems=problems_file, out=out, teacher=teacher, generate=cfg, progress=progress, source="virgo-t",
        bands=BandConfig(band="solved", policy="shortest")))
    graded = sd["stats"]["grading"]["teacher"]
    return {"problems": len(problems), "samples": recipe.SD_SAMPLES, "kept": len(sd["examples"]),
            "rollouts": graded["n"], "correct_rollouts": graded["verdicts"]["correct"],
            "dataset": str(sd["paths"].dataset)}


def combine_distilled(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The parts of the self-distillation as one: problems, kept and rollout accuracy over all, the datasets in
    order."""
    rollouts = sum(p["rollouts"] for p in parts)
    return {"problems": sum(p["problems"] for p in parts), "samples": parts[0]["samples"],
            "kept": sum(p["kept"] for p in parts),
            "rollout_accuracy": sum(p["correct_rollouts"] for p in parts) / rollouts if rollouts else 0.0,
            "datasets": [p["dataset"] for p in parts]}


def rl_variant(init: str, train_files: list[str], out: str, stage: str, *, seed: int, max_steps: int | None,
               progress: bool, recipes: str | None = None, threads: int = 1) -> str:
    """GRPO from ``init`` (Virgo-T) on the visual training problems with the stage's `virgo rl` recipe
    (``recipes/<stage>.yaml``), into ``out``; returns ``out``."""
    from virgo.demo.base import run_stage

    return str(run_stage(Path(init), [Path(f) for f in train_files], Path(out), stage, seed=seed, threads=threads,
                         progress=progress, max_steps=max_steps, recipes=recipes, rl=True))
