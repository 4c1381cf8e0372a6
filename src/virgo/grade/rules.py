"""The extraction rules, as data (in the style of Math-Verify's extraction targets).

Each ``Rule`` has a name (what ``Grade.extracted_by`` says), a priority (lower runs first; the first rule that
finds an answer wins), the finder that looks for it (``virgo.grade.finders``), whether it is *strong* (it still
counts in a text cut off at the token limit or in a solution that never closed: an explicit final answer), the
kinds of item it applies to (free-form answers, multiple choice), and its own case table: responses and the answer
the rule must extract from them through the whole engine (``tests/test_grade_rules.py`` runs every row). A new
rule is one entry here plus its rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from virgo.grade import finders
from virgo.grade.profiles import Profile

FREE, CHOICE = "free", "choice"


@dataclass(frozen=True)
class Case:
    """One row of a rule's table: ``text`` must give ``answer`` (by this rule; ``rule`` names another when the row
    shows this rule stepping aside), for an item with gold ``gold`` (multiple choice when ``choices`` is set)."""

    text: str
    answer: str | None
    gold: str = "42"
    choices: tuple[str, ...] | None = None
    multi: bool = False
    parts: tuple[str, ...] | None = None  # the parts expected for a multi-answer item
    rule: str | None = None
    profile: str = "default"


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    find: Callable[[finders.Region], finders.Found | None]
    doc: str
    strong: bool = False
    kinds: tuple[str, ...] = (FREE, CHOICE)
    choice_text: bool = True  # multiple choice: an answer that names no option is kept as text (else skipped)
    enabled: Callable[[Profile], bool] | None = None
    cases: tuple[Case, ...] = ()


MC = ("40", "42", "44")

EXTRACTION_RULES: tuple[Rule, ...] = (
    Rule("boxed", 10, finders.boxed, strong=True, doc="the last \\boxed{}/\\fbox{}; the boxes of one final statement "
         "together (x=\\boxed{2}, y=\\boxed{3}); every box for a multi-answer item", cases=(
             Case(r"First \boxed{41}, then \boxed{\frac{84}{2}}", r"\frac{84}{2}"),
             Case(r"We get \fbox{42}.", "42"),
             Case(r"So $x=\boxed{2}$, $y=\boxed{3}$.", "x = 2, y = 3", gold="(2,3)"),
             Case(r"\boxed{12} and \boxed{12}", "12"),
             Case(r"The roots are \boxed{2} and \boxed{3}.", "2, 3", gold="2,3"),
             Case(r"a = \boxed{-2}, b = \boxed{-2}", "-2", gold="-2,-2", multi=True, parts=("-2", "-2")),
             Case(r"\boxed{\approx 3.14}", r"\approx 3.14", gold="3.14"),
             Case(r"The answer is \boxed{C}.", "C", gold="B", choices=MC),
             Case(r"\boxed{42}", "B", gold="B", choices=MC),
         )),
    Rule("answer_list", 20, finders.answer_list, strong=True, kinds=(FREE,), doc="sub-answers listed under a "
         "'Final Answer(s)' heading (or closing a multi-answer response): all of them, or the last for one answer",
         cases=(
             Case("**Final Answers**\n\n1. The period is $T = 2.0$ s.\n2. The speed is **3.1 m/s**", "3.1 m/s",
                  gold="3.1"),
             Case("**Final Answers**\n- $v = 2.5$ m/s\n- $t = 1.2$ s", "v = 2.5 m/s, t = 1.2 s", gold="2.5, 1.2",
                  multi=True, parts=("v = 2.5 m/s", "t = 1.2 s")),
             Case("(a) The tension is $T = 12$ N.\n(b) The acceleration is $a = 3$ m/s^2.", "T = 12 N, a = 3 m/s^2",
                  gold="12, 3", multi=True, parts=("T = 12 N", "a = 3 m/s^2")),
         )),
    Rule("answer_is", 30, finders.answer_is, strong=True, doc="'the (final) answer is ...', 'Answer: ...', "
         "'**Final Answer(s)** ...', '答案是 ...'; a lead-in line ending in ':' announces the value below it",
         cases=(
             Case("Multiplying gives the result.\nThe final answer is: $42$", "42"),
             Case("**Final Answer**\n\n42 apples", "42 apples"),
             Case("答案是 42", "42"),
             Case("**Final Answers**\n\n$x = 5$", "x = 5", gold="5"),
             Case("**Final Answer**\nThe energy released is:\n\\[ E = 17.5 \\text{ MeV} \\]", "E = 17.5 MeV",
                  gold="17.5"),
             Case("Final Answer:\n- $x = 3$", "x = 3", gold="3"),
             Case("The answer is （B）.", "B", gold="B", choices=MC),
         )),
    Rule("whole", 40, finders.whole, choice_text=False, doc="the whole region, when it is one short line that is "
         "not a sentence ('42', '(B)', 'x = 5'); a sentence too when the gold answer is a word or phrase", cases=(
             Case("42", "42"),
             Case("x = 5", "x = 5", gold="5"),
             Case("The city is Tampa.", "The city is Tampa", gold="Tampa"),
             Case("I am not sure.", None, rule="none"),
         )),
    Rule("letter", 50, finders.letter_line, kinds=(CHOICE,), doc="(multiple choice) a closing line naming an "
         "option: '(B)', 'B: 40°', 'Option B', '**B**', '... (B).'", cases=(
             Case("The middle option fits.\n(B)", "B", gold="B", choices=MC),
             Case("After checking, it is option C.", "C", gold="B", choices=MC),
             Case("So the kittens are in picture D.\n\nOption D", "D", gold="D"),
         )),
    Rule("option_mention", 60, finders.option_mention, kinds=(CHOICE,), enabled=lambda p: p.option_mentions,
         doc="(MMMU profile) exactly one option's text named in the last paragraph", cases=(
             Case("It must be the pancreas, which makes the juice.", "B", gold="B",
                  choices=("rectum", "pancreas", "stomach"), profile="mmmu"),
             Case("Either the rectum or the stomach.", None, gold="B", choices=("rectum", "pancreas", "stomach"),
                  profile="mmmu", rule="none"),
             Case("It must be the pancreas, which makes the juice.", None, gold="B",
                  choices=("rectum", "pancreas", "stomach"), rule="none"),
         )),
    Rule("final_statement", 70, finders.statement, choice_text=False, doc="the value closing the last lines: "
         "'... is 9.', '$$\\tan A = 2$$', 'X is the correct answer', the one number of a concluding sentence; "
         "re-checks skipped; a text cut off mid-sentence states none", cases=(
             Case("Six sevens make forty-two.\nTherefore, $6 \\times 7 = 42$.", "42"),
             Case("So, in conclusion, Karla would have saved 550 gallons of water.", "550", gold="550"),
             Case("Thus the time taken is **1.2 s**.", "1.2 s", gold="1.2"),
             Case("So, \\( x = 8k + 3 \\) for some", None, rule="none"),
         )),
    Rule("display", 80, finders.display, kinds=(FREE,), doc="a last display equation that only remarks without "
         "values follow", cases=(
             Case("The speed at the bottom is\n\\[ v = 3.2 \\text{ m/s} \\]\n\nThis is consistent with energy "
                  "conservation, as expected.\nThe ball keeps rolling after that.\nIt never stops on the flat part.\n"
                  "Friction was neglected throughout.", "v = 3.2 m/s", gold="3.2"),
             Case("Hence\n$$\\frac{a}{b} = \\frac{3}{4}$$\nwhich is what we wanted", None, gold="3/4",
                  rule="none"),
         )),
)

RULE_NAMES = tuple(r.name for r in EXTRACTION_RULES) + ("none",)
STRONG_RULES = tuple(r.name for r in EXTRACTION_RULES if r.strong)
