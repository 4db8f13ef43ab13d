"""Half precision: the model's weights and arithmetic in float16, on a CUDA device.

Halves the saved model and, on a GPU with half-precision units, speeds inference. The quantized
model takes and returns float32 (inputs are cast to float16 at its entry, outputs back to float32)
so the trial, the metrics and the exports see the same interface as the float model. Integer
inputs (a text model's token ids) pass unchanged.

On a trial without CUDA (the model is on the CPU) it is not applied: torch's float16 kernels on
the CPU are slower than float32, which defeats the purpose; the trial keeps float32 and records
why (``not_applied``), and the search goes on.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import automl
from automl.components import Quantizer

if TYPE_CHECKING:
    import torch
    from torch import nn


def half_precision(model: "nn.Module") -> "nn.Module":
    """A float16 copy of ``model`` behind float32 inputs and outputs."""
    import torch
    from torch import nn

    class HalfPrecision(nn.Module):
        """``model`` in float16; float inputs are cast to float16, outputs back to float32."""

        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.model = inner.half()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.model(x.half() if x.is_floating_point() else x)
            return out.float()

    return HalfPrecision(copy.deepcopy(model)).eval()


class HalfPrecisionQuantizer(Quantizer):
    name = "fp16"
    description = "float16 weights and arithmetic on a CUDA device (not applied on the CPU)"
    device = "cuda"

    def check(self, model: "nn.Module") -> str | None:
        where = next((p.device.type for p in model.parameters()), "cpu")
        if where != "cuda":
            return (f"half precision needs a CUDA device; this trial's model is on the {where} "
                    "(float16 on the CPU is slower than float32)")
        return None

    def quantize(self, model: "nn.Module", params: dict[str, Any],
                 calibration: Iterable["torch.Tensor"]) -> "nn.Module":
        return half_precision(model)

    def rebuild(self, model: "nn.Module", params: dict[str, Any],
                example: "torch.Tensor") -> "nn.Module":
        return half_precision(model)


@automl.hookimpl
def automl_register_quantizers(registrar):
    registrar.add(HalfPrecisionQuantizer)
