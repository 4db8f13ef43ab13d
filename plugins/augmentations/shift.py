"""Random translation of image batches by up to `max_shift` pixels (zero padded)."""

from __future__ import annotations

from typing import Any, ClassVar

import automl
from automl.components import Augmentation, ParamDef
from automl.params import FloatRange, IntRange


class RandomShift(Augmentation):
    name = "shift"
    description = "translate each image by a random integer offset in [-max_shift, max_shift]"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    params = {
        "max_shift": ParamDef(IntRange(1, 2), int, "largest shift in pixels"),
        "p": ParamDef(FloatRange(0.2, 1.0), float, "probability that an image is shifted"),
    }

    def apply(self, x, y, params: dict[str, Any], generator):
        import torch
        import torch.nn.functional as F

        max_shift = int(params["max_shift"])
        if max_shift <= 0:
            return x, y
        n, _, height, width = x.shape
        padded = F.pad(x, (max_shift,) * 4)
        # One gather per batch: per-image offsets turned into index grids.
        offsets = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator,
                                device=generator.device)
        keep = torch.rand(n, generator=generator, device=generator.device) >= params["p"]
        offsets[keep] = 0
        offsets = offsets.to(x.device)
        rows = (torch.arange(height, device=x.device)[None, :] + max_shift - offsets[:, :1])
        cols = (torch.arange(width, device=x.device)[None, :] + max_shift - offsets[:, 1:])
        idx_rows = rows[:, None, :, None].expand(n, x.shape[1], height, padded.shape[3])
        gathered = padded.gather(2, idx_rows)
        idx_cols = cols[:, None, None, :].expand(n, x.shape[1], height, width)
        return gathered.gather(3, idx_cols), y


@automl.hookimpl
def automl_register_augmentations(registrar):
    registrar.add(RandomShift)
