"""Augmentations: batch transforms applied to training batches only."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from automl.components.base import Component

if TYPE_CHECKING:
    import torch


class Augmentation(Component):
    """An augmentation plugin.

    ``apply`` gets a training batch already on the trial's device: ``x`` and ``y`` as the task's
    float training targets (classification: N x num_classes probabilities, one-hot unless an
    earlier augmentation mixed them; regression: N x targets standardised values; multi-label:
    N x labels of 0/1). It returns the transformed pair; transforms that mix examples (mixup)
    change ``y`` too. Use ``generator`` for every random draw so trials are reproducible.

    ``tasks`` names the tasks whose targets the augmentation handles correctly (None: it leaves
    ``y`` alone, so every task); an experiment that uses it with another task is a config error.
    """

    data_kinds: ClassVar[tuple[str, ...]] = ("image", "tabular", "text")
    tasks: ClassVar[tuple[str, ...] | None] = None

    @abstractmethod
    def apply(self, x: "torch.Tensor", y: "torch.Tensor", params: dict[str, Any],
              generator: "torch.Generator") -> tuple["torch.Tensor", "torch.Tensor"]:
        """Transform one training batch."""
