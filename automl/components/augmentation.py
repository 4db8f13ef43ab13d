"""Augmentations: transforms applied to training data only.

Two sorts, told apart by ``inputs``: batch augmentations (``"batch"``) transform each training
mini-batch of model inputs (tensors on the device); raw augmentations (``"raw"``,
:class:`RawAugmentation`) transform the raw training inputs a dataset keeps (text before
tokenisation) once per epoch, before the dataset's encoder turns them into model inputs.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from automl.components.base import Component

if TYPE_CHECKING:
    import numpy as np
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
    #: ``"batch"``: :meth:`apply` on model-input batches; ``"raw"``: see :class:`RawAugmentation`
    inputs: ClassVar[str] = "batch"

    @abstractmethod
    def apply(self, x: "torch.Tensor", y: "torch.Tensor", params: dict[str, Any],
              generator: "torch.Generator") -> tuple["torch.Tensor", "torch.Tensor"]:
        """Transform one training batch."""


class RawAugmentation(Augmentation):
    """An augmentation of raw inputs (strings for text), run per epoch in the trial worker.

    Each epoch, automl passes the raw training inputs (those of a dataset whose ``load`` keeps
    them, see :class:`automl.components.Examples`) through every enabled raw augmentation in
    the experiment's order, then encodes them with the dataset's encoder (tokenisation); batch
    augmentations then apply to the encoded batches as usual. ``apply_raw`` returns one input
    per input, in order (labels are unchanged) and must leave ``raw`` itself unchanged; use
    ``rng`` for every random draw so trials are reproducible.
    """

    inputs: ClassVar[str] = "raw"

    @abstractmethod
    def apply_raw(self, raw: Sequence[Any], params: dict[str, Any],
                  rng: "np.random.Generator") -> list[Any]:
        """The augmented raw inputs (one per input of ``raw``)."""

    def apply(self, x, y, params, generator):  # noqa: D102 - not a batch transform
        raise TypeError(f"augmentation '{self.name}' transforms raw inputs (apply_raw), "
                        "not batches")
