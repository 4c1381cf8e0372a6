"""Evaluation: benchmark registry (official layouts), eval runs, metrics, reports, paper numbers.

    from virgo.eval import get_benchmark, evaluate
    problems = get_benchmark("mathvision").load("../shared/data/mathvision", "testmini")
    metrics = evaluate("path/to/model", problems[:20], "runs/mv", GenerateConfig(max_new_tokens=64), "mathvision")

Names are imported on first use: importing a loader (``virgo.eval.benchmarks.<name>``) does not import the
registry, and ``evaluate`` pulls in inference and grading only when asked for.
"""

import importlib

_WHERE = {
    "BenchmarkSpec": "virgo.eval.registry", "filter_problems": "virgo.eval.registry",
    "get_benchmark": "virgo.eval.registry", "list_benchmarks": "virgo.eval.registry", "select": "virgo.eval.registry",
    "DataMissingError": "virgo.eval.sources", "evaluate": "virgo.eval.run", "rescore": "virgo.eval.run",
    "score": "virgo.eval.run", "render_report": "virgo.eval.report", "run_sweep": "virgo.eval.sweep",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)


__all__ = ["BenchmarkSpec", "DataMissingError", "evaluate", "filter_problems", "get_benchmark", "list_benchmarks",
           "render_report", "rescore", "run_sweep", "score", "select"]
