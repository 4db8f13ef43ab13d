"""Random rotation of image batches by up to `max_degrees` (bilinear, zero fill)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import automl
from automl.components import Augmentation, ParamDef
from automl.params import FloatRange

if TYPE_CHECKING:
    import torch


def rotate(x: "torch.Tensor", degrees: "torch.Tensor") -> "torch.Tensor":
    """Rotate each image of ``x`` (N x C x H x W) about its centre by ``degrees[i]``.

    Positive angles turn counter-clockwise as the image is displayed (row 0 at the top), the same
    way as ``torch.rot90(x, 1, dims=(2, 3))``. Pixels from outside the image are zero.
    """
    import torch
    import torch.nn.functional as F

    n, _, height, width = x.shape
    radians = degrees.to(device=x.device, dtype=torch.float32) * (math.pi / 180.0)
    cos, sin = torch.cos(radians), torch.sin(radians)
    # affine_grid maps output to input coordinates, normalised to [-1, 1] per axis; the aspect
    # factors keep the rotation rigid on non-square images.
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=torch.float32)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * (height / width)
    theta[:, 1, 0] = sin * (width / height)
    theta[:, 1, 1] = cos
    grid = F.affine_grid(theta, [n, x.shape[1], height, width], align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.to(x.dtype)


class RandomRotation(Augmentation):
    name = "rotation"
    description = "rotate each image by a random angle in [-max_degrees, max_degrees] (zero fill)"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    params = {
        "max_degrees": ParamDef(FloatRange(5.0, 30.0), float, "largest rotation angle in degrees"),
        "p": ParamDef(FloatRange(0.2, 1.0), float, "probability that an image is rotated"),
    }

    def apply(self, x, y, params: dict[str, Any], generator):
        import torch

        max_degrees = float(params["max_degrees"])
        if max_degrees <= 0 or len(x) == 0:
            return x, y
        n = len(x)
        uniform = torch.rand(n, generator=generator, device=generator.device)
        degrees = (uniform * 2.0 - 1.0) * max_degrees
        chosen = torch.rand(n, generator=generator, device=generator.device) < float(params["p"])
        chosen = chosen.to(x.device)
        rotated = rotate(x, degrees)
        return torch.where(chosen[:, None, None, None], rotated, x), y


@automl.hookimpl
def automl_register_augmentations(registrar):
    registrar.add(RandomRotation)
