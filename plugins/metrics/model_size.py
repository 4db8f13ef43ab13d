"""Model size metrics: parameter count and non-zero parameter count."""

from __future__ import annotations

import automl
from automl.components import EvalContext, Metric


def weights(model) -> "list":
    """The model's weight and bias tensors, float or quantized: a torch.ao quantized layer keeps
    its weights packed (``weight()``/``bias()`` methods, no Parameters); they are dequantized here,
    so a quantized model counts the same parameters as its float original, and its zeros."""
    import torch

    tensors = []
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if callable(weight) and not isinstance(weight, torch.Tensor):
            packed = weight()
            tensors.append(packed.dequantize() if packed.is_quantized else packed)
            bias = module.bias() if callable(getattr(module, "bias", None)) else None
            if bias is not None:
                tensors.append(bias)
        elif callable(getattr(module, "get_weight", None)) and hasattr(module,
                                                                        "_all_weight_values"):
            # a dynamically quantized LSTM/GRU: its weights and biases by name
            for value in [*module.get_weight().values(), *module.get_bias().values()]:
                tensors.append(value.dequantize() if value.is_quantized else value)
    return tensors + list(model.parameters())


class Params(Metric):
    name = "params"
    description = "number of parameters of the final model"
    direction = "min"
    model_only = True
    recorded = "always"
    aggregate = "sum"  # an ensemble holds every member

    def compute(self, ctx: EvalContext) -> float:
        return float(sum(p.numel() for p in weights(ctx.model)))


class NonzeroParams(Metric):
    name = "nonzero_params"
    description = "number of non-zero parameters of the final model (after pruning)"
    direction = "min"
    model_only = True
    recorded = "always"
    aggregate = "sum"  # an ensemble holds every member

    def compute(self, ctx: EvalContext) -> float:
        return float(sum(int(p.count_nonzero()) for p in weights(ctx.model)))


@automl.hookimpl
def automl_register_metrics(registrar):
    registrar.add(Params)
    registrar.add(NonzeroParams)
