"""Mixup: convex combinations of pairs of examples and of their soft targets."""

from __future__ import annotations

from typing import Any, ClassVar

import automl
from automl.components import Augmentation, ParamDef
from automl.params import FloatRange


class Mixup(Augmentation):
    name = "mixup"
    description = "mix each example and its target with another of the batch, weight ~ Beta(a, a)"
    data_kinds: ClassVar[tuple[str, ...]] = ("image", "tabular")
    # Mixing targets linearly is right for class probabilities, standardised regression values
    # (mixup for regression) and 0/1 label vectors (soft labels under a sigmoid loss); a task
    # with other targets (ranks, sets) must not get mixed targets.
    tasks: ClassVar[tuple[str, ...] | None] = ("classification", "regression", "multilabel")
    params = {
        "alpha": ParamDef(FloatRange(0.1, 1.0, log=True), float,
                          "Beta(alpha, alpha) concentration; small alpha mixes little"),
    }

    def apply(self, x, y, params: dict[str, Any], generator):
        import numpy as np
        import torch

        alpha = float(params["alpha"])
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        n = len(x)
        if n < 2:
            return x, y
        # torch cannot draw Beta variates from a given generator: seed a numpy generator from it.
        seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
        lam_np = np.random.default_rng(int(seed)).beta(alpha, alpha, size=n)
        perm = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
        lam = torch.as_tensor(lam_np, device=x.device)
        lam_x = lam.to(x.dtype).reshape((n,) + (1,) * (x.dim() - 1))
        lam_y = lam.to(y.dtype)[:, None]
        return lam_x * x + (1 - lam_x) * x[perm], lam_y * y + (1 - lam_y) * y[perm]


@automl.hookimpl
def automl_register_augmentations(registrar):
    registrar.add(Mixup)
