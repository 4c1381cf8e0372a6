"""The demo experiment: base -> Virgo-T (text-only long thoughts) -> self-distillation -> Virgo-SD, Virgo-T∪SD.

The stages are jobs (`virgo.demo.jobs`) with dependencies, run on ``workers`` processes (Virgo-T's training on
both cores, every other stage on one), the critical path first:

    train virgo-t ──> distill 1/2, 2/2 ──> train virgo-t+sd ──> eval virgo-t+sd
          │                           └──> train virgo-sd ───> eval virgo-sd
          └──> eval virgo-t
    eval base;  (--control) train oracle-visual ──> eval oracle-visual
    (--rl) train virgo-t ──> train virgo-t+rl (GRPO) ──> eval virgo-t+rl

Every stage is the library a real run uses (`virgo.demo.stages`). Outputs land in one run folder; a rerun with the
same ``--out`` reuses every finished stage (its model, evaluation or self-distilled data) with the time it took
(``stages.jsonl``). Another variant, say one more training stage that starts from Virgo-T, is two more jobs in
`plan`: its training (depending on ``train virgo-t``) and its evaluation; its data in `recipe.VARIANT_STAGES` and
its name in ``VARIANTS``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from virgo.demo import recipe, stages
from virgo.demo.data import EVAL_SETS, QUICK, Sizes, build_experiment_data
from virgo.demo.jobs import Job, Outcome, run_jobs
from virgo.demo.world import read_caption
from virgo.eval.layout import GENERATIONS_FILE, GRADES_FILE
from virgo.records import Generation, Grade, Problem
from virgo.records.jsonl import read_records
from virgo.thought import BEGIN_THOUGHT

VARIANTS = ("base", "virgo-t", "virgo-sd", "virgo-t+sd", "oracle-visual", "virgo-t+rl")
# The self-distillation in two halves, two jobs: it is on the critical path (after Virgo-T, before Virgo-SD and
# Virgo-T∪SD) and nothing else is ready to run beside it but one evaluation.
DISTILL_JOBS = ("distill 1/2", "distill 2/2")
# Virgo-T, alone on the critical path, trains on both cores; Virgo-T∪SD and Virgo-SD, ready at the same moment,
# train side by side on one core each: a step on 2 threads is only 1.4x one on 1 thread (the matrices are 128
# wide), so two 1-thread trainings do more per second. Generation always runs on one core.
TRAIN_THREADS = 2


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


def variant_metrics(run_dir: Path, files: dict[str, Path]) -> dict[str, Any]:
    """Each set's metrics from an evaluation's files (``run_dir/<set>``)."""
    out = {}
    for name in EVAL_SETS:
        d = run_dir / name
        out[name] = set_metrics(read_records(files[f"eval_{name}"], Problem),
                                read_records(d / GENERATIONS_FILE, Generation), read_records(d / GRADES_FILE, Grade))
    return out


TRAINING = {  # what each variant's log line says it is
    "virgo-t": "Virgo-T = base + text-only long thoughts (vision tower frozen)",
    "virgo-sd": "Virgo-SD = base + self-distilled visual long thoughts",
    "virgo-t+sd": "Virgo-T∪SD = base + text + self-distilled long thoughts",
    "oracle-visual": "control = base + template-written visual long thoughts (a perfect teacher, standing in for QVQ)",
    "virgo-t+rl": "Virgo-T+RL = Virgo-T + GRPO on the visual training problems (reward: the grader's verdict)",
}


def plan(out: Path, base_dir: Path, files: dict[str, Path], *, seed: int, quick: bool, control: bool,
         progress: bool, recipes: Path | None = None, rl: bool = False) -> list[Job]:
    """The experiment's jobs, the critical path first (Virgo-T, self-distillation, Virgo-T∪SD)."""
    models = out / "models"
    sets = {name: str(files[f"eval_{name}"]) for name in EVAL_SETS}

    def train(name: str, deps: tuple[str, ...] = (), *, init: Path = base_dir,
              fn: Callable[..., str] = stages.train_variant, threads: int = TRAIN_THREADS) -> Job:
        def kwargs(done: dict[str, Any]) -> dict[str, Any] | str:
            got = training_files(name, done)
            if isinstance(got, str):
                return got  # the reason to skip
            return {"init": str(init), "train_files": got, "out": str(models / name), "stage": name,
                    "seed": seed, "max_steps": recipe.QUICK_STEPS[name] if quick else None, "progress": progress,
                    "recipes": str(recipes) if recipes else None}
        return Job(f"train {name}", fn, kwargs, deps, say=f"train: {TRAINING[name]}",
                   done=lambda: (models / name / "model.safetensors").exists(), threads=threads)

    def evaluate(name: str, model: Path, deps: tuple[str, ...] = ()) -> Job:
        prompt = recipe.BASE_PROMPT if name == "base" else recipe.VARIANT_PROMPT
        run_dir = out / "eval" / name
        return Job(f"eval {name}", stages.evaluate_model,
                   {"model": str(model), "sets": sets, "run_dir": str(run_dir), "prompt": prompt,
                    "progress": progress}, deps, say=f"eval: {name}",
                   done=lambda: None if all((run_dir / s / GRADES_FILE).exists() for s in EVAL_SETS) else False)

    def training_files(name: str, done: dict[str, Any]) -> list[str] | str:
        """The stage's data (`recipe.VARIANT_STAGES`: data files by name; "sd" = the self-distilled datasets of the
        finished distill jobs), or the reason to skip it."""
        out: list[str] = []
        for data in recipe.VARIANT_STAGES[name]:
            if data != "sd":
                out.append(str(files[data]))
                continue
            sd = stages.combine_distilled([done[d] for d in DISTILL_JOBS])
            if not sd["kept"]:
                return "no self-distilled example passed the correctness filter"
            out += sd["datasets"]
        return out

    parts = len(DISTILL_JOBS)
    jobs = [train("virgo-t")]
    jobs += [Job(name, stages.self_distill,
                 {"teacher": str(models / "virgo-t"), "problems_file": str(files["sd_problems"]),
                  "out": str(out / "sd" / f"rollouts-{i + 1}.jsonl"), "part": i, "parts": parts, "seed": seed,
                  "progress": progress}, ("train virgo-t",),
                 say=f"{name}: Virgo-T rolls out {recipe.SD_SAMPLES} samples per visual training problem (part "
                     f"{i + 1} of {parts}); the grader keeps the shortest correct one")
             for i, name in enumerate(DISTILL_JOBS)]
    # The self-distilled variants train side by side as soon as both halves are in; base and Virgo-T are evaluated
    # on a core the critical path does not need (beside the second half of the self-distillation, or after Virgo-SD).
    jobs += [train("virgo-t+sd", DISTILL_JOBS, threads=1), train("virgo-sd", DISTILL_JOBS, threads=1),
             evaluate("base", base_dir), evaluate("virgo-t", models / "virgo-t", ("train virgo-t",))]
    if control:
        jobs.append(train("oracle-visual"))
    if rl:  # GRPO generates and trains in turn; its generation is a small part, so it takes both cores as SFT
        jobs.append(train("virgo-t+rl", ("train virgo-t",), init=models / "virgo-t", fn=stages.rl_variant))
    jobs += [evaluate("virgo-t+sd", models / "virgo-t+sd", ("train virgo-t+sd",)),
             evaluate("virgo-sd", models / "virgo-sd", ("train virgo-sd",))]
    if control:
        jobs.append(evaluate("oracle-visual", models / "oracle-visual", ("train oracle-visual",)))
    if rl:
        jobs.append(evaluate("virgo-t+rl", models / "virgo-t+rl", ("train virgo-t+rl",)))
    return jobs


