"""Pruners: remove a fraction of a trained model's weights."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from automl.components.base import Component

if TYPE_CHECKING:
    from torch import nn


class Pruner(Component):
    """A pruner plugin.

    The trial calls ``prune`` after training, fine-tunes the returned model for a few epochs (masks
    must survive the fine-tune), then calls ``finalize`` to make the pruning permanent before the
    model is evaluated and saved.

    Declare the parameter that sets how much is removed (a ratio) first in ``params``: trial
    tables show a pruner's first numeric parameter next to its name.
    """

    @abstractmethod
    def prune(self, model: "nn.Module", params: dict[str, Any]) -> "nn.Module":
        """Prune the model (in place or as a new module) and return it."""

    def finalize(self, model: "nn.Module") -> "nn.Module":
        """Make the pruning permanent (drop masks / re-parametrisations). Default: nothing to do."""
        return model
