"""Feature dropout for tabular data: zero each feature of each row with probability `p`."""

from __future__ import annotations

from typing import Any, ClassVar

import automl
from automl.components import Augmentation, ParamDef
from automl.params import FloatRange


class FeatureDropout(Augmentation):
    name = "feature_dropout"
    description = "zero each feature with probability p (0 is the mean of a standardised feature)"
    data_kinds: ClassVar[tuple[str, ...]] = ("tabular",)
    params = {
        "p": ParamDef(FloatRange(0.02, 0.3), float, "probability that a feature is zeroed"),
    }

    def apply(self, x, y, params: dict[str, Any], generator):
        import torch

        p = float(params["p"])
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if p == 0.0:
            return x, y
        drop = torch.rand(x.shape, generator=generator, device=generator.device) < p
        return x.masked_fill(drop.to(x.device), 0), y


@automl.hookimpl
def automl_register_augmentations(registrar):
    registrar.add(FeatureDropout)
