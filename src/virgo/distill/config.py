"""`DistillConfig`: everything `virgo distill` takes, nesting the shared decoding, client and grading configs."""

from __future__ import annotations

from dataclasses import dataclass

from virgo.config.fields import opt, section
from virgo.grade.config import GradeConfig
from virgo.infer.config import ClientConfig, GenerateConfig

POLICIES = ("shortest", "random", "all")
LENGTH_UNITS = ("chars", "tokens")


@dataclass
class BandConfig:
    """Which problems keep their rollouts: the paper's difficulty bands (section 3.3)."""

    band: str = opt("solved", help="Which problems to keep: solved (>= 1 correct rollout, the paper's main rule), "
                    "medium (4-5 of 5 correct), hard (2-3), unused (0-1), easy, a list like medium,hard, random "
                    "(random problems regardless of the base model), or all.")
    random_size: int | None = opt(None, ge=0, help="Problems drawn by --band random (null = the medium band's "
                                  "size).")
    medium_min: int = opt(4, ge=1, help="Correct rollouts out of --band-per for medium.")
    hard_min: int = opt(2, ge=1, help="Correct rollouts out of --band-per for hard.")
    band_per: int = opt(5, ge=1, help="Rollout count the thresholds refer to (scaled to --n).")
    policy: str = opt("shortest", choices=POLICIES, help="Per problem keep the shortest correct rollout, a random "
                      "one, or all.")

    def spec(self):
        from virgo.distill.bands import BandSpec, parse_selection

        parse_selection(self.band)  # a typo fails before any rollout
        return BandSpec(medium_min=self.medium_min, hard_min=self.hard_min, per=self.band_per)

    def validate(self) -> None:
        self.spec()


@dataclass
class FormatConfig:
    """What a usable rollout must satisfy (`virgo.distill.filters.FormatSpec`)."""

    require_complete: bool = opt(True, help="Require closed thought and solution sections.")
    length_unit: str = opt("chars", choices=LENGTH_UNITS, help="Unit of the thought length bounds.")
    min_thought: int | None = opt(None, ge=0, help="Shortest thought kept (in --length-unit).")
    max_thought: int | None = opt(None, ge=0, help="Longest thought kept (in --length-unit).")
    max_ngram_repeat: float = opt(0.3, ge=0, help="Reject when more than this share of word n-grams are repeats "
                                  "(>= 1 = off).")
    ngram: int = opt(10, ge=1, help="n of the repetition n-grams (words).")
    max_line_repeats: int = opt(5, ge=0, help="Reject when one line (>= 16 chars) occurs more often than this "
                                "(0 = off).")

    def spec(self):
        from virgo.distill.filters import FormatSpec

        return FormatSpec(require_complete=self.require_complete, unit=self.length_unit,
                          min_thought=self.min_thought, max_thought=self.max_thought, ngram=self.ngram,
                          max_ngram_repeat=self.max_ngram_repeat if self.max_ngram_repeat < 1 else None,
                          max_line_repeats=self.max_line_repeats if self.max_line_repeats > 0 else None)


def _rollout_decoding() -> GenerateConfig:
    # Rollouts sample (the paper's bands count correct samples of 5); the rest is the paper's decoding.
    return GenerateConfig(n=5, temperature=1.0, top_p=0.95)


@dataclass
class DistillConfig:
    """`virgo distill`: teacher rollouts on visual problems, graded, banded and filtered into long thoughts."""

    problems: str = opt(short="-p", path=True, help="Problems JSONL (virgo Problem records: id, question, answer, "
                        "images).")
    out: str = opt(short="-o", path=True, help="Rollouts JSONL (append-only; rerunning resumes). Grades, dataset "
                   "and stats are written beside it: OUT.grades.jsonl, OUT.dataset.jsonl, OUT.dataset.stats.json.")
    teacher: str | None = opt(None, short="-t", help="Teacher: an http(s) URL of an OpenAI-compatible server (vllm "
                              "serve, virgo serve, a hosted API) or a local model directory (e.g. a `virgo train` "
                              "output).")
    teacher_model: str | None = opt(None, help="Model name to request from a URL teacher (e.g. "
                                    "Qwen/QVQ-72B-Preview).")
    limit: int | None = opt(None, ge=1, help="Use only the first N problems.")
    filter_only: bool = opt(False, help="Do not generate: grade and filter the rollouts already in --out.")
    rollouts_only: bool = opt(False, help="Generate rollouts only; no grading or dataset.")
    dataset: str | None = opt(None, path=True, help="Where to write the long-thought dataset (null = "
                              "OUT.dataset.jsonl).")
    stats: str | None = opt(None, path=True, help="Where to write the stats JSON (null = beside the dataset, "
                            ".stats.json).")
    base_greedy: str | None = opt(None, path=True, help="The base model's greedy answers (Generation or Grade "
                                  "JSONL): problems it solves are 'easy' and dropped (except by --band random).")
    base_model: str | None = opt(None, help="Generate the base model's greedy answers with this model (URL or "
                                 "path).")
    base_model_name: str | None = opt(None, help="Model name to request from a URL base model.")
    source: str | None = opt(None, help="Teacher name recorded in each example (null = from the rollouts).")
    force: bool = opt(False, help="Append rollouts to --out even when it was written with other settings "
                      "(teacher, prompt, decoding); without it such a rerun refuses.")
    progress: bool = opt(True, help="Show progress bars.")
    generate: GenerateConfig = section(GenerateConfig, help="Rollout decoding", factory=_rollout_decoding)
    client: ClientConfig = section(ClientConfig, help="HTTP client (URL teachers and base models)")
    bands: BandConfig = section(BandConfig, help="Difficulty bands and selection")
    format: FormatConfig = section(FormatConfig, help="Format and repetition filters")
    grade: GradeConfig = section(GradeConfig, help="Grading of the rollouts")

    def validate(self) -> None:
        if self.filter_only and self.rollouts_only:
            raise ValueError("--filter-only and --rollouts-only exclude each other")
        if not self.filter_only and not self.teacher:
            raise ValueError("a teacher is required (--teacher), or --filter-only")
        if self.base_greedy and self.base_model:
            raise ValueError("give --base-greedy or --base-model, not both")
