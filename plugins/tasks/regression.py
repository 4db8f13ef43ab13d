"""Regression: one or several continuous targets per example.

Targets are standardised with the mean and standard deviation of the training split (recorded in
the spec's ``extra['target_scaling']``); the model learns the standardised values with a mean
squared error, and every prediction is un-standardised, so metrics, ensembles and exports see the
targets' own units.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

import automl
from automl.components import DataSpec, Task
from automl.errors import ConfigError
from automl_plugins.tasks.classification import stratified_indices

SCALING = "target_scaling"
#: quantile bins of the first target the split is stratified by (same spread in every split)
BINS = 5


def _scaling(spec: DataSpec) -> tuple[Any, Any]:
    import torch

    scaling = spec.extra.get(SCALING)
    if scaling is None:
        raise ConfigError(f"regression: the spec has no '{SCALING}' (the platform fits it on "
                          "the training split before training)")
    return (torch.tensor(scaling["mean"], dtype=torch.float32),
            torch.tensor(scaling["std"], dtype=torch.float32))


class Regression(Task):
    name = "regression"
    description = ("continuous targets: standardised on the training split, mean squared error, "
                   "predictions in the targets' units")
    default_objective = ("rmse", "min")

    def output_size(self, spec: DataSpec) -> int:
        return max(1, len(spec.target_names))

    def prepare(self, spec: DataSpec, y_train: np.ndarray) -> DataSpec:
        y = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
        std = y.std(axis=0)
        std[std == 0] = 1.0
        extra = {**spec.extra, SCALING: {"mean": y.mean(axis=0).tolist(), "std": std.tolist()}}
        return replace(spec, extra=extra)

    def check_targets(self, y: np.ndarray, spec: DataSpec, where: str) -> None:
        width = self.output_size(spec)
        if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] != width) \
                or (y.ndim == 1 and width != 1):
            raise ConfigError(f"{where}: regression needs targets of shape (N, {width}) "
                              f"({', '.join(spec.target_names) or 'one target'}), got {y.shape}")
        if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.bool_):
            raise ConfigError(f"{where}: regression targets must be numbers, got {y.dtype}")
        finite = np.isfinite(y.reshape(len(y), -1).astype(np.float64))
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            column = spec.target_names[col] if col < len(spec.target_names) else f"target {col}"
            raise ConfigError(f"{where}: regression target '{column}' is missing or infinite in "
                              f"row {int(row) + 1}")

    def split(self, y: np.ndarray, spec: DataSpec, val: float, test: float, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        first = np.asarray(y, dtype=np.float64).reshape(len(y), -1)[:, 0]
        edges = np.quantile(first, np.linspace(0, 1, BINS + 1)[1:-1])
        bins = np.searchsorted(edges, first, side="right")
        counts = np.bincount(bins)
        stratify = bins if counts[counts > 0].min() >= 3 else None
        return stratified_indices(y, val, test, seed, stratify_by=stratify)

    def training_targets(self, y: Any, spec: DataSpec) -> Any:
        mean, std = _scaling(spec)
        values = y.float().reshape(len(y), -1)
        return (values - mean.to(values.device)) / std.to(values.device)

    def loss(self, outputs: Any, targets: Any, training: dict[str, Any]) -> Any:
        import torch.nn.functional as F

        return F.mse_loss(outputs.float(), targets)

    def predict(self, outputs: Any, spec: DataSpec) -> Any:
        mean, std = _scaling(spec)
        out = outputs.float()
        return out * std.to(out.device) + mean.to(out.device)

    def prediction_columns(self, spec: DataSpec) -> list[str]:
        return list(spec.target_names) or ["prediction"]


@automl.hookimpl
def automl_register_tasks(registrar):
    registrar.add(Regression)
