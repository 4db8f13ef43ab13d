"""A small convolutional network for images: conv-BN-ReLU blocks, pooling, global average."""

from __future__ import annotations

from typing import Any, ClassVar

import automl
from automl.components import Architecture, DataSpec, ParamDef
from automl.params import Choice, FloatRange, IntRange


class SmallCNN(Architecture):
    name = "cnn"
    description = "small CNN: `depth` conv blocks starting at `channels`, doubling after each pool"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    params = {
        "channels": ParamDef(IntRange(8, 64, log=True), int, "channels of the first block"),
        "depth": ParamDef(IntRange(1, 3), int, "number of conv blocks"),
        "kernel": ParamDef(Choice((3, 5)), int, "convolution kernel size (odd)"),
        "dropout": ParamDef(FloatRange(0.0, 0.5), float, "dropout before the classifier"),
    }

    def build(self, params: dict[str, Any], spec: DataSpec):
        from torch import nn

        kernel = params["kernel"]
        if kernel % 2 == 0 or kernel < 1:
            raise ValueError(f"kernel must be a positive odd number, got {kernel}")
        in_channels, height, width = spec.input_shape
        layers: list[nn.Module] = []
        channels = params["channels"]
        for _ in range(params["depth"]):
            layers += [nn.Conv2d(in_channels, channels, kernel, padding=kernel // 2, bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU()]
            in_channels = channels
            if min(height, width) >= 4:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
                channels *= 2
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(params["dropout"]),
                   nn.Linear(in_channels, spec.output_size)]
        return nn.Sequential(*layers)


@automl.hookimpl
def automl_register_architectures(registrar):
    registrar.add(SmallCNN)
