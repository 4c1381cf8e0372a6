"""Hostile model output through ``grade_many``: nothing is executed, every item is graded within the time limit,
a stuck worker is killed without disturbing the rest of the batch, and the run completes."""

from __future__ import annotations

import time

import pytest

from virgo.grade import GradingPool, grade_many
from virgo.grade.core import Job
from virgo.grade.profiles import get_profile
from virgo.records import Generation, Problem

GOLD = Problem(id="h", question="What is 3 + 7?", answer="10")
TOWER = r"\boxed{10^{10^{10^{10}}}}"  # sympy would evaluate an integer with 10^10 digits


def _hostile(sentinel) -> dict[str, str]:
    touch = f"open('{sentinel}', 'w').write('executed')"
    return {
        "import_os": f"The answer is __import__('os').system('touch {sentinel}')",
        "boxed_exec": f'\\boxed{{exec("{touch}")}}',
        "boxed_eval_lambda": f"\\boxed{{(lambda: {touch})()}}",
        "sympify_bait": f"\\boxed{{Symbol('x').__class__.__init__.__globals__['__builtins__']['exec'](\"{touch}\")}}",
        "latex_command": r"\boxed{\input{/etc/passwd}}",
        "power_tower": TOWER,
        "bigger_tower": r"\boxed{9^{9^{9^{9^{9}}}}}",
        "huge_factorial": r"The answer is $(10^{10})!$.",
        "nested_braces": "\\boxed{" + "{" * 10_000 + "7" + "}" * 10_000 + "}",
        "nested_unclosed": "\\boxed{" + "{" * 10_000 + "7",
        "five_megabytes": ("Let me think about this again. " * 170_000)[:5_000_000] + " So the answer is 11.",
        "five_megabytes_of_boxes": "\\boxed{1}" * 560_000,
        "lone_surrogates": "The answer is \udcff\ud800 \udc80",
        "invalid_utf8": b"The answer is \xff\xfe\xc3( 9".decode("utf-8", "surrogateescape"),
        "null_bytes": "The answer is \x00\x00 12",
        "markers_only": "<|begin_of_thought|><|end_of_thought|><|begin_of_solution|><|end_of_solution|>" * 3,
    }


def test_hostile_inputs_are_graded_within_the_limit_and_nothing_runs(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    hostile = _hostile(sentinel)
    items, names = [], []
    for i, (name, text) in enumerate(hostile.items()):
        items.append((GOLD, Generation(id="h", sample=2 * i, text=text, finish_reason="stop")))
        names.append(name)
        # A plain correct answer after every hostile one: the batch around them must be graded normally.
        items.append((GOLD, Generation(id="h", sample=2 * i + 1, text=r"So the total is \boxed{10}.",
                                       finish_reason="stop")))
        names.append("normal")
    assert len(hostile["five_megabytes"]) > 4_900_000

    t0 = time.monotonic()
    grades = grade_many(items, workers=2, timeout=2.0)
    elapsed = time.monotonic() - t0

    assert not sentinel.exists(), "model text was executed"
    assert [g.sample for g in grades] == list(range(len(items)))
    verdicts = {}
    for name, g in zip(names, grades):
        if name == "normal":
            assert (g.verdict, g.graded_by) == ("correct", "exact"), g
        else:
            verdicts[name] = g
            assert g.verdict in ("wrong", "no_answer", "truncated"), (name, g)
            assert g.extracted is None or len(g.extracted) < 1100  # stored answers stay small
    # The numeric monsters cost one time limit each, then their worker is replaced.
    for name in ("power_tower", "bigger_tower", "huge_factorial"):
        assert verdicts[name].graded_by == "timeout", verdicts[name]
    # A box that never closes is never credited: the text was cut inside its answer.
    assert (verdicts["nested_unclosed"].verdict, verdicts["nested_unclosed"].graded_by) == ("truncated", "status")
    assert verdicts["five_megabytes"].extracted == "11"
    # Three 2-second limits on two workers plus the rest of the batch; generous for a loaded machine.
    assert elapsed < 60, elapsed


def test_a_stuck_worker_is_killed_and_the_batch_goes_on():
    prof = get_profile("default")
    texts = [r"\boxed{10}", TOWER, r"\boxed{11}", r"The answer is 10.", r"\boxed{10}"]
    jobs = [Job(GOLD, t, "stop", prof, i) for i, t in enumerate(texts)]
    with GradingPool(1, timeout=1.0) as pool:  # one worker: everything after the tower waits for the kill
        t0 = time.monotonic()
        grades = list(pool.imap(jobs))
        elapsed = time.monotonic() - t0
        assert pool.killed == 1
    assert [g.sample for g in grades] == [0, 1, 2, 3, 4]
    assert [g.verdict for g in grades] == ["correct", "wrong", "wrong", "correct", "correct"]
    assert grades[1].graded_by == "timeout" and "worker killed" in grades[1].detail
    assert [g.graded_by for g in grades[2:]] == ["numeric", "exact", "exact"]
    assert elapsed < 30, elapsed


class _BlocksOnArrival:
    """Unpickles as ``time.sleep(seconds)``: a worker receiving a job holding it sits blocked in a system call,
    using no CPU -- the case the CPU limit alone cannot catch. The pool and the grader are the production ones;
    only the job is pathological (the worker unpickles it after the item's clock has started)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __reduce__(self):
        return (time.sleep, (self.seconds,))


def test_a_blocked_worker_is_killed_at_about_the_time_limit():
    prof = get_profile("default")
    jobs = [Job(GOLD, r"\boxed{10}", "stop", prof, 0),
            Job(GOLD, r"\boxed{10}", _BlocksOnArrival(60), prof, 1),  # blocked for a minute unless killed
            Job(GOLD, r"\boxed{10}", "stop", prof, 2)]
    timeout = 1.0
    with GradingPool(1, timeout=timeout) as pool:
        t0 = time.monotonic()
        grades = list(pool.imap(jobs))
        elapsed = time.monotonic() - t0
        assert pool.killed == 1
    assert [(g.sample, g.verdict, g.graded_by) for g in grades] == [
        (0, "correct", "exact"), (1, "wrong", "timeout"), (2, "correct", "exact")]
    assert "wall time" in grades[1].detail and "worker killed" in grades[1].detail
    # About the limit (timeout + a 0.5 s margin), not a generous backstop: the old one waited 30 s. The slack
    # covers the replacement worker's start and a loaded machine.
    assert elapsed < timeout + 6, elapsed


def test_pool_requires_a_context_manager():
    with pytest.raises(RuntimeError, match="context manager"):
        next(GradingPool(1).imap([]))
