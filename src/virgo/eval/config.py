"""The configs of `virgo eval` (`EvalConfig`) and `virgo report` (`ReportConfig`).

`EvalConfig` nests the shared configs instead of copying them: decoding (`GenerateConfig`), where decoding runs
(`EngineConfig`), grading (`GradeConfig`), and the caption ablation (`CaptionConfig`). Decoding defaults are the
paper's, except the prompt: ``benchmark`` (the default) means the prompt the benchmark's spec names.
"""

from __future__ import annotations

from dataclasses import dataclass

from virgo.config.fields import opt, section
from virgo.grade.config import GradeConfig
from virgo.infer.config import BACKENDS, EngineConfig, GenerateConfig

BENCHMARK_PROMPT = "benchmark"  # GenerateConfig.prompt value meaning "the benchmark spec's prompt"
BENCH_HELP = ("Benchmark name (mathvision, mathverse, olympiadbench, mmmu, mathvista, wemath, logicvista, dynamath, "
              "mmmu_pro; `virgo eval --list`) or a path to a YAML spec.")


@dataclass
class CaptionConfig:
    """Perception-versus-reasoning ablation: every image replaced by a caption (virgo.eval.caption)."""

    captions: str | None = opt(None, path=True, help="Replace every image by its caption from this JSONL file "
                               "({image, caption} or {id, captions} per line).")
    caption_model: str | None = opt(None, help="Caption every image with this model first, then evaluate on the "
                                    "captions (resumable, captions.jsonl in the run folder).")
    caption_backend: str | None = opt(None, choices=BACKENDS, help="Backend of --caption-model (null: openai with "
                                      "--caption-base-url, else --backend).")
    caption_base_url: str | None = opt(None, help="OpenAI-compatible server that writes the captions (null: "
                                       "--base-url when the caption backend is --backend).")
    caption_max_new_tokens: int = opt(512, ge=1, help="Token limit per caption (--caption-model).")

    def validate(self) -> None:
        if self.captions is not None and self.caption_model is not None:
            raise ValueError("give --captions or --caption-model, not both")
        if self.caption_model is None and (self.caption_backend is not None or self.caption_base_url is not None):
            raise ValueError("--caption-backend/--caption-base-url go with --caption-model")

    @property
    def active(self) -> bool:
        return self.captions is not None or self.caption_model is not None


@dataclass
class EvalConfig:
    """`virgo eval`: generate (resumable) -> grade -> metrics -> report, in one run folder."""

    model: str | None = opt(None, short="-m", help="Model directory (transformers, vllm) or served model name "
                            "(openai backend).")
    benchmark: str | None = opt(None, short="-b", help=BENCH_HELP)
    data_dir: str | None = opt(None, path=True, help="Folder holding the benchmark's official files.")
    split: str | None = opt(None, help="Split (null: the benchmark's default, e.g. test / testmini / validation).")
    limit: int | None = opt(None, ge=1, help="Evaluate a seeded random subset of N items (kept in file order; the "
                            "seed is --seed).")
    where: list[str] = opt([], help="Keep items whose meta field matches, e.g. --where language=en --where "
                           "subject=maths,physics (repeatable).")
    option: list[str] = opt([], help="Loader option key=value (YAML value), e.g. --option include_text_only=true "
                            "or --option image_dir=/data/mathvista/images (repeatable).")
    out: str | None = opt(None, short="-o", path=True, help="Run folder; rerunning into the same folder resumes. "
                          "With --budgets, the sweep folder (one run folder per budget inside).")
    rescore: str | None = opt(None, path=True, help="Re-grade the generations of this run folder; no generation.")
    label: str | None = opt(None, help="Name of the model in reports (null: the model folder's name).")
    budgets: list[int] = opt([], ge=0, help="Thinking-budget sweep: one run per budget (thought-token cap), then "
                             "accuracy and thinking tokens used per budget, and their curve. `--thinking-budget "
                             "256,512,1024` is the same. A greedy answer whose thought ended under a smaller budget "
                             "is reused for the larger ones (never with sampling or --force-wait).")
    k: list[int] = opt([], ge=1, help="Which k of pass@k / maj@k / mean@k the report shows (null: 1, 2, 4, ... and "
                       "n); every k up to n is in metrics.json.")
    generate: GenerateConfig = section(GenerateConfig, help="Decoding (the paper's defaults)",
                                       factory=lambda: GenerateConfig(prompt=BENCHMARK_PROMPT))
    engine: EngineConfig = section(EngineConfig, help="Backend")
    grade: GradeConfig = section(GradeConfig, help="Grading")
    caption: CaptionConfig = section(CaptionConfig, help="Caption ablation")

    def validate(self) -> None:
        if self.rescore is not None and self.budgets:
            raise ValueError("--rescore re-grades one run folder; it does not take --budgets")
        if self.budgets and self.caption.active:
            raise ValueError("a thinking-budget sweep runs on the images; drop --captions/--caption-model")
        if len(set(self.budgets)) != len(self.budgets):
            raise ValueError(f"--budgets has repeated values: {self.budgets}")

    def missing(self) -> list[str]:
        """What a new run still needs (--rescore needs none of it)."""
        return [flag for flag, v in (("--model", self.model), ("--benchmark", self.benchmark),
                                     ("--data-dir", self.data_dir), ("--out", self.out)) if v is None]


@dataclass
class ReportConfig:
    """`virgo report`: markdown + JSON + PNG plots for one or more eval runs (or budget sweeps), side by side."""

    runs: list[str] = opt(positional=True, path=True, help="One or more `virgo eval` run folders (or sweep "
                          "folders).")
    out: str | None = opt(None, short="-o", path=True, help="Output folder (null: the run folder for one run, "
                          "./virgo-report for several).")
    label: list[str] = opt([], help="RUN=NAME: the name of a run in tables (repeatable).")
    k: list[int] = opt([], ge=1, help="Which k of pass@k / maj@k / mean@k to show (null: 1, 2, 4, ... and n).")
