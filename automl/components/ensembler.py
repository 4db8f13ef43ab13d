"""Ensemblers: weights for combining the stored predictions of several trials."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from automl.components.base import Component


class Ensembler(Component):
    """An ensembler plugin.

    ``fit`` receives the candidates' validation predictions (each N x columns: class
    probabilities, regression values, label probabilities; the task combines them as a weighted
    mean), the targets and a score function (higher is better) and returns one non-negative
    weight per candidate, summing to 1. It never sees the test split.
    """

    @abstractmethod
    def fit(self, probas: Sequence[np.ndarray], y_true: np.ndarray,
            score: Callable[[np.ndarray, np.ndarray], float], params: dict[str, Any],
            seed: int) -> np.ndarray:
        """Return the weight vector."""
