"""Register Virgo's processors the moment transformers' ``AutoProcessor`` is imported, and no earlier.

``import virgo`` calls `install`. Registering at once would import torch and transformers (seconds) in every
``virgo`` command, even those that never load a model; not registering would leave a user's
``AutoProcessor.from_pretrained(tiny_dir)`` silently returning a bare tokenizer. So this hook waits: when
``transformers.models.auto.processing_auto`` finishes importing (or if it already has), it imports
`virgo.modeling.processor`, which registers every family. The hook is a standard ``sys.meta_path`` finder that
wraps that one module's loader (importlib's documented extension point) and removes itself once used.
"""

from __future__ import annotations

import importlib.machinery
import sys
from types import ModuleType
from typing import Any

TARGET = "transformers.models.auto.processing_auto"


def _register() -> None:
    import virgo.modeling.processor  # noqa: F401  (registers on import)


class _RegisteringLoader:  # the importlib Loader protocol (importlib.abc is not imported: it is slow to import)
    def __init__(self, loader: Any):
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        _register()


class _Finder:  # the importlib MetaPathFinder protocol
    def find_spec(self, name: str, path: Any, target: ModuleType | None = None):
        if name != TARGET:
            return None
        uninstall()
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


_FINDER = _Finder()


def install() -> None:
    """Register now if ``AutoProcessor`` is already imported, else when it is."""
    if TARGET in sys.modules:
        _register()
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
