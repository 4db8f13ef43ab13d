"""The torchvision image backbones the ``backbone`` architecture offers, and loading their weights
from a local file (nothing is downloaded).

Each backbone is torchvision's model built with ``weights=None`` whose final classifier layer is
replaced by an identity, so it returns features; its parameters fall into :data:`BLOCKS` ordered
blocks (stem first) that gradual unfreezing frees from the deepest one. A weights file is a
state dict as torchvision's model saves it (``model.state_dict()``); its final classifier layer
is ignored (the task gets a new head), every other tensor must fit.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.errors import ConfigError

#: the number of blocks every backbone's parameters are split into (stem first)
BLOCKS = 5
WEIGHTS_SUFFIX = ".pth"


@dataclass(frozen=True)
class Backbone:
    """How to build one backbone: the torchvision constructor and its arguments, the final
    classifier layer replaced by the new head, and the parameter-name prefixes of each block."""

    constructor: str
    head: str
    blocks: tuple[tuple[str, ...], ...]
    kwargs: tuple[tuple[str, Any], ...] = ()
    #: ViT: the input size must be a multiple of the patch size (0: any size >= MIN_SIZE)
    patch: int = 0


def _split(prefix: str, count: int, first: tuple[str, ...] = (), last: tuple[str, ...] = ()
           ) -> tuple[tuple[str, ...], ...]:
    """``prefix.0`` .. ``prefix.{count-1}`` in BLOCKS contiguous blocks (``first`` prepended to
    the first block, ``last`` appended to the last)."""
    bounds = [round(i * count / BLOCKS) for i in range(BLOCKS + 1)]
    blocks = [tuple(f"{prefix}{j}" for j in range(bounds[i], bounds[i + 1]))
              for i in range(BLOCKS)]
    blocks[0] = first + blocks[0]
    blocks[-1] = blocks[-1] + last
    return tuple(blocks)


_RESNET_BLOCKS = (("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",))
_VIT_TINY = (("image_size", 224), ("patch_size", 16), ("num_layers", 12), ("num_heads", 3),
             ("hidden_dim", 192), ("mlp_dim", 768))

BACKBONES: dict[str, Backbone] = {
    "resnet18": Backbone("resnet18", "fc", _RESNET_BLOCKS),
    "resnet50": Backbone("resnet50", "fc", _RESNET_BLOCKS),
    "mobilenet_v3_small": Backbone("mobilenet_v3_small", "classifier.3",
                                   _split("features.", 13, last=("classifier",))),
    "mobilenet_v3_large": Backbone("mobilenet_v3_large", "classifier.3",
                                   _split("features.", 17, last=("classifier",))),
    "efficientnet_b0": Backbone("efficientnet_b0", "classifier.1", _split("features.", 9)),
    # ViT-Tiny/16 (the DeiT/timm "tiny" shape) as torchvision's VisionTransformer
    "vit_tiny": Backbone("VisionTransformer", "heads.head",
                         _split("encoder.layers.encoder_layer_", 12,
                                first=("conv_proj", "class_token", "encoder.pos_embedding"),
                                last=("encoder.ln",)),
                         _VIT_TINY, patch=16),
}
#: the smallest input side: five stride-2 stages leave 1 x 1
MIN_SIZE = 32


@functools.cache
def torchvision_models() -> Any:
    """``torchvision.models`` (importable next to a torch build it was not compiled for:
    :mod:`automl_plugins.torchvision_compat`)."""
    if importlib.util.find_spec("torchvision") is None:
        raise ConfigError("the backbone architecture needs torchvision: "
                          "pip install 'automl[vision]'")
    import torchvision.models

    return torchvision.models


def create_body(name: str, image_size: int) -> tuple[Any, int]:
    """The backbone ``name`` (randomly initialised) returning features, and their number."""
    from torch import nn

    backbone = BACKBONES[name]
    models = torchvision_models()
    kwargs = dict(backbone.kwargs)
    if backbone.patch:
        kwargs["image_size"] = image_size
        body = getattr(models, backbone.constructor)(**kwargs)
    else:
        body = getattr(models, backbone.constructor)(weights=None, **kwargs)
    parent_name, _, attribute = backbone.head.rpartition(".")
    parent = body.get_submodule(parent_name)
    features = int(getattr(parent, attribute).in_features)
    setattr(parent, attribute, nn.Identity())
    return body, features


def weights_file(weights: str, name: str) -> Path:
    """The weights file for backbone ``name``: ``weights`` itself, or ``<name>.pth`` in the
    folder ``weights``."""
    path = Path(weights)
    return path / f"{name}{WEIGHTS_SUFFIX}" if path.is_dir() else path


def load_weights(body: Any, name: str, file: Path, image_size: int, where: str,
                 path: str) -> None:
    """Load the state dict in ``file`` into ``body`` (backbone ``name``), all but the final
    classifier layer; a ConfigError naming ``where`` (the plugin) and the file otherwise."""
    import torch

    backbone = BACKBONES[name]
    if not file.is_file():
        raise ConfigError(f"{where}: no weights file {file} for backbone '{name}' (save one with "
                          f"torch.save(model.state_dict(), ...); see docs/plugins.md)", path=path)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several kinds for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{where}: cannot read weights file {file} ({first}); it must be a "
                          "state dict saved with torch.save(model.state_dict(), ...)",
                          path=path) from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor)
                                                 for v in state.values()):
        raise ConfigError(f"{where}: weights file {file} holds a {type(state).__name__}, not a "
                          "state dict of tensors (save model.state_dict())", path=path)
    state = {k: v for k, v in state.items()
             if k != backbone.head and not k.startswith(backbone.head + ".")}
    if backbone.patch and "encoder.pos_embedding" in state:
        from torchvision.models.vision_transformer import interpolate_embeddings

        state = interpolate_embeddings(image_size, backbone.patch, state)
    try:
        missing, unexpected = body.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        sizes = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise ConfigError(f"{where}: weights file {file} does not fit backbone '{name}': "
                          f"{sizes[0] if sizes else str(exc).splitlines()[0]}",
                          path=path) from None
    if missing or unexpected:
        parts = [f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})"
                 for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise ConfigError(f"{where}: weights file {file} does not fit backbone '{name}': "
                          f"{'; '.join(parts)} tensors — is it another model's state dict?",
                          path=path)


def block_of(name: str, parameter: str) -> int:
    """The block (0 = stem) backbone ``name``'s parameter ``parameter`` belongs to; one no block
    names belongs to the last."""
    for index, prefixes in enumerate(BACKBONES[name].blocks):
        if any(parameter == p or parameter.startswith(p + ".") for p in prefixes):
            return index
    return BLOCKS - 1
