"""Loading saved weights into a freshly built model, including structurally pruned ones.

A trial saves the ``state_dict`` of its final model. After structured pruning (the ``structured``
pruner) some Linear, Conv and BatchNorm layers have fewer channels than the architecture builds, so
the saved tensors do not fit a fresh ``architecture.build(params, spec)``.
:func:`load_state_dict_resizing` first gives those layers the saved shapes, then loads strictly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

_TENSORS = ("weight", "bias", "running_mean", "running_var")


def load_state_dict_resizing(model: "nn.Module", state: dict[str, Any]) -> "nn.Module":
    """Load ``state`` into ``model``, resizing Linear/Conv/BatchNorm layers to the saved shapes.

    For every such layer whose saved tensors have other shapes, its parameters and buffers are
    replaced by tensors of the saved shapes (same dtype and device as before) and its size
    attributes (``in_features``/``out_features``, ``in_channels``/``out_channels``,
    ``num_features``) are updated; then the whole state is loaded with ``strict=True``. Only the
    channel dimensions may differ: a different kernel size or number of dimensions raises
    ``ValueError``, and missing or unexpected keys raise as ``load_state_dict`` does.

    Returns:
        the same ``model``, modified in place.
    """
    import torch
    from torch import nn

    resizable = (nn.Linear, nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm)
    with torch.no_grad():
        for prefix, module in model.named_modules():
            if not isinstance(module, resizable):
                continue
            saved = {name: state[_key(prefix, name)] for name in _TENSORS
                     if getattr(module, name, None) is not None and _key(prefix, name) in state}
            changed = {name: tensor for name, tensor in saved.items()
                       if tuple(tensor.shape) != tuple(getattr(module, name).shape)}
            if not changed:
                continue
            _check_shapes(prefix, module, saved)
            for name, tensor in changed.items():
                current = getattr(module, name)
                fresh = torch.empty(tensor.shape, dtype=current.dtype, device=current.device)
                if isinstance(current, nn.Parameter):
                    setattr(module, name, nn.Parameter(fresh, requires_grad=current.requires_grad))
                else:
                    setattr(module, name, fresh)
            _update_sizes(module)
    model.load_state_dict(state, strict=True)
    return model


def load_weights(path: str | Path) -> dict[str, Any]:
    """A saved ``state_dict``, loaded on the CPU with ``torch.load(weights_only=True)``.

    Raises:
        ConfigError: one line naming the file: it cannot be read, is not a torch file, or holds
            pickled Python objects other than tensors (which are never unpickled).
    """
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(f"cannot load weights {path}: it holds pickled Python objects, not "
                          "only tensors; automl loads weights with torch.load(weights_only=True) "
                          "and never unpickles code") from None
    except (OSError, RuntimeError, ValueError, EOFError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot load weights {path}: {first}") from None
    if not isinstance(state, dict):
        raise ConfigError(f"cannot load weights {path}: it holds a {type(state).__name__}, not a "
                          "state_dict")
    return state


def saved_size_bytes(model: "nn.Module") -> int:
    """Bytes of ``torch.save`` of the model's ``state_dict`` (as trial artifacts save it)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getbuffer().nbytes


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_shapes(prefix: str, module: "nn.Module", saved: dict[str, Any]) -> None:
    """Only channel dimensions may change: dim 0 and 1 of a weight, dim 0 of anything else."""
    for name, tensor in saved.items():
        current = tuple(getattr(module, name).shape)
        shape = tuple(tensor.shape)
        fixed = 2 if name == "weight" and len(current) >= 2 else 1
        if len(shape) != len(current) or shape[fixed:] != current[fixed:]:
            raise ValueError(f"cannot resize {_key(prefix, name)} of {type(module).__name__} from "
                             f"{list(current)} to the saved {list(shape)}: only channel counts may "
                             "differ (is this checkpoint from another architecture?)")
    if "weight" in saved and "bias" in saved and not getattr(module, "transposed", False):
        weight, bias = saved["weight"].shape, saved["bias"].shape
        if bias[0] != weight[0]:
            raise ValueError(f"saved {_key(prefix, 'bias')} has {bias[0]} entries but "
                             f"{_key(prefix, 'weight')} has {weight[0]} outputs")


def _update_sizes(module: "nn.Module") -> None:
    from torch import nn

    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif isinstance(module, nn.modules.conv._ConvNd):
        if module.transposed:  # weight: in x out/groups x kernel
            module.in_channels = module.weight.shape[0]
            module.out_channels = module.weight.shape[1] * module.groups
        else:  # weight: out x in/groups x kernel
            module.out_channels = module.weight.shape[0]
            module.in_channels = module.weight.shape[1] * module.groups
    else:  # batch norm: the affine weight or, without it, the running statistics
        tensor = module.weight if module.weight is not None else module.running_mean
        if tensor is not None:
            module.num_features = tensor.shape[0]
