"""A trivially learnable RL task, for tests and smoke runs: "the lucky number".

Every problem (text-only, or with a small image of coloured squares) has the same gold answer, ``target``. The SFT
warm-start set answers the same questions in Virgo's long-thought format with every digit equally often, so a tiny
model fine-tuned on it writes a closed thought and a boxed digit but picks the digit at random: accuracy starts near
1 in 10, and GRPO with the accuracy reward has a single thing to learn (which digit). A random tiny model alone
would never close a thought or a box, so every reward would be 0 and GRPO would have no signal.

    python -m virgo.rl.fixture OUT_DIR    # OUT_DIR/sft.jsonl, OUT_DIR/problems.jsonl, OUT_DIR/images/
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from virgo.records import LongThoughtExample, Problem, write_records

QUESTIONS = ("Pick the lucky number.", "Which number is lucky?", "Name the lucky number.", "Say the lucky number.")
VISUAL_QUESTION = "Which number is lucky in this picture?"
THOUGHT = "I pick one digit."


def _image(path: Path, rng: random.Random, size: int = 32) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(1, 4)):
        x, y = rng.randrange(0, size - 8), rng.randrange(0, size - 8)
        draw.rectangle([x, y, x + 7, y + 7], fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    img.save(path)


def make_lucky_task(out_dir: str | Path, *, visual: int = 4, target: str = "7", seed: int = 0) -> dict[str, Path]:
    """Write ``sft.jsonl`` (LongThoughtExample: each question x each digit), ``problems.jsonl`` (Problem: each question
    with gold ``target``; ``visual`` of them with an image) and ``images/``; returns the two paths."""
    rng = random.Random(seed)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    prompts: list[tuple[str, list[str]]] = [(q, []) for q in QUESTIONS]
    for k in range(visual):
        name = f"images/lucky-{k}.png"
        _image(out / name, rng)
        prompts.append((VISUAL_QUESTION, [name]))
    examples, problems = [], []
    for i, (question, images) in enumerate(prompts):
        problems.append(Problem(id=f"lucky-{i}", question=question, answer=target, images=images))
        for digit in range(10):
            examples.append(LongThoughtExample(
                id=f"lucky-{i}-{digit}", question=question, thought=THOUGHT, solution=f"\\boxed{{{digit}}}",
                images=images, answer=str(digit), source="virgo.rl.fixture"))
    rng.shuffle(examples)
    paths = {"sft": out / "sft.jsonl", "problems": out / "problems.jsonl"}
    write_records(paths["sft"], examples)
    write_records(paths["problems"], problems)
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write the lucky-number RL task (an SFT warm-start set and problems).")
    ap.add_argument("out_dir")
    ap.add_argument("--visual", type=int, default=4, help="problems with an image (besides the 4 text-only ones)")
    ap.add_argument("--target", default="7", help="the gold answer of every problem")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    for kind, path in make_lucky_task(a.out_dir, visual=a.visual, target=a.target, seed=a.seed).items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
