"""Distillation and self-distillation of visual long-thought data (paper section 2.2; `virgo distill`)."""

from virgo.distill.bands import BANDS, BandSpec, band_of, select_band
from virgo.distill.dataset import POLICIES, build_dataset
from virgo.distill.filters import FormatSpec, format_reasons
from virgo.distill.pipeline import DistillPaths, distill
from virgo.distill.rollout import distill_rollouts, grade_rollouts

__all__ = [
    "BANDS",
    "POLICIES",
    "BandSpec",
    "DistillPaths",
    "FormatSpec",
    "band_of",
    "build_dataset",
    "distill",
    "distill_rollouts",
    "format_reasons",
    "grade_rollouts",
    "select_band",
]
