"""Fitted gradient-boosted trees as a torch module (imported by the ``hist_gbt`` architecture
when it builds or fits a model, never when plugins are listed: it imports torch).

:class:`TreeEnsemble` holds every tree of a fitted scikit-learn ``HistGradientBoosting*`` model as
flat tensors (one row of nodes per tree) and evaluates them exactly as scikit-learn does: go left
when the feature value is ``<=`` the node's threshold (compared in float64), a missing value goes
where the tree sent missing values in training; the raw output is the baseline plus the sum of
the reached leaves' values per output column. So it saves as a ``state_dict`` of tensors (loaded
with ``weights_only=True``), exports natively, and traces to TorchScript and ONNX, like any other
architecture's model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

_SHAPED = ("feature", "threshold", "left", "right", "leaf", "missing_left", "value", "column",
           "baseline", "depth")


class TreeEnsemble(nn.Module):
    """Trees mapping ``N x features`` inputs to ``N x outputs`` raw outputs (logits, or
    standardised regression values). Built empty (no trees: the baseline only)."""

    def __init__(self, outputs: int) -> None:
        super().__init__()
        self.outputs = outputs
        self.set_trees(np.zeros((0, 1), dtype=[("feature_idx", "i8"), ("num_threshold", "f8"),
                                               ("left", "i8"), ("right", "i8"),
                                               ("is_leaf", "u1"), ("missing_go_to_left", "u1"),
                                               ("value", "f8"), ("depth", "i8")]),
                       np.zeros(0, dtype=np.int64), np.zeros(outputs))

    def set_trees(self, nodes: np.ndarray, columns: np.ndarray, baseline: np.ndarray) -> None:
        """``nodes``: trees x nodes structured array (scikit-learn's node fields, shorter trees
        padded with leaves); ``columns``: each tree's output column; ``baseline``: per column."""
        def tensor(values: Any, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(values)).to(dtype)

        self.register_buffer("feature", tensor(nodes["feature_idx"], torch.int64))
        self.register_buffer("left", tensor(nodes["left"], torch.int64))
        self.register_buffer("right", tensor(nodes["right"], torch.int64))
        self.register_buffer("leaf", tensor(nodes["is_leaf"], torch.bool))
        self.register_buffer("missing_left", tensor(nodes["missing_go_to_left"], torch.bool))
        self.register_buffer("column", tensor(columns, torch.int64))
        self.register_buffer("baseline", tensor(baseline, torch.float64))
        self.register_buffer("depth", torch.tensor(int(nodes["depth"].max()) if nodes.size else 0))
        self.levels = int(self.depth)  # a constant of the fitted trees (traced as such)
        # thresholds and leaf values are what the trees learned: counted as (frozen) parameters
        self.threshold = nn.Parameter(tensor(nodes["num_threshold"], torch.float64),
                                      requires_grad=False)
        self.value = nn.Parameter(tensor(nodes["value"], torch.float64), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1).double()
        trees, width = self.feature.shape
        node = torch.zeros(x.shape[0], trees, dtype=torch.int64, device=x.device)
        offsets = torch.arange(trees, device=x.device) * width
        for _ in range(self.levels):
            at = node + offsets
            values = x.gather(1, self.feature.flatten()[at])
            # NaN <= t is false: a missing value goes left only where training sent it left
            go_left = (values <= self.threshold.flatten()[at]) | (
                torch.isnan(values) & self.missing_left.flatten()[at])
            step = torch.where(go_left, self.left.flatten()[at], self.right.flatten()[at])
            node = torch.where(self.leaf.flatten()[at], node, step)
        reached = self.value.flatten()[node + offsets]  # N x trees
        assign = nn.functional.one_hot(self.column, self.outputs).to(reached.dtype)
        return (self.baseline + reached @ assign).float()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # a saved model has as many trees and nodes as it was fitted with: take the saved shapes
        for name in _SHAPED:
            saved = state_dict.get(prefix + name)
            current = getattr(self, name)
            if saved is not None and saved.shape != current.shape:
                fresh = torch.empty(saved.shape, dtype=current.dtype, device=current.device)
                if isinstance(current, nn.Parameter):
                    setattr(self, name, nn.Parameter(fresh, requires_grad=False))
                else:
                    self.register_buffer(name, fresh)
        super()._load_from_state_dict(state_dict, prefix, *args)
        self.levels = int(self.depth)


def from_sklearn(model: Any, outputs: int) -> TreeEnsemble:
    """A :class:`TreeEnsemble` with the trees of a fitted ``HistGradientBoosting*`` model.
    A binary classifier's single logit becomes column 1 of two (column 0 stays 0), so the
    softmax of the two outputs is scikit-learn's probability."""
    predictors = [tree for iteration in model._predictors for tree in iteration]
    per_iteration = model.n_trees_per_iteration_
    columns = np.tile(np.arange(per_iteration), len(model._predictors))
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    if per_iteration == 1 and outputs == 2:
        columns = columns + 1
        baseline = np.concatenate([[0.0], baseline])
    width = max((len(t.nodes) for t in predictors), default=1)
    fields = ["feature_idx", "num_threshold", "left", "right", "is_leaf", "missing_go_to_left",
              "value", "depth"]
    nodes = np.zeros((len(predictors), width), dtype=[(f, predictors[0].nodes.dtype[f])
                                                      for f in fields] if predictors else
                     [(f, "f8") for f in fields])
    nodes["is_leaf"] = 1  # padding: leaves never reached
    for i, tree in enumerate(predictors):
        if tree.nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported; one-hot encode instead")
        for field in fields:
            nodes[field][i, :len(tree.nodes)] = tree.nodes[field]
    module = TreeEnsemble(outputs)
    module.set_trees(nodes, columns, baseline)
    return module
