"""L1 structured pruning: remove whole channels and neurons, so the network really gets smaller.

For every prunable layer (a Conv1d/2d/3d with ``groups=1`` or a hidden Linear) the output channels
with the smallest L1 norm of their weights are removed, and every layer that reads those channels is
shrunk to match: the following BatchNorm (affine parameters and running statistics), the input
channels of the next Conv, and the input features of the next Linear, including a Linear after
``Flatten`` of a conv feature map (each channel owns a block of ``in_features / channels``
consecutive features) or after global pooling and ``Flatten``. The result is the same module tree
with smaller tensors (pruned in place and returned), so it runs faster and saves smaller;
``finalize`` has nothing left to do. Reload its checkpoints with
``automl.model_io.load_state_dict_resizing``.

Which layers feed which is read from a ``torch.fx`` trace of the model, so any traceable model built
from these layers works, not only the built-in ``mlp`` and ``cnn``:

* Channels that meet in an elementwise ``add``/``sub``/``mul`` of two tensors (a residual
  connection, a squeeze-excitation gate) form one group: every producer of the group keeps the same
  channels, chosen by their per-layer normalised L1 norms averaged over the producers. When that
  cannot be done safely (say, different channel counts) the group is left alone.
* Anything the analysis does not understand leaves the layers around it unpruned, never broken: an
  untraceable model (data-dependent control flow), channels that reach the model's output (so the
  classifier's outputs are never pruned), ``cat``, ``view``/``reshape``, indexing, reductions
  such as ``x.mean((2, 3))`` (use ``AdaptiveAvgPool2d`` + ``Flatten``), grouped or
  depthwise convolutions, LayerNorm/GroupNorm, shared modules or tied weights, modules with hooks or
  parametrisations, channels added to the model's input or to a stored tensor, and module types
  other than the exact torch classes listed here.

``scope: layer`` removes ``floor(ratio * channels)`` channels from each prunable group (at least
one is kept).
``scope: global`` removes ``floor(ratio * all channels)`` channels across all groups, smallest score
first, keeping at least one channel per group. Raw L1 norms are not comparable across layers (they
grow with fan-in and with the init scale), so the global score of a channel is its L1 norm divided
by the mean L1 norm of its layer.
"""

from __future__ import annotations

import functools
import math
import operator
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import automl
from automl.components import ParamDef, Pruner
from automl.params import Choice, FloatRange

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.fx import Node

SCOPES = ("layer", "global")

# How the pruned channel axis sits in a tensor.
CHANNELS_FIRST = "channels_first"  # dim 1, spatial dims after it (Conv outputs)
FEATURES = "features"  # last dim (Linear outputs)
FLAT = "flat"  # dim 1 after flatten(1): each channel owns a block of consecutive features


@dataclass
class ChannelGroup:
    """Channels that are removed together: the outputs of ``producers``, one mask for all.

    ``consumers`` are Conv/Linear layers that read the channels, ``norms`` BatchNorm layers that
    normalise them; each is ``(qualified name, flat)`` where ``flat`` means the channels arrive
    flattened (a block of features per channel). ``blocked`` says why the group is left alone.
    """

    producers: list[str] = field(default_factory=list)
    consumers: list[tuple[str, bool]] = field(default_factory=list)
    norms: list[tuple[str, bool]] = field(default_factory=list)
    blocked: str = ""
    channels: int = 0
    kept: list[int] | None = None  # set by prune_channels: the channel indices kept, ascending


@dataclass(frozen=True)
class _Value:
    group: int
    layout: str


@functools.cache
def _module_kinds() -> dict[str, tuple[type, ...]]:
    from torch import nn

    return {
        "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
        "linear": (nn.Linear,),
        "norm": (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d),
        "elementwise": (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Mish, nn.ELU,
                        nn.SELU, nn.CELU, nn.Tanh, nn.Sigmoid, nn.Hardswish, nn.Hardsigmoid,
                        nn.Hardtanh, nn.Softplus, nn.Dropout, nn.AlphaDropout, nn.Identity),
        "spatial": (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
                    nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                    nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                    nn.AdaptiveMaxPool3d, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d),
        "flatten": (nn.Flatten,),
    }


