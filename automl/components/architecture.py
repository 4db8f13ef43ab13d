"""Architectures: build a ``torch.nn.Module`` from sampled parameters and the data spec."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from automl.components.base import Component
from automl.components.dataset import DataSpec

if TYPE_CHECKING:
    from torch import nn


class Architecture(Component):
    """An architecture plugin.

    ``build`` returns a module mapping a batch of inputs to class logits (N x num_classes).
    Import torch inside ``build``, not at module top level, so listing plugins stays fast.
    """

    data_kinds: ClassVar[tuple[str, ...]] = ("image", "tabular")

    @abstractmethod
    def build(self, params: dict[str, Any], spec: DataSpec) -> "nn.Module":
        """Build a fresh, untrained model."""
