"""Synthetic eval run folders at any size, for the viewer's browser tests and its opening benchmark
(``benchmarks/view_open.py``): the real layout of `virgo.eval.run`, real record types, seeded content.

Thoughts are built from sentences holding the lexicon's reflection phrases, some with forced "Wait"s or a budget
close recorded as `virgo.infer` records them; verdicts are drawn, not graded (a 10,000-item page is about size and
speed; the tests that check verdicts grade real runs).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image

from virgo.eval.layout import GENERATIONS_FILE, GRADES_FILE, METRICS_FILE, PROBLEMS_FILE, RUN_FILE
from virgo.infer.budget import WAIT_TEXT
from virgo.records import Generation, Grade, Problem, write_records
from virgo.thought import BEGIN_THOUGHT, render_response
from virgo.view.sources import RunData

SUBJECTS = ("algebra", "arithmetic", "combinatorics", "counting", "metric geometry - angle", "statistics")
SENTENCES = (
    "The figure shows {a} squares, and each side is {b} units long.",
    "So the total area would be {a} times {b} squared.",
    "Wait, the squares overlap along one edge, so I must subtract the shared part.",
    "Hmm, let me check the picture again: the top row has {a} squares.",
    "Alternatively, count the unit cells directly: there are {c} of them.",
    "Let me verify: {a} + {b} = {c}.",
    "Actually, the question asks for the perimeter, not the area.",
    "That gives {c}, which matches option {o}.",
)


def _thought(rng: random.Random, words: int) -> str:
    out: list[str] = []
    n = 0
    while n < words:
        s = rng.choice(SENTENCES).format(a=rng.randint(2, 9), b=rng.randint(2, 9), c=rng.randint(10, 99),
                                         o="ABCDE"[rng.randrange(5)])
        out.append(s)
        n += len(s.split())
        if rng.random() < 0.15:
            out.append("\n\n")
    return " ".join(out).replace(" \n\n ", "\n\n")


def _image(path: Path, i: int) -> None:
    im = Image.new("RGB", (96, 64), (255, 255, 255))
    for x in range(8, 8 + 12 * (1 + i % 6), 12):
        for y in range(10, 54):
            im.putpixel((x, y), (40, 90, 200))
    im.save(path)


def synthetic_run(n_items: int, *, seed: int = 0, samples: int = 1, words: tuple[int, int] = (60, 600),
                  label: str = "synthetic", image_paths: list[str] | None = None,
                  force_wait: bool = True) -> RunData:
    """A run of ``n_items`` problems x ``samples`` generations, in memory. Problems (and their gold) are the same
    for any seed: two seeds are two models on one benchmark."""
    prng, rng = random.Random(1234), random.Random(seed)
    run = RunData(label, Path(label), {"benchmark": "synthetic", "split": "test", "model": label, "label": label})
    images = image_paths or []
    for i in range(n_items):
        pid, gold = f"{i + 1}", "ABCDE"[prng.randrange(5)]
        run.problems[("", pid)] = Problem(
            pid, f"Problem {i + 1}: how many unit squares are in the figure?", gold,
            images=[images[i % len(images)]] if images else [], choices=["4", "6", "8", "9", "12"],
            answer_type="multiple_choice", meta={"level": 1 + prng.randrange(5), "subject": prng.choice(SUBJECTS),
                                                 "subset": "testmini" if i % 10 == 0 else "test"})
        for s in range(samples):
            gen, grade = _sample(rng, pid, s, gold, words, label, force_wait)
            run.generations.append(("", gen))
            run.grades[("", pid, s)] = grade
    run.accuracy[""] = sum(g.verdict == "correct" for g in run.grades.values()) / max(1, len(run.grades))
    return run


def _sample(rng: random.Random, pid: str, s: int, gold: str, words: tuple[int, int], label: str,
            force_wait: bool) -> tuple[Generation, Grade]:
    thought = _thought(rng, rng.randint(*words))
    extra: dict = {}
    if force_wait and rng.random() < 0.2:  # recorded forcing: "Wait" inserted where the thought had ended
        cut = thought.rfind(". ", 0, len(thought) // 2) + 2
        thought = thought[:cut] + WAIT_TEXT + ", " + thought[cut:]
        extra = {"budget_forced": False, "waits": 1,
                 "interventions": [{"kind": "wait", "offset": len(BEGIN_THOUGHT) + 2 + cut}]}
    answer = gold if rng.random() < 0.5 else "ABCDE"[rng.randrange(5)]
    solution = f"The answer is \\boxed{{{answer}}}."
    gen = Generation(pid, s, render_response(thought, solution), "stop", thought=thought, solution=solution,
                     status="complete", thought_tokens=len(thought.split()), model=label, extra=extra)
    grade = Grade(pid, s, "correct" if answer == gold else "wrong", answer, "mc_letter", extracted_by="boxed",
                  gold=gold)
    return gen, grade


def make_run(out: str | Path, n_items: int, *, images: int = 6, **kw) -> Path:
    """`synthetic_run` written as an eval run folder into ``out`` (with ``images`` small PNG figures); returns it."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for i in range(images):
        _image(out / "images" / f"fig{i}.png", i)
    run = synthetic_run(n_items, image_paths=[f"images/fig{i}.png" for i in range(images)], **kw)
    write_records(out / PROBLEMS_FILE, run.problems.values())
    write_records(out / GENERATIONS_FILE, (g for _, g in run.generations))
    write_records(out / GRADES_FILE, run.grades.values())
    (out / RUN_FILE).write_text(json.dumps(run.info) + "\n")
    (out / METRICS_FILE).write_text(json.dumps({"accuracy": run.accuracy[""]}) + "\n")
    return out
