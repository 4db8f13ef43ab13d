"""A ResNet-style CNN for small images: stem, residual basic blocks, global average pool."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import automl
from automl.components import Architecture, DataSpec, ParamDef
from automl.params import FloatRange, IntRange


@functools.cache
def _module_classes() -> dict[str, type]:
    """Define the torch modules on first use, so importing the plugin does not import torch."""
    from torch import nn

    class BasicBlock(nn.Module):
        """Two 3x3 conv-BN layers plus the input (1x1 conv-BN projection when the shape changes)."""

        def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)
            self.relu = nn.ReLU()
            self.shortcut: nn.Module = nn.Identity()
            if stride != 1 or in_channels != out_channels:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                    nn.BatchNorm2d(out_channels))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.shortcut(x))

    classes = {"BasicBlock": BasicBlock}
    for name, cls in classes.items():  # picklable as automl_plugins.architectures.resnet.<name>
        cls.__module__ = __name__
        cls.__qualname__ = name
    return classes


def __getattr__(name: str) -> type:
    """Module attributes ``BasicBlock``, created lazily (lets pickle find the class)."""
    classes = _module_classes() if name == "BasicBlock" else {}
    if name in classes:
        return classes[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ResNet(Architecture):
    name = "resnet"
    description = "ResNet-style CNN: stem, `blocks` residual blocks of `width` channels, avg pool"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    params = {
        "blocks": ParamDef(IntRange(1, 4), int,
                           "residual blocks; each after the first halves the size (while >= 4) "
                           "and doubles the channels"),
        "width": ParamDef(IntRange(16, 64, log=True), int, "channels of the stem and first block"),
        "dropout": ParamDef(FloatRange(0.0, 0.3), float, "dropout before the classifier"),
    }

    def build(self, params: dict[str, Any], spec: DataSpec):
        from torch import nn

        block = _module_classes()["BasicBlock"]
        blocks, width = int(params["blocks"]), int(params["width"])
        if blocks < 1 or width < 1:
            raise ValueError(f"blocks and width must be at least 1, got {blocks} and {width}")
        in_channels, height, image_width = spec.input_shape
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
        for index in range(blocks):
            stride, out_channels = 1, channels
            if index > 0 and min(height, image_width) >= 4:
                stride, out_channels = 2, channels * 2
                height, image_width = (height + 1) // 2, (image_width + 1) // 2
            layers.append(block(channels, out_channels, stride))
            channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(float(params["dropout"])),
                   nn.Linear(channels, spec.output_size)]
        return nn.Sequential(*layers)


@automl.hookimpl
def automl_register_architectures(registrar):
    registrar.add(ResNet)
