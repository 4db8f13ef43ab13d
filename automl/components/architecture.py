"""Architectures: build a ``torch.nn.Module`` from sampled parameters and the data spec."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from automl.components.base import Component
from automl.components.dataset import DataSpec

if TYPE_CHECKING:
    import numpy as np
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

    An architecture whose models are fitted by their own algorithm, not by gradient steps
    (gradient-boosted trees), sets ``trains_itself = True`` and implements :meth:`fit`; the trial
    then calls ``fit`` instead of its training loop, applies no augmentation, skips pruning and
    fine-tuning (recorded as ``not_applied`` in the trial's ``trial.json``), and otherwise treats
    the yielded modules as any model: validation scores per epoch, predictions, ``state_dict``
    artifacts and exports. ``build`` still returns the (unfitted) module that an export loads the
    saved ``state_dict`` into.

    Two optional methods shape gradient training (fine-tuning a pretrained body, say):
    :meth:`param_groups` gives parts of the model their own learning-rate factor, and
    :meth:`on_epoch_start` runs before every training epoch (freezing or unfreezing parameters).
    Both receive the module trained, which is ``build``'s module or, when the task adds heads,
    a module holding it; find your parts in it with ``model.modules()``.
    """

    data_kinds: ClassVar[tuple[str, ...]] = ("image", "tabular")
    trains_itself: ClassVar[bool] = False

    @abstractmethod
    def build(self, params: dict[str, Any], spec: DataSpec) -> "nn.Module":
        """Build a fresh, untrained model."""

    def param_groups(self, params: dict[str, Any], model: "nn.Module"
                     ) -> list[dict[str, Any]] | None:
        """Optimizer parameter groups for ``model``: dicts with ``params`` (a list of its
        parameters) and optionally ``lr_factor`` (multiplies the trial's learning rate; default
        1). Parameters in no group train at the trial's learning rate. None (the default): one
        group of all parameters."""
        return None

    def on_epoch_start(self, params: dict[str, Any], model: "nn.Module", epoch: int) -> None:
        """Called with the model in training mode before each training epoch (``epoch`` counts
        from 1 and goes on through fine-tuning after pruning): set ``requires_grad`` to freeze or
        unfreeze parameters (the optimizer holds them all; a frozen one gets no gradient and is
        not stepped), put frozen batch-norm layers in eval mode. The default does nothing."""

    def fit(self, params: dict[str, Any], spec: DataSpec, x: "np.ndarray", targets: "np.ndarray",
            epochs: int, seed: int) -> Iterator["nn.Module"]:
        """For ``trains_itself`` architectures: fit on inputs ``x`` and the task's training
        targets (``targets``: N x outputs floats, e.g. one-hot classes or standardised values),
        yielding the model as fitted so far once per epoch (``epochs`` times)."""
        raise NotImplementedError(f"architecture '{self.name}' declares trains_itself but has "
                                  "no fit()")
