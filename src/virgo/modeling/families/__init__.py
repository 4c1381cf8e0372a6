"""The registry of supported model families: one module per family, listed here once.

A new family (InternVL, LLaVA-OneVision, ...) is a module beside these that defines ``FAMILY`` (a
`virgo.modeling.families.base.Family`), plus one entry below. Order matters only for detection: the first family
whose config matches wins. The rest of Virgo reaches them through `virgo.modeling.family` (``detect``).
"""

from __future__ import annotations

from virgo.modeling.families import qwen2_5_vl, qwen2_vl, qwen3_vl

FAMILIES = (qwen2_vl.FAMILY, qwen2_5_vl.FAMILY, qwen3_vl.FAMILY)
