"""Static int8 quantization (FX graph mode): weights and activations in int8, with activation
ranges observed on training batches.

torch.ao's ``prepare_fx`` traces the model, fuses conv/batch-norm/ReLU and inserts observers;
``calibration_batches`` training batches run through it; ``convert_fx`` gives the int8 model. It
suits convolutional networks, where whole blocks run in int8. A model that FX cannot trace (data-
dependent control flow) or that takes token ids is left unquantized, with the reason recorded.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import automl
from automl.components import NotQuantizable, ParamDef, Quantizer
from automl.params import Fixed

if TYPE_CHECKING:
    import torch
    from torch import nn


class StaticInt8(Quantizer):
    name = "static_int8"
    description = "int8 weights and activations, ranges calibrated on training batches (torch.ao FX graph mode)"
    params = {
        "calibration_batches": ParamDef(Fixed(8), int, "training batches that calibrate the "
                                        "activation ranges"),
    }

    def quantize(self, model: "nn.Module", params: dict[str, Any],
                 calibration: Iterable["torch.Tensor"]) -> "nn.Module":
        import torch
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        batches = list(itertools.islice(iter(calibration),
                                        max(1, int(params.get("calibration_batches", 8)))))
        if not batches:
            raise NotQuantizable("no calibration batch")
        if not batches[0].is_floating_point():
            raise NotQuantizable("the inputs are token ids, not float activations")
        engine = torch.backends.quantized.engine
        float_model = copy.deepcopy(model).cpu().eval()
        try:
            prepared = prepare_fx(float_model, get_default_qconfig_mapping(engine),
                                  example_inputs=(batches[0][:1].cpu(),))
        except Exception as exc:  # noqa: BLE001 - torch.fx raises many kinds for untraceable code
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise NotQuantizable(f"FX graph mode cannot trace the model "
                                 f"({type(exc).__name__}: {first})") from None
        with torch.no_grad():
            for batch in batches:
                prepared(batch.cpu())
        return convert_fx(prepared)


@automl.hookimpl
def automl_register_quantizers(registrar):
    registrar.add(StaticInt8)
