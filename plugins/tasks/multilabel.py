"""Multi-label classification: N binary labels per example (tags), one sigmoid output each."""

from __future__ import annotations

from typing import Any

import numpy as np

import automl
from automl.components import DataSpec, Task
from automl.errors import ConfigError
from automl_plugins.tasks.classification import stratified_indices

#: a label is predicted present when its probability is at least this
THRESHOLD = 0.5


class Multilabel(Task):
    name = "multilabel"
    description = ("several binary labels per example: sigmoid outputs, binary cross-entropy, "
                   "per-label probabilities")
    default_objective = ("f1_micro", "max")

    def output_size(self, spec: DataSpec) -> int:
        return len(spec.target_names)

    def check_targets(self, y: np.ndarray, spec: DataSpec, where: str) -> None:
        width = self.output_size(spec)
        if y.ndim != 2 or y.shape[1] != width or width < 1:
            raise ConfigError(f"{where}: multi-label targets must have shape (N, {width}), one "
                              f"0/1 column per label ({', '.join(spec.target_names)}); got "
                              f"{y.shape}")
        if not np.issubdtype(y.dtype, np.number) and not np.issubdtype(y.dtype, np.bool_):
            raise ConfigError(f"{where}: multi-label targets must be 0 or 1, got {y.dtype}")
        values = y.astype(np.float64)
        bad = np.argwhere(~np.isin(values, (0.0, 1.0)))
        if len(bad):
            row, col = bad[0]
            raise ConfigError(f"{where}: label '{spec.target_names[col]}' must be 0 or 1; row "
                              f"{int(row) + 1} has {values[row, col]:g}")

    def split(self, y: np.ndarray, spec: DataSpec, val: float, test: float, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return stratified_indices(y, val, test, seed, stratify_by=None)

    def training_targets(self, y: Any, spec: DataSpec) -> Any:
        return y.float()

    def loss(self, outputs: Any, targets: Any, training: dict[str, Any]) -> Any:
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(outputs.float(), targets)

    def predict(self, outputs: Any, spec: DataSpec) -> Any:
        import torch

        return torch.sigmoid(outputs.float())

    def prediction_columns(self, spec: DataSpec) -> list[str]:
        return [f"proba_{name}" for name in spec.target_names]

    def decide(self, predictions: np.ndarray, spec: DataSpec) -> Any:
        """0/1 per label (probability at least the threshold, 0.5)."""
        return (predictions >= THRESHOLD).astype(np.int64)

    def prediction_table(self, predictions: np.ndarray, spec: DataSpec) -> dict[str, Any]:
        """Each label's 0/1 decision (named by the label), then ``proba_<label>`` each."""
        decided = self.decide(predictions, spec)
        return {**{name: decided[:, i] for i, name in enumerate(spec.target_names)},
                **super().prediction_table(predictions, spec)}

    def agreement(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean((a >= THRESHOLD) == (b >= THRESHOLD)))


@automl.hookimpl
def automl_register_tasks(registrar):
    registrar.add(Multilabel)
