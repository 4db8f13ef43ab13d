"""How a trial is validated: on the validation split (hold-out) or by k-fold cross-validation.

With ``validation: {kfold: {folds: k, repeats: r}}`` a trial pools the training and validation
rows (train first, then validation, in split order) and trains one model per fold of every
repetition: ``k x r`` models, each validated on the rows its fold holds out. The fold assignment
depends on the experiment seed and the pooled targets only, so every trial of an experiment (and
``automl rerun``) sees the same folds. Folds are stratified by the task's
:meth:`~automl.components.Task.stratify` groups (a classification's classes) when every group has
at least ``k`` rows, shuffled plain folds otherwise. The test split is not part of it.

What a k-fold trial reports and keeps (see :mod:`automl.trial.folds`):

* per epoch, each validation metric as the mean of its folds' values (early stopping compares
  those);
* its out-of-fold predictions over the pooled rows (averaged over repetitions) as its validation
  predictions, with the pooled targets: the ensemble stage fits weights on them;
* test predictions of its final model: the fold models' predictions combined as the task combines
  ensemble members (``final: folds``), or those of one model refitted on all pooled rows
  (``final: refit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: added to the experiment seed for the fold assignment (the split itself uses seed and seed + 1)
FOLD_SEED_OFFSET = 11


@dataclass(frozen=True)
class KFold:
    """The k-fold settings a trial receives (picklable)."""

    folds: int
    repeats: int = 1
    final: str = "folds"

    @property
    def models(self) -> int:
        """Models a trial trains for its folds."""
        return self.folds * self.repeats

    @classmethod
    def from_config(cls, config: Any) -> "KFold | None":
        """The experiment's k-fold settings, or None for hold-out validation."""
        validation = getattr(config, "validation", None)
        kfold = getattr(validation, "kfold", None)
        if kfold is None:
            return None
        return cls(kfold.folds, kfold.repeats, kfold.final)


def assign_folds(n: int, folds: int, repeats: int, seed: int,
                 stratify: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(fit, held_out)`` row indices of every fold of every repetition (``folds x repeats``
    pairs, repetition by repetition): within a repetition the held-out parts are disjoint and
    cover ``range(n)``. Deterministic in ``seed``; stratified by ``stratify`` (one group label
    per row) when every group has at least ``folds`` rows."""
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    if folds < 2 or n < folds:
        raise ValueError(f"{folds}-fold cross-validation needs at least {max(folds, 2)} rows "
                         f"and at least 2 folds; got {n} rows")
    if stratify is not None:
        _, counts = np.unique(stratify, return_counts=True, axis=0)
        if counts.min() < folds:
            stratify = None
    seed = (seed + FOLD_SEED_OFFSET) % 2**32
    if stratify is None:
        splitter: Any = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
        pairs = splitter.split(np.zeros(n))
    else:
        splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
        pairs = splitter.split(np.zeros(n), stratify)
    return [(np.sort(fit), np.sort(held)) for fit, held in pairs]


def out_of_fold(predictions: list[np.ndarray], pairs: list[tuple[np.ndarray, np.ndarray]],
                n: int) -> np.ndarray:
    """Every row's prediction by the models that did not train on it: each fold model's
    predictions on its held-out rows, averaged over the repetitions."""
    total = np.zeros((n, *predictions[0].shape[1:]), dtype=np.float64)
    count = np.zeros(n, dtype=np.int64)
    for proba, (_, held) in zip(predictions, pairs):
        total[held] += proba
        count[held] += 1
    if (count == 0).any():
        raise ValueError(f"{int((count == 0).sum())} rows were held out by no fold")
    return total / count.reshape(-1, *([1] * (total.ndim - 1)))


__all__ = ["KFold", "assign_folds", "out_of_fold"]
