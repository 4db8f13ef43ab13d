"""Dynamic int8 quantization: int8 weights, activations quantized on the fly per batch.

torch.ao's ``quantize_dynamic`` replaces Linear, LSTM and GRU layers; the rest of the model stays
in float32. It needs no calibration and suits models dominated by matrix products (MLPs,
transformers' feed-forward layers) at small batch sizes.
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


def _quantizable(model: "nn.Module") -> list[type]:
    from torch import nn

    kinds = (nn.Linear, nn.LSTM, nn.GRU)
    return [k for k in kinds if any(type(m) is k for m in model.modules())]


class DynamicInt8(Quantizer):
    name = "dynamic_int8"
    description = "int8 weights of Linear/LSTM/GRU layers, activations quantized per batch (torch.ao quantize_dynamic)"

    def check(self, model: "nn.Module") -> str | None:
        if not _quantizable(model):
            return "the model has no Linear, LSTM or GRU layer for dynamic int8"
        return None

    def quantize(self, model: "nn.Module", params: dict[str, Any],
                 calibration: Iterable["torch.Tensor"]) -> "nn.Module":
        import torch
        from torch.ao.quantization import quantize_dynamic

        float_model = copy.deepcopy(model).cpu().eval()
        return quantize_dynamic(float_model, set(_quantizable(float_model)), dtype=torch.qint8)


@automl.hookimpl
def automl_register_quantizers(registrar):
    registrar.add(DynamicInt8)
