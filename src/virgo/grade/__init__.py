"""Grading: answer extraction and equivalence; safe, bounded, auditable. A pure library (no file I/O
except the optional judge's reply cache).

Every accuracy Virgo reports, and every filter of distilled data, goes through this package:

* ``extract_answer(text, problem, profile)`` -> ``Extraction(answer, rule)`` (``virgo.grade.extract``)
* ``grade_text(problem, text, finish_reason=, profile=, sample=)`` -> ``Grade``, in-process (small cases)
* ``grade_many(items, profile=, workers=, timeout=, judge=, progress=)`` -> ``list[Grade]``: a process
  pool with a hard per-item limit; what every stage calls
* ``summarize(grades)`` -> ``{"n", "accuracy", "verdicts", "graded_by", "extracted_by"}``
* ``PROFILES`` / ``get_profile``: default, mathvision, mathverse, olympiadbench, mmmu, mathvista, wemath,
  logicvista, dynamath, scibench; ``GradeConfig`` (``virgo.grade.config``) selects and adjusts one
* ``EXTRACTION_RULES`` (``virgo.grade.rules``): the extraction rules as data, each with its case table
* ``Job``: one (problem, response) for `GradingPool` (what `grade_many` and the RL reward submit)
* ``Judge``: the optional LLM judge (OpenAI-compatible endpoint) for what the rules leave undecided

Model text never reaches ``eval``, ``exec`` or ``sympify``: extraction is linear string work, numbers are read by
a tiny grammar, common closed forms by a small parser of our own that builds only numbers
(``virgo.grade.closedform``), units name by name from pint's registry, and other expressions go through
Math-Verify's LaTeX parser only. ``AUDIT.md`` compares this grader with the original one on 500 real long-thought
responses.

One module per concept: ``core`` (verdicts), ``extract`` / ``rules`` / ``finders`` / ``statements`` (where the
final answer is), ``equiv`` (which comparison decides), ``quantity`` / ``numbers`` / ``units`` (values, written
precision, units), ``closedform`` (the fast reader), ``structure`` (left-hand sides, tuples, lists, equations),
``golds`` (item metadata, code-like golds), ``norm`` (spellings), ``engine`` (Math-Verify), ``pool`` / ``batch``
(the bounded process pool), ``profiles`` / ``config`` (benchmark conventions, user options). The thought markers
live in ``virgo.thought``, the box scanner in ``virgo.boxed``.

What the grader reads from a ``Problem`` (the benchmark loaders fill these):

=============================  ===================================================================
``answer``                     the gold answer (LaTeX or plain; for multiple choice the letter or the
                               option's text; a literal list such as ``['a', 'b']`` = alternatives)
``choices``                    option texts in order A, B, C, ... (multiple choice)
``answer_type``                ``"multiple_choice"`` marks multiple choice; a theorem-proof type excludes
``meta["question_type"]``      ``multi-choice`` / ``multiple-choice`` (MC); ``theorem-proving`` /
                               ``Theorem proof`` (excluded); ``meta["label"] == "Theorem_Proving"`` too
``meta["precision"]``          (MathVista) decimals a float answer is rounded to
``meta["tolerance"]``          absolute numeric tolerance: a number, ``"1e-1"``, or per answer
or ``meta["error"]``           ``"1e-2,1e-3"`` (OlympiadBench's ``error`` field; ``",1e0"`` = none, then 1;
                               ``"None"`` / ``"null"`` strings mean no tolerance)
``meta["unit"]``               the gold answer's unit (or per answer, comma-separated: ``",kg"``), dropped
                               from both
``meta["is_multiple_answer"]`` several answers, all required (split on top-level commas / all boxes); a gold
                               with one answer per line is read the same way (MathVerse's ``"C\\nD"``)
``meta["answers"]``            (optional) the gold parts as a list, instead of splitting ``answer``
``meta["ordered"]``            (optional) the parts must come in the given order (default: any order)
``meta["alternatives"]``       (optional) a list of accepted gold answers, any one suffices
=============================  ===================================================================
"""

from virgo.grade.batch import grade_many
from virgo.grade.config import GradeConfig
from virgo.grade.core import Job, grade_text
from virgo.grade.extract import RULES, Extraction, extract_answer
from virgo.grade.judge import Judge
from virgo.grade.pool import GradingPool
from virgo.grade.profiles import PROFILES, Profile, excluded_reason, get_profile, gradable, profile_for_benchmark
from virgo.grade.rules import EXTRACTION_RULES
from virgo.grade.summary import render_summary, summarize

__all__ = [
    "EXTRACTION_RULES",
    "PROFILES",
    "RULES",
    "Extraction",
    "GradeConfig",
    "GradingPool",
    "Job",
    "Judge",
    "Profile",
    "excluded_reason",
    "extract_answer",
    "get_profile",
    "gradable",
    "grade_many",
    "grade_text",
    "profile_for_benchmark",
    "render_summary",
    "summarize",
]
