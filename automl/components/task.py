"""Tasks: what the targets are and how a model's raw outputs are trained, read and combined.

A task decides, for the targets of a dataset: the size of the model's output (the head), the
loss, how raw outputs become predictions (softmax, sigmoid, identity), its default objective, how
the examples are split into train/validation/test, how ensemble members' predictions combine,
what a prediction file's columns are called, and which target values are invalid.

The core never names a task: a dataset's :class:`~automl.components.DataSpec` names one
(``spec.task``), the registry finds the component, and every stage asks it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from automl.components.base import Component
from automl.components.dataset import DataSpec

if TYPE_CHECKING:
    import torch


class Task(Component):
    """A task plugin.

    Targets ``y`` are numpy arrays with one row per example, as the dataset returns them;
    predictions are float arrays with one row per example (``prediction_columns`` names the
    columns). Metrics, ensemblers and exports see predictions, never raw outputs.

    Attributes:
        default_objective: ``(metric, mode)`` used when the experiment lists no objectives
            (None: the experiment's default objective applies).
    """

    default_objective: ClassVar[tuple[str, str] | None] = None

    def prepare(self, spec: DataSpec, y_train: np.ndarray) -> DataSpec:
        """Fix what the task learns from the training targets (e.g. their scaling) in the
        returned spec's ``extra``; the default keeps the spec as it is."""
        return spec

    @abstractmethod
    def output_size(self, spec: DataSpec) -> int:
        """The number of raw outputs the model produces per example."""

    @abstractmethod
    def check_targets(self, y: np.ndarray, spec: DataSpec, where: str) -> None:
        """Raise :class:`automl.errors.ConfigError` for unusable targets, naming ``where`` and the
        first offending row (1-based)."""

    @abstractmethod
    def split(self, y: np.ndarray, spec: DataSpec, val: float, test: float, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices of the train, validation and test examples; deterministic in ``seed``."""

    def body_spec(self, spec: DataSpec) -> DataSpec:
        """The spec the architecture builds for: by default the model's whole output
        (``spec.output_size``); a task that adds heads asks for a feature vector instead."""
        return spec

    def wrap(self, body: Any, spec: DataSpec, params: dict[str, Any]) -> Any:
        """The model trained: by default the architecture's module itself; a task that adds
        heads returns them on top of ``body``. ``params`` are the task's sampled parameters."""
        return body

    @abstractmethod
    def training_targets(self, y: "torch.Tensor", spec: DataSpec) -> "torch.Tensor":
        """The float tensor the loss compares outputs with (augmentations may mix it)."""

    @abstractmethod
    def loss(self, outputs: "torch.Tensor", targets: "torch.Tensor",
             training: dict[str, Any]) -> "torch.Tensor":
        """The mean loss of a batch; ``training`` holds the trial's training parameters."""

    def soft_loss(self, outputs: "torch.Tensor", teacher: "torch.Tensor",
                  temperature: float) -> "torch.Tensor":
        """The mean loss of a batch's raw outputs against a teacher's predictions (the
        distillation stage's students, :mod:`automl.distill`), softened by ``temperature``.
        A task that does not override it cannot be distilled (the stage refuses it)."""
        raise NotImplementedError

    @classmethod
    def distills(cls) -> bool:
        """Whether the task implements :meth:`soft_loss`."""
        return cls.soft_loss is not Task.soft_loss

    @abstractmethod
    def predict(self, outputs: "torch.Tensor", spec: DataSpec) -> "torch.Tensor":
        """Predictions (N x ``len(prediction_columns)``) from raw outputs."""

    def prediction_columns(self, spec: DataSpec) -> list[str]:
        """The names of the prediction columns (a prediction file's header)."""
        return [f"output_{i}" for i in range(self.output_size(spec))]

    def decide(self, predictions: np.ndarray, spec: DataSpec) -> Any:
        """What a predictor's ``predict`` returns for ``predictions`` (N x columns): the default
        is the predictions themselves, one column as a vector (a regression's values)."""
        return predictions[:, 0] if predictions.ndim == 2 and predictions.shape[1] == 1 \
            else predictions

    def prediction_table(self, predictions: np.ndarray, spec: DataSpec) -> dict[str, Any]:
        """A prediction file's columns after the id (name -> values, in order); the default is one
        column per :meth:`prediction_columns`."""
        return {name: predictions[:, i]
                for i, name in enumerate(self.prediction_columns(spec))}

    def combine(self, weights: np.ndarray, predictions: Sequence[np.ndarray]) -> np.ndarray:
        """Ensemble members' predictions combined with ``weights`` (summing to 1); the default is
        the weighted mean, per column."""
        return np.tensordot(np.asarray(weights, dtype=np.float64), np.stack(predictions), axes=1)

    def agreement(self, a: np.ndarray, b: np.ndarray) -> float:
        """How alike two members' predictions are, in [0, 1] (the ensemble's diversity filter);
        the default: 1 minus the mean absolute difference relative to the spread of ``a``."""
        spread = float(np.std(a)) or 1.0
        return float(max(0.0, 1.0 - np.mean(np.abs(a - b)) / spread))

    def stratify(self, y: np.ndarray) -> np.ndarray | None:
        """Labels to stratify a split of ``y`` by (the ensemble's holdout), or None."""
        return None
