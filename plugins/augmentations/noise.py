"""Additive gaussian noise for images and tabular features."""

from __future__ import annotations

from typing import Any, ClassVar

import automl
from automl.components import Augmentation, ParamDef
from automl.params import FloatRange


class GaussianNoise(Augmentation):
    name = "noise"
    description = "add N(0, std^2) noise to every input value"
    data_kinds: ClassVar[tuple[str, ...]] = ("image", "tabular")
    params = {
        "std": ParamDef(FloatRange(0.01, 0.3, log=True), float, "noise standard deviation"),
    }

    def apply(self, x, y, params: dict[str, Any], generator):
        import torch

        noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
        return x + noise.to(x.device) * float(params["std"]), y


@automl.hookimpl
def automl_register_augmentations(registrar):
    registrar.add(GaussianNoise)