@functools.cache
def _function_kinds() -> dict[Any, str]:
    import torch
    import torch.nn.functional as F

    kinds: dict[Any, str] = {}
    for fn in (F.relu, torch.relu, F.relu6, F.gelu, F.silu, F.mish, F.elu, F.selu, F.celu,
               F.leaky_relu, F.hardswish, F.hardsigmoid, F.hardtanh, F.softplus, torch.sigmoid,
               F.sigmoid, torch.tanh, F.tanh, F.dropout, F.alpha_dropout):
        kinds[fn] = "elementwise"
    for fn in (F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
               F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
               F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
               F.dropout1d, F.dropout2d, F.dropout3d):
        kinds[fn] = "spatial"
    for fn in (operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd,
               operator.isub, operator.imul, operator.itruediv, torch.add, torch.sub, torch.mul,
               torch.div):
        kinds[fn] = "binary"
    kinds[torch.flatten] = "flatten"
    return kinds


_METHOD_KINDS = {
    "relu": "elementwise", "relu_": "elementwise", "sigmoid": "elementwise",
    "tanh": "elementwise", "contiguous": "elementwise", "clone": "elementwise",
    "add": "binary", "add_": "binary", "sub": "binary", "sub_": "binary", "mul": "binary",
    "mul_": "binary", "div": "binary", "div_": "binary", "flatten": "flatten",
}


class _Analysis:
    """Forward pass over the fx graph tracking which channel group each tensor carries."""

    def __init__(self, model: "nn.Module") -> None:
        import torch.fx

        self.model = model
        self.graph = torch.fx.symbolic_trace(model).graph
        self.groups: list[ChannelGroup] = []
        self.parent: list[int] = []
        self.values: dict[Node, _Value | None] = {}
        self.calls: dict[str, int] = {}
        for node in self.graph.nodes:
            if node.op == "call_module":
                self.calls[node.target] = self.calls.get(node.target, 0) + 1
        owners: dict[int, set[str]] = {}
        for name, param in model.named_parameters(remove_duplicate=False):
            owners.setdefault(id(param), set()).add(name.rpartition(".")[0])
        self.shared = {owner for names in owners.values() if len(names) > 1 for owner in names}

    # -- groups --------------------------------------------------------------------------------

    def find(self, index: int) -> int:
        while self.parent[index] != index:
            self.parent[index] = self.parent[self.parent[index]]
            index = self.parent[index]
        return index

    def group(self, value: _Value) -> ChannelGroup:
        return self.groups[self.find(value.group)]

    def new_group(self, producer: str) -> int:
        self.groups.append(ChannelGroup(producers=[producer]))
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a != b:
            ga, gb = self.groups[a], self.groups[b]
            ga.producers += gb.producers
            ga.consumers += gb.consumers
            ga.norms += gb.norms
            ga.blocked = ga.blocked or gb.blocked
            self.parent[b] = a
        return a

    def block(self, node: "Node", reason: str) -> None:
        for arg in node.all_input_nodes:
            value = self.values.get(arg)
            if value is not None:
                group = self.group(value)
                group.blocked = group.blocked or f"{reason} ({node.op} {node.name})"

    # -- the pass ------------------------------------------------------------------------------

    def run(self) -> list[ChannelGroup]:
        for node in self.graph.nodes:
            self.values[node] = self.visit(node)
        roots = {self.find(i) for i in range(len(self.groups))}
        return [self.groups[i] for i in sorted(roots)]

    def visit(self, node: "Node") -> _Value | None:
        if node.op in ("placeholder", "get_attr"):
            return None
        if node.op == "output":
            self.block(node, "reaches the model output")
            return None
        if node.op == "call_module":
            return self.visit_module(node)
        if node.op == "call_function":
            kind = _function_kinds().get(node.target, "other")
        else:  # call_method
            kind = _METHOD_KINDS.get(str(node.target), "other")
        return self.visit_op(node, kind)

    def first_input(self, node: "Node") -> tuple[bool, _Value | None]:
        """Whether the node reads exactly one tensor (its first argument), and that tensor's."""
        from torch.fx import Node

        inputs = node.all_input_nodes
        if not node.args or not isinstance(node.args[0], Node) or len(inputs) != 1:
            return False, None
        return True, self.values.get(node.args[0])

    def visit_op(self, node: "Node", kind: str) -> _Value | None:
        if kind == "binary":
            return self.visit_binary(node)
        single, value = self.first_input(node)
        if not single:
            self.block(node, "unsupported use")
            return None
        if value is None:
            return None
        if kind == "elementwise":
            return value
        if kind == "spatial" and value.layout == CHANNELS_FIRST:
            return value
        if kind == "flatten":
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            return self.flatten(node, value, start, end)
        self.block(node, "unsupported operation")
        return None

    def flatten(self, node: "Node", value: _Value, start: Any, end: Any) -> _Value | None:
        if start == 1 and end == -1 and value.layout in (CHANNELS_FIRST, FLAT):
            return _Value(value.group, FLAT)
        self.block(node, "flatten other than flatten(1) of a conv feature map")
        return None

    def visit_binary(self, node: "Node") -> _Value | None:
        from torch.fx import Node

        tensors = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, Node)]
        tracked = [v for v in (self.values.get(a) for a in tensors) if v is not None]
        if not tracked:
            return None
        if (len(tracked) != len(tensors) or len({v.layout for v in tracked}) != 1
                or len(node.all_input_nodes) != len(set(tensors))):
            # the other operand is the model input, a stored tensor, nested, or laid out otherwise
            self.block(node, "elementwise op with a tensor whose channels cannot be pruned")
            return None
        root = tracked[0].group
        for value in tracked[1:]:
            root = self.union(root, value.group)
        return _Value(root, tracked[0].layout)

    def usable(self, name: str, module: "nn.Module") -> bool:
        return (self.calls.get(name, 0) == 1 and name not in self.shared
                and not module._forward_hooks and not module._forward_pre_hooks
                and not hasattr(module, "parametrizations")
                and getattr(module, "groups", 1) == 1)

    def visit_module(self, node: "Node") -> _Value | None:
        name = str(node.target)
        module = self.model.get_submodule(name)
        kind = next((k for k, types in _module_kinds().items() if type(module) in types),
                    "other")
        single, value = self.first_input(node)
        if kind == "other" or not single:
            self.block(node, f"unsupported module {type(module).__name__}")
            return None
        if kind in ("conv", "linear"):
            ok = self.usable(name, module)
            wanted = (CHANNELS_FIRST,) if kind == "conv" else (FEATURES, FLAT)
            if value is not None:
                if ok and value.layout in wanted:
                    self.group(value).consumers.append((name, value.layout == FLAT))
                else:
                    self.block(node, f"{type(module).__name__} cannot follow these channels")
            if not ok:
                return None
            return _Value(self.new_group(name), CHANNELS_FIRST if kind == "conv" else FEATURES)
        if kind == "norm":
            if value is not None:
                if self.usable(name, module):
                    self.group(value).norms.append((name, value.layout == FLAT))
                else:
                    self.block(node, "shared or hooked BatchNorm")
                    return None
            return value
        if value is None or kind == "elementwise":
            return value
        if kind == "spatial" and value.layout == CHANNELS_FIRST:
            return value
        if kind == "flatten":
            return self.flatten(node, value, module.start_dim, module.end_dim)
        self.block(node, f"{type(module).__name__} on {value.layout} channels")
        return None


