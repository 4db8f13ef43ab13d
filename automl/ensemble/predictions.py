"""A candidate's stored validation predictions: all that weight fitting reads.

Trial checkpoints hold no test labels (:mod:`automl.search_data`); test predictions are read by
the final evaluation only (:mod:`automl.evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from automl.errors import StoreError
from automl.trial.artifacts import PREDICTIONS_FILE


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


def read_split(checkpoint: str, split: str = "val") -> tuple[np.ndarray, np.ndarray]:
    """Read the validation probabilities and labels from a trial checkpoint (only those
    arrays)."""
    if split != "val":
        raise ValueError("the ensemble stage reads validation predictions only")
    path = Path(checkpoint) / PREDICTIONS_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            return data[f"{split}_proba"].astype(np.float64), data[f"{split}_y"]
    except (OSError, KeyError, ValueError) as exc:
        raise StoreError(f"cannot read {split} predictions from {path}: {exc}") from None
