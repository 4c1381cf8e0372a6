"""The demo's synthetic visual world: four-bar charts drawn with PIL, and questions about them.

Each chart shows bars A-D with integer heights 0-9. Questions need perception (read the bars) and reasoning
(add several of them). Every visual question has a text twin that states the values in words, in a shuffled
order and a *different* phrasing from the thought's restatement ("Bar C is 5 tall." versus "C=5"), so that
restating the givens is a skill rather than a verbatim copy of the prompt.

Question kinds (each step of the thought is one small addition):

* ``easy``: the sum of two named bars ("What is A + C?"): one lookup pair, one addition;
* ``hard``: the sum of three named bars ("What is A + C + D?"): three lookups, two additions.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

LETTERS = "ABCD"
MAX_HEIGHT = 9
IMAGE_SIDE = 64
_COLORS = [(200, 40, 40), (40, 120, 200), (40, 160, 60), (160, 80, 200)]
_PX_PER_UNIT = 5
_BASELINE = 54

Values = tuple[int, int, int, int]


def draw(values: Values, color_seed: int = 0):
    """A 64x64 RGB chart: bars 10 px wide at fixed x, 5 px per unit, letters under a baseline."""
    from PIL import Image, ImageDraw

    rng = random.Random(color_seed)
    im = Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.line([(2, _BASELINE), (62, _BASELINE)], fill=(0, 0, 0))
    for i, v in enumerate(values):
        x = 4 + i * 15
        if v:
            d.rectangle([x, _BASELINE - _PX_PER_UNIT * v, x + 9, _BASELINE - 1], fill=_COLORS[rng.randrange(4)])
        d.text((x + 2, _BASELINE + 1), LETTERS[i], fill=(0, 0, 0))
    return im


def caption(values: Values) -> str:
    """The canonical description: what the base model says about a chart, and how a thought restates it."""
    return "The bars are: " + ", ".join(f"{letter}={v}" for letter, v in zip(LETTERS, values)) + "."


_CAPTION_RE = re.compile(r"The bars are: A=(\d+), B=(\d+), C=(\d+), D=(\d+)")


def read_caption(text: str) -> Values | None:
    """The values a text restates in canonical form (the first restatement), or None."""
    m = _CAPTION_RE.search(text)
    return tuple(int(x) for x in m.groups()) if m else None  # type: ignore[return-value]


def paraphrase(values: Values, rng: random.Random) -> str:
    """The values in words, shuffled: the text twin's givens."""
    order = list(range(4))
    rng.shuffle(order)
    return " ".join(f"Bar {LETTERS[i]} is {values[i]} tall." for i in order)


@dataclass(frozen=True)
class Question:
    kind: str  # easy | hard
    bars: tuple[int, ...]  # indices of the bars to add, in the order asked

    @property
    def text(self) -> str:
        return "What is " + " + ".join(LETTERS[i] for i in self.bars) + "?"

    def answer(self, values: Values) -> int:
        return sum(values[i] for i in self.bars)

    def steps(self, values: Values) -> str:
        """The reasoning after the restatement: look the bars up, then add one at a time."""
        # The lookup repeats the restatement's "C=7" pattern, so reading a value back is a copy of what was
        # just written (an easy induction step for a tiny model) rather than a retrieval by name.
        names = " + ".join(LETTERS[i] for i in self.bars)
        nums = [values[i] for i in self.bars]
        parts = [f"We need {names}. " + ", ".join(f"{LETTERS[i]}={values[i]}" for i in self.bars) + "."]
        run = nums[0]
        for v in nums[1:]:
            parts.append(f"{run}+{v}={run + v}.")
            run += v
        return " ".join(parts)

    def thought(self, values: Values) -> str:
        """A long thought: restate the givens, compute step by step, verify once."""
        nums = [values[i] for i in self.bars]
        verify = "+".join(map(str, nums)) + f"={self.answer(values)}"
        return f"{caption(values)} {self.steps(values)} Let me verify: {verify}. Correct."

    def solution(self, values: Values) -> str:
        return f"The answer is \\boxed{{{self.answer(values)}}}."


def random_question(kind: str, rng: random.Random) -> Question:
    k = {"easy": 2, "hard": 3}[kind]
    return Question(kind, tuple(rng.sample(range(4), k)))


def split_tuples(seed: int = 0, held_out: float = 0.2) -> tuple[list[Values], list[Values]]:
    """(train, held-out) value tuples; held-out charts are never trained on, text twins included."""
    tuples = list(itertools.product(range(MAX_HEIGHT + 1), repeat=4))
    random.Random(seed).shuffle(tuples)
    k = int(len(tuples) * held_out)
    return tuples[k:], tuples[:k]
