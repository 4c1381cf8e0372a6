"""Warming the grader up: imported by the grading pool's forkserver, so every worker forked from it starts ready
(Math-Verify's parser and its ANTLR caches, pint's registry, the closed-form reader, the regexes)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def warm_up() -> None:
    """Grade a few answers of every kind once, so no real item is charged for a first use."""
    from virgo.grade.core import grade_text
    from virgo.grade.engine import warm_up as warm_math_verify
    from virgo.grade.units import registry
    from virgo.records import Problem

    warm_math_verify()
    registry()
    for gold, text in (("42", "<think>t</think>The answer is \\boxed{42}."), ("0.5 m", "So it is 50 cm."),
                       ("(-\\infty, 2]", "\\boxed{x \\le 2}"), ("\\frac{\\sqrt{3}}{2}", "**Final Answer**\n0.866")):
        grade_text(Problem(id="warm", question="", answer=gold), text)


warm_up()
