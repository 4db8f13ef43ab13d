"""Augmentations: batch transforms applied to training batches only."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from automl.components.base import Component

if TYPE_CHECKING:
    import torch


class Augmentation(Component):
    """An augmentation plugin.

    ``apply`` gets a training batch already on the trial's device: ``x`` and ``y`` as soft targets
    (N x num_classes probabilities, one-hot unless an earlier augmentation mixed them). It returns
    the transformed pair; transforms that mix examples (mixup) change ``y`` too. Use ``generator``
    for every random draw so trials are reproducible.
    """

    data_kinds: ClassVar[tuple[str, ...]] = ("image", "tabular", "text")

    @abstractmethod
    def apply(self, x: "torch.Tensor", y: "torch.Tensor", params: dict[str, Any],
              generator: "torch.Generator") -> tuple["torch.Tensor", "torch.Tensor"]:
        """Transform one training batch."""
