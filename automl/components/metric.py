"""Metrics: a score from labels and predicted probabilities, or from the model itself."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from automl.components.base import Component
from automl.components.dataset import DataSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass
class EvalContext:
    """Everything a metric may look at for one split of one trial.

    Args:
        y_true: int labels, shape (N,).
        proba: predicted class probabilities, shape (N, num_classes).
        model: the final model (for size or latency metrics), on CPU in eval mode.
        spec: the data spec.
        split: ``"val"`` or ``"test"``.
    """

    y_true: np.ndarray
    proba: np.ndarray
    model: "nn.Module | None"
    spec: DataSpec
    split: str


class Metric(Component):
    """A metric plugin. ``direction`` is the default optimisation mode (``max`` or ``min``)."""

    direction: ClassVar[str] = "max"
    #: True when the value depends only on the model (parameter count), not on a split.
    model_only: ClassVar[bool] = False
    #: False for measurements that vary between runs (latency); reruns do not compare them.
    deterministic: ClassVar[bool] = True

    @abstractmethod
    def compute(self, ctx: EvalContext) -> float:
        """Return the score as a float."""
