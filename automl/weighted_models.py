"""A module that predicts with several models combined: an ensemble of trials, a trial's folds.

Shared by the trials that keep their fold models (:mod:`automl.trial.folds`) and the exports
(:mod:`automl.export`), so a fold-ensemble trial is saved and rebuilt as the same module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from automl.components import DataSpec, Task

if TYPE_CHECKING:
    from torch import nn


def weighted_models(members: "Sequence[nn.Module]", weights: Sequence[float], task: Task,
                    spec: DataSpec, probabilities: Sequence[bool] | None = None) -> "nn.Module":
    """A module mapping inputs to the task's predictions (class probabilities, values): the
    weighted mean of the members' predictions (the default :meth:`Task.combine`). A member
    flagged in ``probabilities`` already returns predictions (itself a combination of models);
    the others return raw outputs, turned into predictions with the task's ``predict``.

    Its ``state_dict`` holds ``weights`` and ``members.<i>.<member's keys>``.
    """
    import torch
    from torch import nn

    raw = [not p for p in (probabilities or [False] * len(members))]

    class WeightedEnsemble(nn.Module):
        """The task's predictions: the weighted average of the members' predictions."""

        def __init__(self) -> None:
            super().__init__()
            self.members = nn.ModuleList(members)
            self.register_buffer("weights", torch.tensor(list(weights), dtype=torch.float32))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            probas = torch.stack([task.predict(m(x).float(), spec).float() if r else m(x).float()
                                  for m, r in zip(self.members, raw)])
            return torch.tensordot(self.weights, probas, dims=1)

    return WeightedEnsemble()


__all__ = ["weighted_models"]