def find_groups(model: "nn.Module") -> list[ChannelGroup]:
    """The model's channel groups, each checked for shape consistency (``blocked`` says why not).

    Raises whatever ``torch.fx.symbolic_trace`` raises for an untraceable model.
    """
    groups = _Analysis(model).run()
    for group in groups:
        if not group.blocked:
            group.blocked = _check(model, group)
    return groups


def _out_channels(module: "nn.Module") -> int:
    return int(module.weight.shape[0])


def _check(model: "nn.Module", group: ChannelGroup) -> str:
    from torch import nn

    sizes = {_out_channels(model.get_submodule(p)) for p in group.producers}
    if len(sizes) != 1:
        return f"producers with different channel counts {sorted(sizes)}"
    channels = group.channels = sizes.pop()
    for name, flat in group.consumers:
        module = model.get_submodule(name)
        width = int(module.weight.shape[1])
        if width != channels and not (flat and isinstance(module, nn.Linear)
                                      and width % channels == 0):
            return f"{name} reads {width} inputs, not {channels} channels"
    for name, flat in group.norms:
        width = model.get_submodule(name).num_features
        if width != channels and not (flat and width % channels == 0):
            return f"{name} normalises {width} features, not {channels} channels"
    return ""


def channel_scores(model: "nn.Module", group: ChannelGroup) -> "torch.Tensor":
    """Per channel: its weights' L1 norm over the layer's mean L1 norm, averaged over producers.

    With one producer the order is exactly the L1-norm order; the mean over producers keeps the
    scores of residual groups on the same scale as the others for ``scope: global``.
    """
    import torch

    total = torch.zeros(group.channels, dtype=torch.float64)
    for name in group.producers:
        weight = model.get_submodule(name).weight.detach()
        l1 = weight.abs().reshape(weight.shape[0], -1).sum(dim=1).double().cpu()
        total += l1 / l1.mean().clamp_min(1e-12)
    return total / len(group.producers)


