"""The demo experiment: base -> Virgo-T (text-only long thoughts) -> self-distillation -> Virgo-SD, Virgo-T+SD.

Every stage is the library a real run uses: `virgo.train.train` for fine-tuning, `virgo.eval.evaluate`
(`virgo.infer.run_generate` + `virgo.grade.grade_many`) for evaluation, `virgo.distill.distill` for the
self-distilled data. Outputs land in one run folder; every stage resumes (a finished model or evaluation is
reused when the command is run again with the same ``--out``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from virgo.demo import recipe
from virgo.demo.data import EVAL_SETS, QUICK, Sizes, build_experiment_data
from virgo.demo.world import read_caption
from virgo.records import Generation, Grade, Problem
from virgo.records.jsonl import read_records
from virgo.thought import BEGIN_THOUGHT

VARIANTS = ("base", "virgo-t", "virgo-sd", "virgo-t+sd", "oracle-visual")


def _gen_config(**kw: Any):
    from virgo.infer import GenerateConfig

    base = dict(max_new_tokens=recipe.MAX_NEW_TOKENS, temperature=0.0, repetition_penalty=recipe.REPETITION_PENALTY,
                prompt="plain", batch_size=50)
    return GenerateConfig(**{**base, **kw})


def set_metrics(problems: list[Problem], gens: list[Generation], grades: list[Grade]) -> dict[str, Any]:
    """Accuracy with its standard error, verdict counts, thinking and perception fidelity for one question set.

    think_rate: the share of outputs that open a thought (whether or not it is well formed);
    mean_thought_tokens: over the outputs whose thought parses (closed, or cut off by the token limit);
    perception_fidelity: among outputs that restate the chart in canonical form, the share whose four values
    are all right (the paper's Table 8 failure: a thought that misreads the image). None when nothing restates.
    """
    truth = {p.id: tuple(p.meta["values"]) for p in problems}
    n = len(grades)
    correct = sum(g.verdict == "correct" for g in grades)
    acc = correct / n if n else 0.0
    verdicts = {v: sum(g.verdict == v for g in grades) for v in ("correct", "wrong", "no_answer", "truncated")}
    opened = [g for g in gens if BEGIN_THOUGHT in g.text]
    thinking = [g for g in gens if g.thought is not None]
    restated = [(g, read_caption(g.thought or g.text)) for g in gens]
    restated = [(g, vals) for g, vals in restated if vals is not None]
    return {
        "accuracy": acc, "n": n, "stderr": math.sqrt(acc * (1 - acc) / n) if n else None,
        "verdicts": verdicts,
        "think_rate": len(opened) / len(gens) if gens else 0.0,
        "well_formed_rate": sum(g.status == "complete" for g in gens) / len(gens) if gens else 0.0,
        "mean_thought_tokens": (sum(g.thought_tokens or 0 for g in thinking) / len(thinking)) if thinking else 0.0,
        "mean_completion_tokens": sum(g.completion_tokens or 0 for g in gens) / len(gens) if gens else 0.0,
        "perception_fidelity": (sum(vals == truth[g.id] for g, vals in restated) / len(restated))
        if restated else None,
        "restate_rate": len(restated) / len(gens) if gens else 0.0,
    }


def evaluate_variant(model_dir: Path, problem_sets: dict[str, list[Problem]], run_dir: Path, *,
                     progress: bool, prompt: str = "plain") -> dict[str, Any]:
    import torch

    from virgo.eval import evaluate
    from virgo.eval.layout import GENERATIONS_FILE, GRADES_FILE

    # Decode steps of a tiny model are too small to split: one thread is about 3x faster than two here.
    torch.set_num_threads(1)
    out = {}
    for name, problems in problem_sets.items():
        d = run_dir / name
        evaluate(str(model_dir), problems, d, _gen_config(prompt=prompt), "default", label=name, progress=progress,
                 report=False)
        gens = read_records(d / GENERATIONS_FILE, Generation)
        grades = read_records(d / GRADES_FILE, Grade)
        out[name] = set_metrics(problems, gens, grades)
    return out


def _train(init: Path, files: list[Path], out: Path, stage: str, *, seed: int, quick_steps: int | None,
           threads: int, progress: bool = True) -> Path:
    from virgo.demo.base import run_stage

    if (out / "model.safetensors").exists():  # finished earlier: resume past it
        return out
    return run_stage(init, files, out, stage, seed=seed, threads=threads, progress=progress, max_steps=quick_steps)


def run(out: Path, base_dir: Path, *, seed: int = 0, quick: bool = False, threads: int = 2, control: bool = False,
        progress: bool = True, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole experiment into ``out``; returns the results dict (also written to results.json).

    ``control`` adds the perfect-teacher variant (about 2 minutes on 2 cores).
    """
    from virgo.distill import distill
    from virgo.distill.config import BandConfig, DistillConfig

    t0 = time.monotonic()
    timings: dict[str, float] = {}
    sizes = QUICK if quick else Sizes()
    say(f"data: building the synthetic world into {out / 'data'}")
    files = build_experiment_data(out / "data", sizes, seed=seed)
    problem_sets = {name: read_records(files[f"eval_{name}"], Problem) for name in EVAL_SETS}

    results: dict[str, Any] = {}

    def evaluate_as(name: str, model: Path) -> None:
        t = time.monotonic()
        say(f"eval: {name}")
        prompt = recipe.BASE_PROMPT if name == "base" else recipe.VARIANT_PROMPT
        results[name] = evaluate_variant(model, problem_sets, out / "eval" / name, progress=progress, prompt=prompt)
        timings[f"eval {name}"] = time.monotonic() - t

    def train_and_evaluate(name: str, train_files: list[Path], what: str) -> Path:
        """Fine-tune the base into variant ``name`` (its recipe stage), then evaluate it."""
        t = time.monotonic()
        say(f"train: {what}")
        model = _train(base_dir, train_files, out / "models" / name, name, seed=seed,
                       quick_steps=recipe.QUICK_STEPS[name] if quick else None, threads=threads, progress=progress)
        timings[f"train {name}"] = time.monotonic() - t
        evaluate_as(name, model)
        return model

    evaluate_as("base", base_dir)
    virgo_t = train_and_evaluate("virgo-t", [files["text_long_thought"]],
                                 "Virgo-T = base + text-only long thoughts (vision tower frozen)")

    t = time.monotonic()
    say(f"distill: Virgo-T rolls out {recipe.SD_SAMPLES} samples on {sizes.sd_problems} visual training problems; "
        "the grader keeps the shortest correct one")
    sd_problems = read_records(files["sd_problems"], Problem)
    sd_cfg = _gen_config(prompt=recipe.VARIANT_PROMPT, n=recipe.SD_SAMPLES, temperature=recipe.SD_TEMPERATURE, top_p=1.0, seed=seed)
    sd = distill(sd_problems, DistillConfig(
        problems=str(files["sd_problems"]), out=str(out / "sd" / "rollouts.jsonl"), teacher=str(virgo_t),
        generate=sd_cfg, bands=BandConfig(band="solved", policy="shortest"), source="virgo-t", progress=progress))
    sd_file = Path(sd["paths"].dataset)
    n_sd = len(sd["examples"])
    timings["distill"] = time.monotonic() - t
    distill_info = {"problems": len(sd_problems), "samples": recipe.SD_SAMPLES, "kept": n_sd,
                    "rollout_accuracy": sd["stats"]["grading"]["teacher"]["accuracy"]}
    say(f"distill: kept {n_sd} of {len(sd_problems)} problems")

    skipped: dict[str, str] = {}
    if n_sd == 0:
        for name in ("virgo-sd", "virgo-t+sd"):
            skipped[name] = "no self-distilled example passed the correctness filter"
    else:
        train_and_evaluate("virgo-sd", [sd_file], "virgo-sd = base + self-distilled visual long thoughts")
        train_and_evaluate("virgo-t+sd", [files["text_long_thought"], sd_file],
                           "virgo-t+sd = base + text + self-distilled long thoughts")

    if control:
        train_and_evaluate("oracle-visual", [files["oracle_visual"]], "control = base + template-written visual long "
                           "thoughts (a perfect teacher, standing in for QVQ)")

    doc = {
        "seed": seed, "quick": quick, "base_model": str(base_dir),
        "variants": results, "skipped": skipped, "self_distillation": distill_info,
        "sizes": sizes.__dict__, "stages": {k: {"data": v, **recipe.stage_settings(k)} for k, v in recipe.VARIANT_STAGES.items()},
        "seconds": {k: round(v, 1) for k, v in timings.items()}, "total_seconds": round(time.monotonic() - t0, 1),
    }
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc
