"""Pretrained image backbones (torchvision ResNet-18/50, MobileNetV3, EfficientNet-B0, ViT-Tiny)
with a new head sized by the task, fine-tuned with gradual unfreezing and a slower backbone.

Weights come from a local file or folder (``weights``), never downloaded: the model is built with
``weights=None`` and the state dict loaded with ``torch.load(weights_only=True)``. The model itself
adapts its input: one channel is repeated to three, each image resized (bilinear) to
``image_size`` x ``image_size`` and normalised with ImageNet's mean and deviation (what
torchvision's weights expect), so a dataset keeps its own size (digits' 8 x 8) and an exported
model predicts on the dataset's raw inputs unchanged.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import automl
from automl.components import Architecture, DataSpec, ParamDef
from automl.errors import ConfigError
from automl.params import Fixed, FloatRange, IntRange
from automl_plugins.architectures import backbone_zoo
from automl_plugins.architectures.backbone_zoo import BACKBONES, BLOCKS, MIN_SIZE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frozen_blocks_at(epoch: int, frozen_blocks: int, frozen_epochs: int) -> int:
    """How many leading blocks are frozen during ``epoch`` (from 1): all ``frozen_blocks`` for
    the first ``frozen_epochs`` epochs, then one fewer each epoch (the deepest first)."""
    return max(0, frozen_blocks - max(0, epoch - frozen_epochs))


@functools.cache
def _module_classes() -> dict[str, type]:
    """Define the torch module on first use, so importing the plugin does not import torch."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class BackboneNet(nn.Module):
        """``body`` (a torchvision backbone returning features) and a linear ``head``; the
        input is adapted to the backbone (channels, size, normalisation) in ``forward``."""

        def __init__(self, backbone: str, body: nn.Module, features: int, outputs: int,
                     image_size: int, normalize: bool) -> None:
            super().__init__()
            self.backbone = backbone
            self.body = body
            self.head = nn.Linear(features, outputs)
            self.image_size = image_size
            self.normalize = normalize
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                                 persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                                 persistent=False)

        def forward(self, x):
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
                x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                  align_corners=False)
            if self.normalize:
                x = (x - self.mean) / self.std
            return self.head(self.body(x))

        def freeze(self, blocks: int) -> None:
            """Freeze the first ``blocks`` blocks of the body (their batch norms in eval mode,
            so their running statistics stay), train the rest."""
            for name, parameter in self.body.named_parameters():
                parameter.requires_grad_(backbone_zoo.block_of(self.backbone, name) >= blocks)
            for module in self.body.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and \
                        module.weight is not None and not module.weight.requires_grad:
                    module.eval()

    classes = {"BackboneNet": BackboneNet}
    for name, cls in classes.items():  # picklable as automl_plugins.architectures.backbone.<name>
        cls.__module__ = __name__
        cls.__qualname__ = name
    return classes


def __getattr__(name: str) -> type:
    """Module attribute ``BackboneNet``, created lazily (lets pickle find the class)."""
    classes = _module_classes() if name == "BackboneNet" else {}
    if name in classes:
        return classes[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PretrainedBackbone(Architecture):
    name = "backbone"
    description = ("torchvision image backbone (ResNet, MobileNetV3, EfficientNet, ViT-Tiny) from "
                   "local `weights`, new head, gradual unfreezing, slower backbone")
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    params = {
        "backbone": ParamDef(Fixed("resnet18"), str,
                             f"torchvision backbone: {', '.join(BACKBONES)}"),
        "weights": ParamDef(Fixed(None), (str, type(None)),
                            "state-dict file, or folder of <backbone>.pth files; unset = random "
                            "init (from scratch)", is_path=True, init_only=True),
        "image_size": ParamDef(Fixed(MIN_SIZE), int,
                               f"inputs are resized to this square inside the model (>= "
                               f"{MIN_SIZE}; ViT: a multiple of 16)"),
        "frozen_blocks": ParamDef(IntRange(0, BLOCKS), int,
                                  f"leading blocks of {BLOCKS} (stem first) frozen at the start; "
                                  f"{BLOCKS} = the whole backbone"),
        "frozen_epochs": ParamDef(IntRange(0, 3), int,
                                  "epochs before unfreezing starts; then one block per epoch, "
                                  "the deepest first"),
        "backbone_lr_factor": ParamDef(FloatRange(0.01, 1.0, log=True), float,
                                       "the backbone's learning rate relative to the head's"),
        "normalize": ParamDef(Fixed(True), bool,
                              "normalise [0, 1] inputs with ImageNet's mean and deviation"),
    }

    def build(self, params: dict[str, Any], spec: DataSpec):
        name, size = str(params["backbone"]), int(params["image_size"])
        where = f"plugin '{__name__}', architecture '{self.name}'"
        if name not in BACKBONES:
            raise ConfigError(f"{where}: unknown backbone '{name}'; valid: "
                              f"{', '.join(BACKBONES)}", path="architecture.backbone.backbone")
        patch = BACKBONES[name].patch
        if size < MIN_SIZE or (patch and size % patch):
            raise ConfigError(f"{where}: image_size must be at least {MIN_SIZE}"
                              + (f" and a multiple of {patch} for {name}" if patch else "")
                              + f", got {size}", path="architecture.backbone.image_size")
        if spec.input_shape[0] not in (1, 3):
            raise ValueError(f"backbone '{name}' reads 1- or 3-channel images, got "
                             f"{spec.input_shape[0]} channels")
        body, features = backbone_zoo.create_body(name, size)
        if params.get("weights"):
            backbone_zoo.load_weights(body, name,
                                      backbone_zoo.weights_file(str(params["weights"]), name),
                                      size, where, "architecture.backbone.weights")
        return _module_classes()["BackboneNet"](name, body, features, spec.output_size, size,
                                                bool(params["normalize"]))

    def param_groups(self, params: dict[str, Any], model: Any) -> list[dict[str, Any]]:
        """Every backbone body at ``backbone_lr_factor``; the heads at the trial's rate."""
        factor = float(params["backbone_lr_factor"])
        return [{"params": list(net.body.parameters()), "lr_factor": factor}
                for net in _nets(model)]

    def on_epoch_start(self, params: dict[str, Any], model: Any, epoch: int) -> None:
        frozen = frozen_blocks_at(epoch, int(params["frozen_blocks"]),
                                  int(params["frozen_epochs"]))
        for net in _nets(model):
            net.freeze(frozen)


def _nets(model: Any) -> list[Any]:
    """The backbone networks in ``model`` (itself, or inside the task's heads)."""
    cls = _module_classes()["BackboneNet"]
    return [m for m in model.modules() if isinstance(m, cls)]


@automl.hookimpl
def automl_register_architectures(registrar):
    registrar.add(PretrainedBackbone)
