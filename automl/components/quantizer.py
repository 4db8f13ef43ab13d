"""Quantizers: lower the precision of a trained model's arithmetic for a deployment target."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from automl.components.base import Component

if TYPE_CHECKING:
    import torch
    from torch import nn


class Quantizer(Component):
    """A quantizer plugin.

    The trial calls ``quantize`` once the model is trained, pruned, fine-tuned and finalised; the
    quantized model is the trial's final model: its validation and test predictions, its model
    metrics (size, latency) and its exports. It runs on ``device`` (``"cpu"`` for torch's int8
    kernels): the trial moves it there. ``rebuild`` gives the same quantized structure without
    calibration, for a saved ``state_dict`` to be loaded into (exports, ``automl rerun``).

    A model the quantizer cannot handle (an operator its backend lacks, a model that cannot be
    traced) is not an error: ``check`` returns the reason, or ``quantize`` raises
    :class:`NotQuantizable`, and the trial keeps the unquantized model and records the reason.

    Attributes:
        device: where the quantized model runs (``"cpu"``, or ``"cuda"`` for half precision).
    """

    device: ClassVar[str] = "cpu"

    def check(self, model: "nn.Module") -> str | None:
        """Why ``model`` cannot be quantized here, or None when it can. Default: it can."""
        return None

    @abstractmethod
    def quantize(self, model: "nn.Module", params: dict[str, Any],
                 calibration: Iterable["torch.Tensor"]) -> "nn.Module":
        """Return the quantized model (in eval mode). ``calibration`` yields training batches
        (inputs only) for quantizers that observe activation ranges."""

    def rebuild(self, model: "nn.Module", params: dict[str, Any],
                example: "torch.Tensor") -> "nn.Module":
        """The quantized structure of ``model`` for a saved ``state_dict`` to be loaded into;
        its values do not matter. Default: ``quantize`` with ``example`` as the only batch."""
        return self.quantize(model, params, [example])


class NotQuantizable(Exception):
    """Raised by ``Quantizer.quantize`` for a model it cannot handle; the message is the reason
    the trial records."""
