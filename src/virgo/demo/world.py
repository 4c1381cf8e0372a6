"""The demo's synthetic visual world: four-bar charts drawn with PIL, and questions about them.

Each chart shows bars A-D with integer heights 0-9. Questions need perception (read the bars) and reasoning
(add several of them). Every visual question has a text twin that states the values in words, in a shuffled
order and a *different* phrasing from the thought's restatement ("Bar C is 5 tall." versus "C=5"), so that
restating the givens is a skill rather than a verbatim copy of the prompt.

Question kinds (each step of the thought is one small addition):

* ``easy``: the sum of two named bars ("What is A + C?"): one lookup pair, one addition;
* ``hard``: the sum of four named bars, drawn with replacement ("What is A + C + C + D?"): four lookups, three
  additions. A one-shot answer has to weigh every bar by how often it is named, which a tiny model does
  poorly; every step of the thought is a copy or one small addition.
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


# Ways to state one bar's height in words. Text problems draw one per problem, so a fine-tuned model cannot tie
# "think step by step" to one surface form of the givens (the paper's D_T spans many domains and styles).
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GIVEN_STYLES = ("Bar {l} is {v} tall.", "{l} has height {v}.", "The height of {l} is {v}.", "Bar {l} reaches {v}.",
                "{l} is {v} units high.")

# Ways to ask for a description or a single value of a chart. The base model sees all of them, at different
# prompt lengths, so that it reads a bar by its drawn letter rather than by its distance from the prompt: with
# a single prompt a tiny model learns the latter, and one extra word ("Please describe the chart.") breaks it.
CAPTION_PROMPTS = ("Describe the chart.", "Please describe the chart.", "What does the chart show?",
                   "Read the chart.", "List the heights of the bars.", "Describe this bar chart in words, please.",
                   "What are the heights of bars A, B, C and D?", "Tell me what the bars in this chart are.")
LOOKUP_PROMPTS = ("What is {l}?", "How tall is bar {l}?", "Read bar {l}.", ("What is the height of bar {l} in the "
                  "chart?"))
# Sentences that pad a request, and openings of a reply, so the base model reads a chart at any distance from the
# image: a thought restates the chart after the question, an instruction and its own opening marker, at distances
# no single prompt covers.
FILLERS = ("Take your time.", "Look carefully.", "Be precise.", "This chart has four bars.",
           "Each bar has its letter under it.", "Read the picture carefully, bar by bar, and do not skip any bar.",
           "Please first look at the whole chart, and then write down what you see in the usual form.",
           "The question is about the heights of the bars, which are whole numbers from 0 to 9.")
OPENINGS = ("", "", "Sure. ", "Let me look at the chart. ", "I will read each bar. ", "OK, reading the chart now. ")


def pad_request(request: str, rng: random.Random, question: str | None = None) -> str:
    """``request`` with 0-3 filler sentences around it and, optionally, a question before it."""
    parts = [request] + rng.sample(FILLERS, rng.randint(0, 3))
    rng.shuffle(parts)
    return " ".join(([question] if question else []) + parts)


def lookup(values: Values, bars: tuple[int, ...]) -> str:
    """Named values in the thought's form: "C=7, A=2, D=2." (the atomic skill a thought's lookup step uses)."""
    return ", ".join(f"{LETTERS[i]}={values[i]}" for i in bars) + "."


def lookup_request(bars: tuple[int, ...]) -> str:
    names = [LETTERS[i] for i in bars]
    return "Look up " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]) + "."


def paraphrase(values: Values, rng: random.Random) -> str:
    """The values in words, shuffled, in one randomly chosen style: the text twin's givens.

    Half the time the numbers are words ("Bar C is five tall."). Text-only long thoughts whose givens are all
    digits let a tiny model take the sums' operands from the prompt instead of from its own restatement; on a
    chart there is no prompt digit to take, and the sums broke (seed 1: with a correct thought prefix forced,
    the first sum was right 100/100 times after worded givens, 58/100 with the givens removed, 29/100 after a
    chart). Givens the model must first *read* make the restatement the sums' only source, as on a chart.
    """
    order = list(range(4))
    rng.shuffle(order)
    style = rng.choice(GIVEN_STYLES)
    say = NUMBER_WORDS.__getitem__ if rng.random() < 0.5 else str
    return " ".join(style.format(l=LETTERS[i], v=say(values[i])) for i in order)


@dataclass(frozen=True)
class Question:
    kind: str  # easy | hard
    bars: tuple[int, ...]  # indices of the bars to add, in the order asked

    @property
    def text(self) -> str:
        return "What is " + " + ".join(LETTERS[i] for i in self.bars) + "?"

    def answer(self, values: Values) -> int:
        return sum(values[i] for i in self.bars)

    @property
    def needed(self) -> str:
        """The question taken apart: "We need A + C + C + D." (a step of the thought, and an atomic base skill)."""
        return "We need " + " + ".join(LETTERS[i] for i in self.bars) + "."

    def steps(self, values: Values) -> str:
        """The reasoning after the restatement: look the bars up, then add one at a time."""
        # The lookup repeats the restatement's "C=7" pattern, so reading a value back is a copy of what was
        # just written (an easy induction step for a tiny model) rather than a retrieval by name.
        nums = [values[i] for i in self.bars]
        parts = [f"{self.needed} {lookup(values, self.bars)}"]
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
    if kind == "easy":
        return Question(kind, tuple(rng.sample(range(4), 2)))
    return Question(kind, tuple(rng.choices(range(4), k=4)))


def split_tuples(seed: int = 0, held_out: float = 0.2) -> tuple[list[Values], list[Values]]:
    """(train, held-out) value tuples; held-out charts are never trained on, text twins included."""
    tuples = list(itertools.product(range(MAX_HEIGHT + 1), repeat=4))
    random.Random(seed).shuffle(tuples)
    k = int(len(tuples) * held_out)
    return tuples[k:], tuples[:k]
