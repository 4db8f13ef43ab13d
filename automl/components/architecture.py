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

    ``build`` returns a module mapping a batch of inputs to ``N x spec.output_size`` values: for
    one target the model's raw outputs, sized by the task (class logits for classification, one
    value per regression target, one logit per label); for several targets the shared feature
    vector the platform's per-target heads read. A module built against the older contract
    (``spec.num_classes`` logits) keeps working for classification, where the two sizes are
    equal. Import torch inside ``build``, not at module top level, so listing plugins stays
    fast.
    """

    data_kinds: ClassVar[tuple[str, ...]] = ("image", "tabular")

    @abstractmethod
    def build(self, params: dict[str, Any], spec: DataSpec) -> "nn.Module":
        """Build a fresh, untrained model."""
