"""torchvision next to a torch build it was not compiled for.

PyPI's Linux torchvision wheels are built against CUDA torch; next to a CPU-only torch (from
PyTorch's CPU index, or a local wheel) their compiled operators do not load, and
``import torchvision`` then fails registering fake kernels for ``nms``/``qnms`` — in the
``backbone`` architecture, and in transformers, which imports torchvision when it is installed.
Neither needs those operators. :func:`install` adds an import hook (no import of torch until
torchvision itself is imported) that, the first time torchvision is imported, loads its compiled
operators and, only if they cannot load, declares the two schemas so the import succeeds. With
a matching torch and torchvision it changes nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path
from typing import Any

_DECLARED: list[Any] = []  # the declared schemas live as long as their library objects


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "torchvision":
            sys.meta_path.remove(self)  # once; the usual finders then import it
            declare_missing_operators()
        return None


def declare_missing_operators() -> None:
    """Load torchvision's compiled operators; where they cannot load, declare ``nms`` and
    ``qnms`` so that ``import torchvision`` works (the models need neither)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return
    import torch

    compiled = next(Path(spec.origin).parent.glob("_C.*"), None)
    try:
        if compiled is not None:
            torch.ops.load_library(str(compiled))
    except OSError:
        if not hasattr(torch.ops.torchvision, "nms"):
            library = torch.library.Library("torchvision", "DEF")
            for op in ("nms", "qnms"):
                library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _DECLARED.append(library)


def install() -> None:
    """Apply :func:`declare_missing_operators` before torchvision's first import."""
    if "torchvision" in sys.modules or any(isinstance(f, _BeforeTorchvision)
                                           for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _BeforeTorchvision())