def run(out: Path, base_dir: Path, *, seed: int = 0, quick: bool = False, workers: int = 2, control: bool = False,
        rl: bool = False, progress: bool = False, recipes: Path | None = None,
        say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole experiment into ``out`` on ``workers`` processes; returns the results (also results.json).

    ``control`` adds the perfect-teacher variant, ``rl`` Virgo-T+RL (GRPO from Virgo-T); ``recipes`` is a folder of
    stage recipes to use instead of the shipped ones.
    """
    t0 = time.monotonic()
    sizes = QUICK if quick else Sizes()
    say(f"data: building the synthetic world into {out / 'data'}")
    files = build_experiment_data(out / "data", sizes, seed=seed)
    jobs = plan(out, base_dir, files, seed=seed, quick=quick, control=control, progress=progress, recipes=recipes,
                rl=rl)
    outcomes = run_jobs(jobs, out, workers=workers, progress=progress, say=say)
    wall = time.monotonic() - t0

    variants = {}
    for name in VARIANTS:
        o = outcomes.get(f"eval {name}")
        if o is not None and o.skipped is None:
            variants[name] = variant_metrics(out / "eval" / name, files)
    skipped = {name: outcomes[f"train {name}"].skipped for name in VARIANTS
               if f"train {name}" in outcomes and outcomes[f"train {name}"].skipped}
    parts = [outcomes[d].result for d in DISTILL_JOBS if outcomes[d].skipped is None]
    sd = stages.combine_distilled(parts) if len(parts) == len(DISTILL_JOBS) and all(parts) else None
    if sd:
        say(f"distill: kept {sd['kept']} of {sd['problems']} problems")
    doc = {
        "seed": seed, "quick": quick, "base_model": str(base_dir), "workers": workers,
        "torch_threads": {j.name: min(j.threads, workers) for j in jobs},  # fixed per stage: it shapes the models
        "variants": variants, "skipped": skipped,
        "self_distillation": {k: v for k, v in sd.items() if k != "datasets"} if sd else None,
        "sizes": sizes.__dict__,
        "recipes": str(recipes or recipe.RECIPES),
        "stages": {k: {"data": v, **recipe.stage_settings(k, recipes)} for k, v in recipe.VARIANT_STAGES.items()
                   if f"train {k}" in outcomes},
        **timing(outcomes, wall),
    }
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def timing(outcomes: dict[str, Outcome], wall: float) -> dict[str, Any]:
    """Per-stage seconds as each stage took when it ran (a reused stage keeps its first run's time), and this
    run's wall clock."""
    ran = {k: o for k, o in outcomes.items() if o.skipped is None}
    return {
        "seconds": {k: o.seconds for k, o in ran.items() if o.seconds is not None},
        "cpu_seconds": {k: o.cpu_seconds for k, o in ran.items() if o.cpu_seconds is not None},
        "reused": [k for k, o in ran.items() if o.reused],
        "total_seconds": round(wall, 1),
    }
