"""Global unstructured magnitude pruning over all Linear and Conv weights."""

from __future__ import annotations

from typing import Any

import automl
from automl.components import ParamDef, Pruner
from automl.params import FloatRange


def _prunable(model):
    from torch import nn

    return [(m, "weight") for m in model.modules()
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]


class GlobalMagnitude(Pruner):
    name = "magnitude"
    description = "zero the `ratio` smallest-magnitude weights across all Linear/Conv layers"
    params = {
        "ratio": ParamDef(FloatRange(0.0, 0.8), float, "fraction of weights set to zero"),
    }

    def prune(self, model, params: dict[str, Any]):
        from torch.nn.utils import prune

        ratio = float(params["ratio"])
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        targets = _prunable(model)
        if ratio > 0 and targets:
            prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=ratio)
        return model

    def finalize(self, model):
        from torch.nn.utils import prune

        for module, name in _prunable(model):
            if prune.is_pruned(module) and hasattr(module, f"{name}_mask"):
                prune.remove(module, name)
        return model


@automl.hookimpl
def automl_register_pruners(registrar):
    registrar.add(GlobalMagnitude)
