"""Evaluation: benchmark registry (official layouts), eval runs, metrics, reports, paper numbers.

    from virgo.eval import get_benchmark, evaluate
    problems = get_benchmark("mathvision").load("../shared/data/mathvision", "testmini")
    metrics = evaluate("path/to/model", problems[:20], "runs/mv", GenerateConfig(max_new_tokens=64), "mathvision")
"""

from virgo.eval.registry import BenchmarkSpec, filter_problems, get_benchmark, list_benchmarks, select
from virgo.eval.sources import DataMissingError


def __getattr__(name: str):
    # evaluate/rescore pull in inference and grading; import them only when asked for.
    if name in ("evaluate", "rescore", "score"):
        from virgo.eval import run

        return getattr(run, name)
    if name == "render_report":
        from virgo.eval.report import render_report

        return render_report
    raise AttributeError(name)


__all__ = ["BenchmarkSpec", "DataMissingError", "evaluate", "filter_problems", "get_benchmark", "list_benchmarks",
           "render_report", "rescore", "select"]
