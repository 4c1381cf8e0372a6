"""A small built-in corpus for training the tiny tokenizer: chat scaffolding, prompts, maths and thought text."""

from __future__ import annotations

import random
from collections.abc import Iterator

from virgo.prompts import available_prompts, load_prompt
from virgo.thought import render_response

_WORDS = (  # noqa: SIM905  (a paragraph of words reads better than a 95-item list)
    "the a an of to and in is that it for on with as by this be are from at or answer question image chart bar "
    "bars value values shape shapes circle square triangle red green blue yellow black white left right top bottom "
    "sum total difference product more less than how many what which is tallest shortest largest smallest first "
    "then next so therefore wait let me verify check again hmm alternatively actually correct think step we need "
    "find compute given area length angle degrees point line number numbers equal equals solution final boxed"
).split()


def builtin_corpus(n_lines: int = 6000, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    for name in available_prompts():
        yield load_prompt(name)
    yield "You are a helpful assistant."
    for _ in range(n_lines):
        a, b, c = rng.randint(0, 99), rng.randint(0, 99), rng.randint(0, 9)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 14)))
        kind = rng.random()
        if kind < 0.3:
            yield f"What is {a} + {b} * {c}? {words}."
        elif kind < 0.6:
            thought = (f"We need {a} + {b}. First, {a} + {b} = {a + b}. "
                       f"Wait, let me verify: {a + b} - {b} = {a}. Correct.")
            yield render_response(thought, f"The answer is \\boxed{{{a + b}}}.")
        else:
            yield f"{words.capitalize()}, {a} and {b}: \\frac{{{a}}}{{{c + 1}}} = {a / (c + 1):.2f}."
