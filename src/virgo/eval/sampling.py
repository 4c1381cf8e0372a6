"""Metrics over n samples per problem: pass@k, maj@k and mean@k, for every k from 1 to n; and across seeds.

* **pass@k**: the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on Code",
  arXiv 2107.03374, eq. 1): with n samples of which c are correct, ``1 - C(n-c, k) / C(n, k)``, computed as the
  product ``prod_{i=n-c+1}^{n} (1 - k / i)`` (their numerically stable form; no factorials), averaged over
  problems.
* **maj@k**: a majority vote over the answers of the *first k* samples (as lighteval's ``MajAtK`` votes over
  ``predictions[:k]``; open-r1 evaluates through lighteval). Which answers are "the same" is decided by the grader's
  own equivalence, not string equality: two extracted answers a and b are the same when the grader, given a as the
  gold answer, grades b correct, or given b grades a correct (so ``1/2`` and ``0.5``, or ``B`` and the text of option
  B, are one vote). Answers are clustered greedily in sample order: each answer joins the first cluster whose first
  answer is the same as it, else starts a cluster. Because a cluster is represented by its first answer, the
  clusters of the first k samples are a prefix of the clusters of all n, so one clustering serves every k.
  A sample without a graded answer (``no_answer``, ``truncated``) does not vote. The vote is won by the cluster
  with most votes; **ties go to the cluster whose first vote came earliest** (lighteval's ``max(answers,
  key=answers.count)`` also returns the earliest of equally frequent answers); a problem where no sample voted
  counts wrong. The winning cluster is correct when its first answer was graded correct.
* **mean@k**: the accuracy of the first k samples, i.e. the mean over the k sample passes (sample 0, 1, ...) of
  each pass's accuracy, with the standard error across those passes, ``stdev(acc_0..acc_{k-1}) / sqrt(k)`` (the
  spread that sampling alone causes; None for k = 1). ``across_seeds`` gives the same for whole runs made with
  different seeds.

A problem enters the @k numbers only with at least k graded samples (``n_problems`` says how many did).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from virgo.records import Generation, Grade, Problem

VOTES = ("correct", "wrong")  # verdicts that carry a graded answer


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. 2021: the chance that at least one of k samples drawn from n (c correct) is correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def clusters(answers: Sequence[str | None], same: Callable[[str, str], bool]) -> list[int | None]:
    """The cluster index of each answer (None for no answer), greedily in order (see the module docstring)."""
    reps: list[str] = []
    out: list[int | None] = []
    for a in answers:
        if a is None:
            out.append(None)
            continue
        for i, r in enumerate(reps):
            if a == r or same(r, a):
                out.append(i)
                break
        else:
            reps.append(a)
            out.append(len(reps) - 1)
    return out


def majority(cluster_of: Sequence[int | None], k: int) -> int | None:
    """The winning cluster among the first k samples: most votes, ties to the cluster that appeared first."""
    votes: dict[int, int] = defaultdict(int)
    for c in cluster_of[:k]:
        if c is not None:
            votes[c] += 1
    if not votes:
        return None
    return max(sorted(votes), key=lambda c: votes[c])  # max keeps the first of equal counts: the lowest index


def default_ks(n: int) -> list[int]:
    """The k shown by default: powers of two up to n, and n."""
    ks = [k for k in (2 ** i for i in range(max(1, n).bit_length())) if k <= n]
    return sorted(set(ks + ([n] if n >= 1 else [])))


def _by_problem(grades: Iterable[Grade]) -> dict[str, list[Grade]]:
    out: dict[str, list[Grade]] = defaultdict(list)
    for g in grades:
        out[g.id].append(g)
    for gs in out.values():
        gs.sort(key=lambda g: g.sample)
    return out


def _answer(g: Grade) -> str | None:
    return g.extracted if g.verdict in VOTES and g.extracted is not None else None


def sampling_metrics(problems: Sequence[Problem], grades: Sequence[Grade],
                     same: Callable[[Problem, str, str], bool] | None = None) -> dict[str, Any]:
    """pass@k, maj@k, mean@k for k = 1..n (n = most samples of any problem). ``same(problem, a, b)``: the answer
    equivalence for maj@k (default: `grader_equivalence` without a pool)."""
    by_id = {p.id: p for p in problems}
    per = {pid: gs for pid, gs in _by_problem(grades).items() if pid in by_id}
    n = max((len(gs) for gs in per.values()), default=0)
    if same is None and n > 1:
        same = grader_equivalence(problems, grades)
    clustered = {pid: clusters([_answer(g) for g in gs], lambda a, b, p=by_id[pid]: same(p, a, b))
                 for pid, gs in per.items()}
    out: dict[str, Any] = {"n": n, "pass@k": {}, "maj@k": {}, "mean@k": {}}
    for k in range(1, n + 1):
        rows = {pid: gs[:k] for pid, gs in per.items() if len(gs) >= k}
        if not rows:
            continue
        m = len(rows)
        out["pass@k"][str(k)] = {"value": statistics.fmean(
            pass_at_k(len(per[pid]), sum(g.correct for g in per[pid]), k) for pid in rows), "n_problems": m}
        passes = [sum(gs[j].correct for gs in rows.values()) / m for j in range(k)]
        out["mean@k"][str(k)] = {"value": statistics.fmean(passes), "n_problems": m,
                                 "stderr": statistics.stdev(passes) / math.sqrt(k) if k > 1 else None}
        wins = 0
        for pid in rows:
            win = majority(clustered[pid], k)
            # The winning cluster's first answer decides: its grade is the vote's grade.
            wins += win is not None and per[pid][clustered[pid].index(win)].correct
        out["maj@k"][str(k)] = {"value": wins / m, "n_problems": m}
    return out


def across_seeds(accuracies: Sequence[float]) -> dict[str, Any]:
    """Mean accuracy of runs made with different seeds, with the standard error across them."""
    vals = [a for a in accuracies if a is not None]
    if not vals:
        return {"runs": 0, "mean": None, "stderr": None}
    return {"runs": len(vals), "mean": statistics.fmean(vals),
            "stderr": statistics.stdev(vals) / math.sqrt(len(vals)) if len(vals) > 1 else None}


# ----------------------------------------------------------------------------- the grader's equivalence

def _surrogate(problem: Problem, gold: str, key: str) -> Problem:
    """``problem`` with ``gold`` as its only accepted answer (the item's choices, unit, tolerance kept)."""
    meta = {k: v for k, v in problem.meta.items() if k not in ("alternatives", "final_answers", "answers")}
    return Problem(id=key, question=problem.question, answer=gold, choices=problem.choices,
                   answer_type=problem.answer_type, meta=meta)


def grader_equivalence(problems: Sequence[Problem], grades: Sequence[Grade], *, profile: Any = "default",
                       workers: int | None = 0, timeout: float = 2.0) -> Callable[[Problem, str, str], bool]:
    """``same(problem, a, b)`` from the grader: every pair of distinct answers of a problem is graded both ways, in
    one `virgo.grade.grade_many` batch (a worker pool with the grader's per-item time limit when ``workers`` is
    not 0), before any vote is counted."""
    from virgo.grade import grade_many

    answers: dict[str, list[str]] = defaultdict(list)
    for g in grades:
        a = _answer(g)
        if a is not None and a not in answers[g.id]:
            answers[g.id].append(a)
    by_id = {p.id: p for p in problems}
    items, keys = [], []
    for pid, ans in answers.items():
        if pid not in by_id or len(ans) < 2:
            continue
        for i, gold in enumerate(ans):
            for j, pred in enumerate(ans):
                if i != j:
                    key = f"{pid}\x00{i}\x00{j}"
                    items.append((_surrogate(by_id[pid], gold, key),
                                  Generation(id=key, sample=0, text=f"\\boxed{{{pred}}}", finish_reason="stop")))
                    keys.append((pid, gold, pred))
    verdicts = grade_many(items, profile=profile, workers=workers, timeout=timeout) if items else []
    equal = {key for key, g in zip(keys, verdicts) if g.correct}

    def same(problem: Problem, a: str, b: str) -> bool:
        return a == b or (problem.id, a, b) in equal or (problem.id, b, a) in equal

    return same
