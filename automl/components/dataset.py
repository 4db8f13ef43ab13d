"""Datasets: load examples and describe their inputs and outputs."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from automl.components.base import Component


@dataclass(frozen=True)
class DataSpec:
    """What an architecture needs to know about the data.

    Args:
        kind: ``"image"`` (x is N x C x H x W float32), ``"tabular"`` (N x F float32) or
            ``"text"`` (N x L int64 token ids).
        input_shape: shape of one example, without the batch dimension.
        num_classes: number of classes; labels are ints in ``range(num_classes)``.
        class_names: a readable name per class.
    """

    kind: str
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Examples:
    """All examples of a dataset, before the platform splits them."""

    x: np.ndarray
    y: np.ndarray
    spec: DataSpec


@dataclass
class DataSplits:
    """Fixed train/validation/test splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    spec: DataSpec

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


class Dataset(Component):
    """A dataset plugin.

    ``load`` returns :class:`Examples` (the platform then makes a stratified train/val/test split
    from the experiment seed) or :class:`DataSplits` when the data comes with its own split.
    Dataset parameters are fixed values, never searched.
    """

    kind: ClassVar[str] = "tabular"

    @abstractmethod
    def load(self, params: dict[str, Any]) -> Examples | DataSplits:
        """Load the data. Raise :class:`automl.errors.ConfigError` for unusable input."""
