"""A small synthetic long-thought dataset: arithmetic in text, counting squares in images.

Used by the ``tiny-cpu`` recipe (a copy ships in ``recipes/data/tiny-longthought``), by the tests and by the
packing benchmark. The thoughts verify themselves ("Wait, let me check ..."), and a fraction can be made several
times longer, giving the long-tailed length mix of real long-thought data (most samples short, a few much longer).

    python -m virgo.train.fixture OUT_DIR [--n 128] [--image-frac 0.25] [--long-frac 0.1] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from virgo.records import LongThoughtExample, write_records

COLORS = [(220, 30, 30), (30, 160, 30), (30, 60, 220), (230, 200, 20)]


def _square_image(path: Path, count: int, rng: random.Random, size: int) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    cell = size // 4
    for k in rng.sample(range(16), count):
        x, y = (k % 4) * cell, (k // 4) * cell
        draw.rectangle([x + 1, y + 1, x + cell - 2, y + cell - 2], fill=rng.choice(COLORS))
    img.save(path)


def _thought(steps: list[str], extra_checks: int, rng: random.Random, value: int) -> str:
    checks = [f"Wait, let me check that again. I get {value} once more, so it holds." for _ in range(extra_checks)]
    rng.shuffle(checks)
    return "\n\n".join(steps + checks)


def make_tiny_longthought(out_dir: str | Path, *, n: int = 128, image_frac: float = 0.25, long_frac: float = 0.0,
                          long_factor: int = 10, seed: int = 0, image_size: int = 32) -> Path:
    """Write ``out_dir/train.jsonl`` (+ ``images/``) of LongThoughtExample records; returns the JSONL path."""
    rng = random.Random(seed)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        long = rng.random() < long_frac
        if rng.random() < image_frac:
            count = rng.randint(1, 9)
            name = f"images/squares-{i:04d}.png"
            _square_image(out / name, count, rng, image_size)
            steps = ["I need to count the squares in the image.",
                     f"Going row by row, I see {count} coloured squares in total.",
                     f"Hmm, let me verify by counting once more: {count}. Yes."]
            question, answer, images = "How many squares are in the image?", count, [name]
        else:
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            answer = a + b
            steps = [f"We need {a} + {b}.", f"First, {a - a % 10} + {b - b % 10} = {a - a % 10 + b - b % 10}.",
                     f"Then {a % 10} + {b % 10} = {a % 10 + b % 10}, so the total is {answer}.",
                     f"Wait, let me verify: {answer} - {b} = {a}. Correct."]
            question, images = f"What is {a} + {b}?", []
        extra = (long_factor - 1) * len(steps) if long else 0
        response_thought = _thought(steps, extra, rng, answer)
        ex = LongThoughtExample(id=f"tiny-{i:04d}", question=question, thought=response_thought,
                                solution=f"The answer is \\boxed{{{answer}}}.", images=images, answer=str(answer),
                                domain="visual" if images else "math", source="virgo.train.fixture")
        ex.validate()
        records.append(ex)
    path = out / "train.jsonl"
    write_records(path, records)  # image paths stay relative to the JSONL file
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write a small synthetic long-thought training set.")
    ap.add_argument("out_dir")
    ap.add_argument("--n", type=int, default=128, help="number of examples")
    ap.add_argument("--image-frac", type=float, default=0.25, help="fraction of examples with an image")
    ap.add_argument("--long-frac", type=float, default=0.0, help="fraction of examples made long_factor x longer")
    ap.add_argument("--long-factor", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    path = make_tiny_longthought(a.out_dir, n=a.n, image_frac=a.image_frac, long_frac=a.long_frac,
                                 long_factor=a.long_factor, seed=a.seed)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
