"""Multi-layer perceptron for tabular data and small images (flattened)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import automl
from automl.components import Architecture, DataSpec, ParamDef
from automl.params import Choice, FloatRange, IntRange

ACTIVATIONS = ("relu", "gelu", "tanh", "silu")


class MLP(Architecture):
    name = "mlp"
    description = "fully connected network: depth x width hidden layers with dropout"
    data_kinds: ClassVar[tuple[str, ...]] = ("image", "tabular")
    params = {
        "depth": ParamDef(IntRange(1, 3), int, "number of hidden layers"),
        "width": ParamDef(IntRange(32, 512, log=True), int, "units per hidden layer"),
        "dropout": ParamDef(FloatRange(0.0, 0.5), float, "dropout after each hidden layer"),
        "activation": ParamDef(Choice(("relu", "gelu")), str, f"one of {', '.join(ACTIVATIONS)}"),
    }

    def build(self, params: dict[str, Any], spec: DataSpec):
        from torch import nn

        if params["activation"] not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {params['activation']!r}")
        activation = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}
        layers: list[nn.Module] = [nn.Flatten()]
        features = math.prod(spec.input_shape)
        for _ in range(params["depth"]):
            layers += [nn.Linear(features, params["width"]), activation[params["activation"]](),
                       nn.Dropout(params["dropout"])]
            features = params["width"]
        layers.append(nn.Linear(features, spec.output_size))
        return nn.Sequential(*layers)


@automl.hookimpl
def automl_register_architectures(registrar):
    registrar.add(MLP)