def prune_channels(model: "nn.Module", ratio: float, scope: str = "layer") -> list[ChannelGroup]:
    """Remove the lowest-scoring channels of every prunable group, in place; return the groups.

    An untraceable model is returned unchanged with a warning.
    """
    import torch

    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    try:
        groups = find_groups(model)
    except Exception as exc:  # noqa: BLE001 - any trace failure means: leave the model alone
        warnings.warn(f"structured pruning skipped: torch.fx cannot trace "
                      f"{type(model).__name__} ({type(exc).__name__}: {exc})", stacklevel=2)
        return []
    prunable = [g for g in groups if not g.blocked and g.channels > 1]
    scores = [channel_scores(model, g) for g in prunable]
    if scope == "layer":
        removed = [min(math.floor(ratio * g.channels + 1e-9), g.channels - 1) for g in prunable]
        order = [torch.argsort(s, stable=True) for s in scores]
        drop = [set(o[:n].tolist()) for o, n in zip(order, removed)]
    else:
        budget = math.floor(ratio * sum(g.channels for g in prunable) + 1e-9)
        everything = sorted((float(s[c]), i, c) for i, s in enumerate(scores)
                            for c in range(len(s)))
        drop = [set[int]() for _ in prunable]
        for _, i, c in everything:
            if budget == 0:
                break
            if prunable[i].channels - len(drop[i]) > 1:
                drop[i].add(c)
                budget -= 1
    with torch.no_grad():
        for group, dropped in zip(prunable, drop):
            group.kept = [c for c in range(group.channels) if c not in dropped]
            if dropped:
                _apply(model, group)
    return groups


def _apply(model: "nn.Module", group: ChannelGroup) -> None:
    import torch

    kept = group.kept or []

    def index(width: int) -> torch.Tensor:
        """The kept channels as feature indices: a block of ``width / channels`` per channel."""
        block = width // group.channels
        base = torch.tensor(kept, dtype=torch.long)
        return (base[:, None] * block + torch.arange(block)).reshape(-1)

    for name in group.producers:
        module = model.get_submodule(name)
        keep = index(group.channels)
        _take(module, "weight", keep, 0)
        _take(module, "bias", keep, 0)
        _resize(module, out=len(kept))
    for name, _ in group.consumers:
        module = model.get_submodule(name)
        keep = index(int(module.weight.shape[1]))
        _take(module, "weight", keep, 1)
        _resize(module, inp=len(keep))
    for name, _ in group.norms:
        module = model.get_submodule(name)
        keep = index(module.num_features)
        for attr in ("weight", "bias", "running_mean", "running_var"):
            _take(module, attr, keep, 0)
        module.num_features = len(keep)


def _take(module: "nn.Module", attr: str, keep: "torch.Tensor", dim: int) -> None:
    from torch import nn

    tensor = getattr(module, attr, None)
    if tensor is None:
        return
    smaller = tensor.detach().index_select(dim, keep.to(tensor.device)).clone()
    if isinstance(tensor, nn.Parameter):
        setattr(module, attr, nn.Parameter(smaller, requires_grad=tensor.requires_grad))
    else:
        setattr(module, attr, smaller)  # a registered buffer stays registered


def _resize(module: "nn.Module", out: int | None = None, inp: int | None = None) -> None:
    from torch import nn

    if isinstance(module, nn.Linear):
        module.out_features = out if out is not None else module.out_features
        module.in_features = inp if inp is not None else module.in_features
    else:
        module.out_channels = out if out is not None else module.out_channels
        module.in_channels = inp if inp is not None else module.in_channels


class StructuredL1(Pruner):
    name = "structured"
    description = ("remove the `ratio` lowest-L1 channels/neurons of each Conv and hidden Linear "
                   "(and the matching BatchNorm and next-layer inputs): a smaller, faster model")
    params = {
        "ratio": ParamDef(FloatRange(0.0, 0.7), float,
                          "fraction of output channels / neurons removed per prunable layer"),
        "scope": ParamDef(Choice(SCOPES), str,
                          "layer: `ratio` of every layer; global: `ratio` of all channels, by "
                          "layer-normalised L1, at least one kept per layer"),
    }

    def prune(self, model, params: dict[str, Any]):
        prune_channels(model, float(params["ratio"]), str(params.get("scope", "layer")))
        return model


@automl.hookimpl
def automl_register_pruners(registrar):
    registrar.add(StructuredL1)
