"""Gradient-boosted trees (scikit-learn's HistGradientBoosting) as a candidate architecture.

The trees are not trained by gradient steps: the architecture declares ``trains_itself`` and the
trial calls its :meth:`fit` instead of the training loop. ``fit`` grows ``iterations`` boosting
rounds spread evenly over the experiment's epochs (warm start: epoch ``e`` of ``E`` has
``iterations * e / E`` rounds), and after every epoch yields the fitted trees as a torch module
(:class:`~automl_plugins.architectures.tree_module.TreeEnsemble`), so the trial reports its
validation scores per epoch (early stopping works), stores predictions, and saves and exports the
model as any other (native, TorchScript, ONNX).

What does not apply, and what the trial does instead (recorded under ``not_applied`` in the
trial's ``trial.json``): augmentations (batch transforms of gradient training) are not applied;
pruning and its fine-tuning are skipped (the trees are kept whole); the training parameters
``lr``, ``batch_size``, ``optimizer``, ``weight_decay``, ``momentum`` and ``label_smoothing`` are
sampled but unused. Tasks: classification and single-target regression.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

import automl
from automl.components import Architecture, DataSpec, ParamDef
from automl.params import FloatRange, IntRange


class HistGBT(Architecture):
    name = "hist_gbt"
    description = ("gradient-boosted trees (scikit-learn HistGradientBoosting), fitted by "
                   "themselves, predicting through an equivalent torch module")
    data_kinds: ClassVar[tuple[str, ...]] = ("tabular",)
    trains_itself = True
    params = {
        "iterations": ParamDef(IntRange(50, 300, log=True), int, "boosting rounds"),
        "learning_rate": ParamDef(FloatRange(0.02, 0.3, log=True), float, "shrinkage"),
        "max_leaf_nodes": ParamDef(IntRange(4, 48, log=True), int, "leaves per tree"),
        "min_samples_leaf": ParamDef(IntRange(3, 40, log=True), int, "rows per leaf"),
        "l2_regularization": ParamDef(FloatRange(1e-6, 1.0, log=True), float,
                                      "L2 penalty on leaf values"),
    }

    def build(self, params: dict[str, Any], spec: DataSpec):
        from automl_plugins.architectures.tree_module import TreeEnsemble

        return TreeEnsemble(spec.output_size)

    def fit(self, params: dict[str, Any], spec: DataSpec, x: np.ndarray, targets: np.ndarray,
            epochs: int, seed: int) -> Iterator[Any]:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        from automl_plugins.architectures.tree_module import from_sklearn

        options = dict(learning_rate=float(params["learning_rate"]),
                       max_leaf_nodes=int(params["max_leaf_nodes"]),
                       min_samples_leaf=int(params["min_samples_leaf"]),
                       l2_regularization=float(params["l2_regularization"]),
                       early_stopping=False, warm_start=True, random_state=seed % 2**32)
        x = x.reshape(len(x), -1)
        if spec.task == "classification":
            model: Any = HistGradientBoostingClassifier(**options)
            y = targets.argmax(axis=1)
        elif spec.task == "regression" and targets.shape[1:] == (1,):
            model = HistGradientBoostingRegressor(**options)
            y = targets[:, 0]
        else:
            raise ValueError(f"hist_gbt fits classification and single-target regression, not "
                             f"task '{spec.task}' with targets of shape {targets.shape[1:]}")
        import torch
        from threadpoolctl import threadpool_limits

        total = int(params["iterations"])
        for epoch in range(1, epochs + 1):
            model.set_params(max_iter=max(1, round(total * epoch / epochs)))
            # as many threads as the trial's torch (its CPU share), not every core's OpenMP
            with threadpool_limits(limits=torch.get_num_threads()):
                model.fit(x, y)
            yield from_sklearn(model, spec.output_size)


@automl.hookimpl
def automl_register_architectures(registrar):
    registrar.add(HistGBT)
