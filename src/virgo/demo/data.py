"""The demo's datasets, written as ordinary virgo records (JSONL) that `virgo train` / `virgo eval` read.

* ``align.jsonl``: image -> caption (the alignment stage a real MLLM had before instruction tuning);
* ``base.jsonl``: the base MLLM's instruction mix: captions, restating worded givens in canonical form,
  single additions, visual lookups, and *direct* one-shot answers to visual and text questions;
* ``text_long_thought.jsonl``: TEXT-ONLY long-thought examples (the paper's D_T);
* ``eval_{visual_easy,visual_hard,text}.jsonl``: held-out problems (``Problem`` records with the true bar
  values in ``meta.values`` for the perception-fidelity metric);
* ``sd_problems.jsonl``: visual problems on training charts for self-distillation (the paper's D_SD source);
* ``oracle_visual.jsonl``: template-written visual long thoughts for those problems (a perfect-teacher control,
  standing in for the paper's QVQ-distilled D_QVQ).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from virgo.demo.world import (
    CAPTION_PROMPTS,
    FILLERS,
    GIVEN_STYLES,
    LETTERS,
    LOOKUP_PROMPTS,
    OPENINGS,
    Question,
    Values,
    caption,
    draw,
    lookup,
    lookup_request,
    pad_request,
    paraphrase,
    random_question,
    split_tuples,
)
from virgo.prompts import available_prompts, load_prompt
from virgo.records import LongThoughtExample, Problem, SFTExample
from virgo.records.jsonl import write_records

EVAL_SETS = ("visual_easy", "visual_hard", "text")


@dataclass(frozen=True)
class Sizes:
    align: int = 20000
    base_rounds: int = 6000  # each round adds 12 examples, one of each base task
    text_long_thought: int = 4000
    eval_per_set: int = 200
    sd_problems: int = 600


QUICK = Sizes(align=0, base_rounds=0, text_long_thought=600, eval_per_set=40, sd_problems=80)


class _Images:
    """Draws each chart once into ``dir/img`` and returns its path relative to ``dir``."""

    def __init__(self, root: Path):
        self.root = root
        (root / "img").mkdir(parents=True, exist_ok=True)

    def __call__(self, values: Values) -> str:
        name = "".join(map(str, values)) + ".png"
        path = self.root / "img" / name
        if not path.exists():
            draw(values, color_seed=sum(v * 10 ** i for i, v in enumerate(values))).save(path)
        return f"img/{name}"


def _pick(rng: random.Random, tuples: list[Values]) -> Values:
    return tuples[rng.randrange(len(tuples))]


def build_base_data(root: Path, sizes: Sizes = Sizes(), seed: int = 0) -> dict[str, Path]:
    """Alignment and base-mix training files (what the shipped base checkpoint was trained on)."""
    root.mkdir(parents=True, exist_ok=True)
    image = _Images(root)
    train, _ = split_tuples()
    rng = random.Random(seed)
    align = []
    for i in range(sizes.align):
        v = _pick(rng, train)
        align.append(SFTExample(id=f"align-{i}", question=pad_request(rng.choice(CAPTION_PROMPTS), rng),
                                response=caption(v), images=[image(v)], domain="caption"))
    base = []
    for i in range(sizes.base_rounds):
        v = _pick(rng, train)
        base.append(SFTExample(f"cap-{i}", pad_request(rng.choice(CAPTION_PROMPTS), rng),
                               rng.choice(OPENINGS) + caption(v), [image(v)], "caption"))
        # A description asked for after a question: perception at the distance a thought's restatement has.
        v, q = _pick(rng, train), random_question(rng.choice(["easy", "hard"]), rng)
        base.append(SFTExample(f"capq-{i}", pad_request("Before answering, describe the chart.", rng, q.text),
                               rng.choice(OPENINGS) + caption(v), [image(v)], "caption"))
        v = _pick(rng, train)
        base.append(SFTExample(f"restate-{i}", paraphrase(v, rng) + " " + pad_request("Restate the bars.", rng),
                               caption(v), [], "restate"))
        # Taking a question apart ("We need A + C + C + D."), after a chart or after worded givens.
        v, q = _pick(rng, train), random_question(rng.choice(["easy", "hard"]), rng)
        visual = rng.random() < 0.5
        base.append(SFTExample(f"parse-{i}", ("" if visual else paraphrase(v, rng) + " ") + q.text + " "
                               + pad_request("Which bars are needed?", rng), q.needed, [image(v)] if visual else [],
                               "parse"))
        x, d = rng.randint(0, 27), rng.randint(0, 9)
        base.append(SFTExample(f"add-{i}", f"What is {x}+{d}?", f"{x}+{d}={x + d}.", [], "arithmetic"))
        # Lookups, the atomic step between a restatement and the sums: one bar by name ("B=7.") or several in a
        # given order ("C=7, A=2, D=2."), read from the chart or from a list of named values.
        v, k = _pick(rng, train), rng.randrange(4)
        base.append(SFTExample(f"lookup-{i}", pad_request(rng.choice(LOOKUP_PROMPTS).format(l=LETTERS[k]), rng),
                               lookup(v, (k,)), [image(v)], "lookup"))
        v, bars = _pick(rng, train), tuple(rng.choices(range(4), k=rng.randint(1, 4)))
        base.append(SFTExample(f"vlookups-{i}", pad_request(lookup_request(bars), rng), lookup(v, bars), [image(v)],
                               "lookup"))
        v, bars = _pick(rng, train), tuple(rng.choices(range(4), k=rng.randint(1, 4)))
        givens = caption(v) if rng.random() < 0.5 else paraphrase(v, rng)
        base.append(SFTExample(f"tlookups-{i}", f"{givens} {lookup_request(bars)}", lookup(v, bars), [], "lookup"))
        for kind in ("easy", "hard"):
            v, q = _pick(rng, train), random_question(kind, rng)
            base.append(SFTExample(f"direct-v{kind}-{i}", q.text, f"The answer is {q.answer(v)}.", [image(v)],
                                   f"direct-{kind}"))
            v, q = _pick(rng, train), random_question(kind, rng)
            base.append(SFTExample(f"direct-t{kind}-{i}", paraphrase(v, rng) + " " + q.text,
                                   f"The answer is {q.answer(v)}.", [], f"direct-{kind}"))
    rng.shuffle(base)
    paths = {"align": root / "align.jsonl", "base": root / "base.jsonl"}
    write_records(paths["align"], [r.to_dict() for r in align])
    write_records(paths["base"], [r.to_dict() for r in base])
    return paths


def build_experiment_data(root: Path, sizes: Sizes = Sizes(), seed: int = 0) -> dict[str, Path]:
    """Text-only long thoughts, held-out evaluation problems and self-distillation problems."""
    root.mkdir(parents=True, exist_ok=True)
    image = _Images(root)
    train, held = split_tuples()
    rng = random.Random(1000 + seed)
    text_lt = []
    for i in range(sizes.text_long_thought):
        v, q = _pick(rng, train), random_question(rng.choice(["easy", "hard"]), rng)
        text_lt.append(LongThoughtExample(
            id=f"dt-{i}", question=paraphrase(v, rng) + " " + q.text, thought=q.thought(v), solution=q.solution(v),
            answer=str(q.answer(v)), domain="math", source="demo-text-long-thought"))
    paths = {"text_long_thought": root / "text_long_thought.jsonl"}
    write_records(paths["text_long_thought"], [r.to_dict() for r in text_lt])

    # Evaluation problems come from held-out charts only, with a fixed generator: the same items for every
    # seed, so seeds vary training, not the test.
    ev = random.Random(7)
    for name in EVAL_SETS:
        problems = []
        for i in range(sizes.eval_per_set):
            v = _pick(ev, held)
            q = random_question("easy" if name == "visual_easy" else "hard", ev)
            if name == "text":
                problems.append(Problem(f"{name}-{i}", paraphrase(v, ev) + " " + q.text, str(q.answer(v)),
                                        meta={"values": list(v), "kind": q.kind, "bars": list(q.bars),
                                              "modality": "text"}))
            else:
                problems.append(Problem(f"{name}-{i}", q.text, str(q.answer(v)), [image(v)],
                                        meta={"values": list(v), "kind": q.kind, "bars": list(q.bars),
                                              "modality": "visual"}))
        paths[f"eval_{name}"] = root / f"eval_{name}.jsonl"
        write_records(paths[f"eval_{name}"], [p.to_dict() for p in problems])

    sd = []
    for i in range(sizes.sd_problems):
        v, q = _pick(rng, train), random_question(rng.choice(["easy", "hard"]), rng)
        sd.append(Problem(f"sd-{i}", q.text, str(q.answer(v)), [image(v)],
                          meta={"values": list(v), "kind": q.kind, "bars": list(q.bars), "modality": "visual"}))
    paths["sd_problems"] = root / "sd_problems.jsonl"
    write_records(paths["sd_problems"], [p.to_dict() for p in sd])

    # The control for a perfect visual teacher (the paper's D_QVQ): template-written visual long thoughts on
    # the same training charts and questions the self-distillation sees.
    oracle = []
    for p in sd:
        v = tuple(p.meta["values"])
        q = Question(p.meta["kind"], tuple(p.meta["bars"]))
        oracle.append(LongThoughtExample(id=f"oracle-{p.id}", question=p.question, thought=q.thought(v),
                                         solution=q.solution(v), images=[image(v)], answer=p.answer,
                                         domain="visual", source="demo-programmatic-teacher"))
    paths["oracle_visual"] = root / "oracle_visual.jsonl"
    write_records(paths["oracle_visual"], [r.to_dict() for r in oracle])
    return paths


def tokenizer_corpus(root: Path, seed: int = 0) -> list[str]:
    """Lines covering every phrase the demo uses, for training the tiny tokenizer."""
    rng = random.Random(seed)
    train, _ = split_tuples()
    lines = [*CAPTION_PROMPTS, *FILLERS, *OPENINGS, "Restate the bars.", "Before answering, describe the chart.",
             "Which bars are needed?",
             "You are a helpful assistant.", *(load_prompt(name) for name in available_prompts())] * 20
    lines += [p.format(l=letter, v=0) for p in (*LOOKUP_PROMPTS, *GIVEN_STYLES) for letter in LETTERS]
    for _ in range(3000):
        v, q = _pick(rng, train), random_question(rng.choice(["easy", "hard"]), rng)
        lines += [paraphrase(v, rng) + " " + q.text, q.thought(v), q.solution(v), f"The answer is {q.answer(v)}."]
    return lines
