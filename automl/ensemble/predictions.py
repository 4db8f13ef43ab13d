"""A candidate's stored predictions, with the test split sealed until the weights are final.

Weight fitting can only ever see validation arrays: :meth:`CandidatePredictions.test` needs a
:class:`TestSplitKey`, which :func:`automl.ensemble.stage.run_ensemble_stage` creates only after
the ensembler has returned its weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from automl.errors import StoreError
from automl.trial.artifacts import PREDICTIONS_FILE


class TestSplitKey:
    """Proof that the ensemble's weights are fixed; required to read test predictions."""

    __slots__ = ()


@dataclass(frozen=True)
class CandidatePredictions:
    number: int
    checkpoint: str
    val_proba: np.ndarray
    val_y: np.ndarray

    @classmethod
    def load(cls, number: int, checkpoint: str) -> "CandidatePredictions":
        val_proba, val_y = read_split(checkpoint, "val")
        return cls(number, checkpoint, val_proba, val_y)

    def test(self, key: TestSplitKey) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(key, TestSplitKey):
            raise PermissionError("test predictions are sealed until the ensemble weights are "
                                  "final")
        return read_split(self.checkpoint, "test")


def read_split(checkpoint: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one split's probabilities and labels from a trial checkpoint (only those arrays)."""
    path = Path(checkpoint) / PREDICTIONS_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            return data[f"{split}_proba"].astype(np.float64), data[f"{split}_y"]
    except (OSError, KeyError, ValueError) as exc:
        raise StoreError(f"cannot read {split} predictions from {path}: {exc}") from None
