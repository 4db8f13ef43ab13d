"""Cutout: zero a random `size` x `size` square of each image (clipped at the borders)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import automl
from automl.components import Augmentation, ParamDef
from automl.params import FloatRange, IntRange

if TYPE_CHECKING:
    import torch


def cut(x: "torch.Tensor", top: "torch.Tensor", left: "torch.Tensor", size: int) -> "torch.Tensor":
    """Zero rows ``[top[i], top[i] + size)`` x columns ``[left[i], left[i] + size)`` of image i.

    Corners may lie outside the image; the square is clipped. Every channel is zeroed.
    """
    import torch

    _, _, height, width = x.shape
    top = top.to(x.device)[:, None]
    left = left.to(x.device)[:, None]
    rows = torch.arange(height, device=x.device)[None, :]
    cols = torch.arange(width, device=x.device)[None, :]
    in_rows = (rows >= top) & (rows < top + size)  # N x H
    in_cols = (cols >= left) & (cols < left + size)  # N x W
    square = in_rows[:, :, None] & in_cols[:, None, :]  # N x H x W
    return x.masked_fill(square[:, None], 0)


class Cutout(Augmentation):
    name = "cutout"
    description = "zero a random size x size square of each image, centred anywhere in it"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    params = {
        "size": ParamDef(IntRange(1, 4), int, "side of the zeroed square in pixels"),
        "p": ParamDef(FloatRange(0.2, 1.0), float, "probability that an image is cut"),
    }

    def apply(self, x, y, params: dict[str, Any], generator):
        import torch

        size = int(params["size"])
        if size <= 0 or len(x) == 0:
            return x, y
        n, _, height, width = x.shape
        # Centres uniform over the image (as in DeVries & Taylor), so squares near a border are
        # partly outside it.
        centre_r = torch.randint(0, height, (n,), generator=generator, device=generator.device)
        centre_c = torch.randint(0, width, (n,), generator=generator, device=generator.device)
        skip = torch.rand(n, generator=generator, device=generator.device) >= float(params["p"])
        top = centre_r - size // 2
        top[skip] = height  # entirely below the image: nothing is cut
        return cut(x, top, centre_c - size // 2, size), y


@automl.hookimpl
def automl_register_augmentations(registrar):
    registrar.add(Cutout)
