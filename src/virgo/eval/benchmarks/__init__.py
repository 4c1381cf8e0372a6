"""One loader per official benchmark layout (plus a generic JSONL loader).

Each module exposes ``NAME`` (the ``loader:`` key of a spec), ``OPTIONS`` (accepted loader options
with defaults) and ``load(ctx: LoadContext) -> list[Problem]``. Shared logic lives in
``virgo.eval.sources``.
"""
