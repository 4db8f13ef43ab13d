"""Single-label classification: one integer class per example, softmax over ``num_classes``."""

from __future__ import annotations

from typing import Any

import numpy as np

import automl
from automl.components import DataSpec, Task
from automl.errors import ConfigError

from automl_plugins.tasks.stratified_split import train_test_positions


def stratified_indices(y: np.ndarray, val: float, test: float, seed: int, *,
                       stratify_by: np.ndarray | None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test indices; ``stratify_by`` keeps its groups' proportions in every split
    (scikit-learn's ``train_test_split``, twice: see :mod:`.stratified_split`)."""
    rest, test_idx = train_test_positions(len(y), test, seed, stratify_by)
    rest_stratify = stratify_by[rest] if stratify_by is not None else None
    train, val_idx = train_test_positions(len(rest), val / (1 - test), seed + 1, rest_stratify)
    del rest_stratify
    return rest[train], rest[val_idx], test_idx


class Classification(Task):
    name = "classification"
    description = "one class per example: softmax outputs, cross-entropy, stratified splits"
    default_objective = ("accuracy", "max")

    def output_size(self, spec: DataSpec) -> int:
        return spec.num_classes

    def check_targets(self, y: np.ndarray, spec: DataSpec, where: str) -> None:
        if y.ndim != 1:
            raise ConfigError(f"{where}: classification needs one label per example (shape "
                              f"(N,)), got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ConfigError(f"{where}: labels must be integers 0..num_classes-1, got {y.dtype}")
        bad = np.flatnonzero((y < 0) | (y >= spec.num_classes))
        if len(bad):
            raise ConfigError(f"{where}: labels must lie in 0..{spec.num_classes - 1}; row "
                              f"{int(bad[0]) + 1} has {int(y[bad[0]])}")
        if len(np.unique(y)) < 2:
            raise ConfigError(f"{where}: only one class present; classification needs at least "
                              "two")

    def split(self, y: np.ndarray, spec: DataSpec, val: float, test: float, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        counts = np.bincount(y)
        stratify = y if counts[counts > 0].min() >= 3 else None
        return stratified_indices(y, val, test, seed, stratify_by=stratify)

    def training_targets(self, y: Any, spec: DataSpec) -> Any:
        import torch.nn.functional as F

        return F.one_hot(y, spec.num_classes).float()

    def loss(self, outputs: Any, targets: Any, training: dict[str, Any]) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(outputs, targets,
                               label_smoothing=float(training.get("label_smoothing", 0.0)))

    def soft_loss(self, outputs: Any, teacher: Any, temperature: float) -> Any:
        """Hinton et al.'s distillation loss: the KL divergence of the student's softened
        softmax from the teacher's probabilities softened alike, times T^2 (so its gradients
        keep their scale as the temperature changes)."""
        import torch
        import torch.nn.functional as F

        soft = torch.softmax(torch.log(teacher.clamp_min(1e-8)) / temperature, dim=1)
        return F.kl_div(F.log_softmax(outputs / temperature, dim=1), soft,
                        reduction="batchmean") * temperature ** 2

    def predict(self, outputs: Any, spec: DataSpec) -> Any:
        import torch

        return torch.softmax(outputs.float(), dim=1)

    def prediction_columns(self, spec: DataSpec) -> list[str]:
        return [f"proba_{name}" for name in _names(spec)]

    def decide(self, predictions: np.ndarray, spec: DataSpec) -> Any:
        """The most probable class's name (ties: the first class)."""
        names = np.asarray(_names(spec), dtype=object)
        return names[predictions.argmax(axis=1)] if len(predictions) else \
            np.empty(0, dtype=object)

    def prediction_table(self, predictions: np.ndarray, spec: DataSpec) -> dict[str, Any]:
        """``prediction`` (the class name), then ``proba_<class>`` for every class."""
        return {"prediction": self.decide(predictions, spec),
                **super().prediction_table(predictions, spec)}

    def agreement(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(a.argmax(1) == b.argmax(1)))

    def stratify(self, y: np.ndarray) -> np.ndarray | None:
        counts = np.bincount(y)
        return y if counts[counts > 0].min() >= 2 else None


@automl.hookimpl
def automl_register_tasks(registrar):
    registrar.add(Classification)


def _names(spec: DataSpec) -> tuple[str, ...]:
    if len(spec.class_names) == spec.num_classes:
        return tuple(map(str, spec.class_names))
    return tuple(map(str, range(spec.num_classes)))
