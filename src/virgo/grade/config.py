"""`GradeConfig`: how answers are graded, nested by every stage that grades (grade, eval, distill, rl), so the
training reward, the distillation filter and the reported metric all decide correctness the same way."""

from __future__ import annotations

from dataclasses import dataclass

from virgo.config.fields import opt


@dataclass
class GradeConfig:
    """The grading profile, its adjustments and the grading bounds; ``profile_obj()`` is the resolved
    `virgo.grade.Profile`."""

    profile: str | None = opt(None, deprecated=["benchmark"], help="Grading profile: default, mathvision, "
                              "mathverse, olympiadbench, mmmu, mathvista, wemath, logicvista, dynamath, scibench (a "
                              "benchmark name starting with one of these selects it). null = the benchmark's own "
                              "(eval) or default.")
    max_answer_chars: int | None = opt(None, ge=1, help="Grade extracted answers longer than this wrong "
                                       "(OlympiadBench's official rule uses 100). Off by default.")
    unclosed_solution: str | None = opt(None, choices=["evidence", "truncated", "grade"], help="A solution section "
                                        "that never closed: 'evidence' grades it when the model stopped on its own "
                                        "and a closed box follows the thought, 'truncated' never grades it, 'grade' "
                                        "grades it whenever the model stopped on its own with a final answer. null "
                                        "= the profile's ('evidence').")
    workers: int | None = opt(None, ge=0, help="Grading processes (null = all cores; 0 = in this process, no time "
                              "limit).")
    grade_timeout: float = opt(2.0, gt=0, deprecated=["timeout"], help="Seconds per response (CPU time, or wall "
                               "time its worker runs or blocks); a response over it is graded wrong (timeout) and "
                               "its worker replaced.")
    judge_url: str | None = opt(None, env="VIRGO_JUDGE_URL", help="OpenAI-compatible endpoint of an LLM judge for "
                                "what the rules leave undecided (no answer found, or answers the rules cannot "
                                "compare). The key comes from $VIRGO_JUDGE_API_KEY or $OPENAI_API_KEY.")
    judge_model: str | None = opt(None, env="VIRGO_JUDGE_MODEL", help="Judge model name (null = the first model "
                                  "the endpoint lists).")
    judge_cache: str | None = opt(None, path=True, help="Judge reply cache (JSONL; null = "
                                  "$VIRGO_CACHE/judge-cache.jsonl).")
    thought_markers: list[str] = opt([], metavar="OPEN...CLOSE", help="More thought markers, besides Virgo's and "
                                     "<think>...</think>: each an opening and a closing marker written "
                                     "'<open>...<close>' (e.g. '<reasoning>...</reasoning>'). Nothing inside a "
                                     "thought is graded.")
    thought_answers: bool | None = opt(None, help="Take the answer from a closed thought when the response has no "
                                       "solution part after it (null = the profile's: no).")
    rel_tol: float | None = opt(None, ge=0, help="Relative tolerance for numbers (e.g. 0.05 = 5%); null = the "
                                "profile's (none, except scibench's 5%). A flat tolerance makes 902 and 901 equal: "
                                "prefer the default written-precision rule.")
    abs_tol: float | None = opt(None, ge=0, help="Absolute tolerance for numbers of items without their own "
                                "(null = the profile's: none, except dynamath's 1e-3).")
    written_precision: bool | None = opt(None, help="A gold written with fewer figures is matched by answers that "
                                         "round to it (0.2381 for 0.24). null = the profile's (yes).")
    unit_conversion: bool | None = opt(None, help="An answer in another unit of the same dimension counts once "
                                       "converted (50 cm for 0.5 m). null = the profile's (yes).")

    def profile_obj(self, default: str = "default"):
        """The `virgo.grade.Profile` these settings select (``default`` when ``profile`` is null)."""
        from virgo.grade.profiles import get_profile, profile_for_benchmark
        from virgo.thought import ThoughtFormat

        overrides: dict = {}
        for name in ("max_answer_chars", "unclosed_solution", "thought_answers", "rel_tol", "abs_tol",
                     "written_precision", "unit_conversion"):
            value = getattr(self, name)
            if value is not None:
                overrides[name] = value
        base = profile_for_benchmark(self.profile or default)
        if self.thought_markers:
            extra = tuple(ThoughtFormat.parse(spec) for spec in self.thought_markers)
            overrides["thought_formats"] = base.thought_formats + extra
        return get_profile(base, **overrides)

    resolved_profile = profile_obj  # the name the issue uses

    def judge(self):
        """The LLM judge, or None when no --judge-url is set (close it after use)."""
        if not self.judge_url and not self.judge_model:
            return None
        from virgo.grade import Judge

        return Judge(self.judge_url, model=self.judge_model, cache_path=self.judge_cache)
