"""Permutation importance of a tabular model's input features, on the validation split.

scikit-learn's :func:`~sklearn.inspection.permutation_importance` shuffles one raw feature at a
time across the validation rows and scores the model with the experiment's objective metric.
The model is seen through :class:`SavedModel`, a thin scikit-learn estimator over the saved
model and the experiment's preprocessing (the standardisation and one-hot encoding fitted on the
training split), so a feature is a column of the raw table, as a user's data has it: a
categorical feature's one-hot columns are shuffled together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator

from automl.explanation.result import FeatureImportance
from automl.preprocessing import MEAN, NUMERIC, ONEHOT_CODES, ONEHOT_COLUMNS, ONEHOT_SIZES, STD
from automl.preprocessing import standardise

if TYPE_CHECKING:
    from torch import nn

    from automl.explanation.subject import Subject

#: shuffles per feature; the importance is their mean (and their spread its std)
REPEATS = 5


class SavedModel(BaseEstimator):
    """A trained automl model as a fitted scikit-learn estimator on raw feature rows:
    ``predict_proba`` applies the experiment's fitted preprocessing, then the model, and returns
    the task's predictions (class probabilities, values). ``fit`` does nothing: the model was
    trained by the experiment."""

    def __init__(self, module: "nn.Module", fitted: dict[str, np.ndarray]) -> None:
        self.module = module
        self.fitted = fitted

    def fit(self, x: Any, y: Any = None) -> "SavedModel":
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        import torch

        inputs = torch.as_tensor(standardise(np.asarray(x, dtype=np.float64), self.fitted),
                                 dtype=torch.float32)
        with torch.no_grad():
            return self.module(inputs).float().numpy()


def raw_features(x: np.ndarray, fitted: dict[str, np.ndarray]) -> np.ndarray:
    """The raw feature rows that ``standardise(rows, fitted)`` turned into ``x``: numeric
    features un-scaled, a categorical feature's one-hot columns back to its code (-1 where the
    training split did not have it)."""
    if MEAN not in fitted:
        return np.asarray(x, dtype=np.float64)
    if ONEHOT_COLUMNS not in fitted:
        return x.astype(np.float64) * fitted[STD] + fitted[MEAN]
    numeric, categorical = fitted[NUMERIC], fitted[ONEHOT_COLUMNS]
    raw = np.empty((len(x), len(numeric) + len(categorical)), dtype=np.float64)
    raw[:, numeric] = x[:, :len(numeric)].astype(np.float64) * fitted[STD] + fitted[MEAN]
    start = len(numeric)
    code_start = 0
    for column, size in zip(categorical, fitted[ONEHOT_SIZES]):
        block = x[:, start:start + size]
        codes = fitted[ONEHOT_CODES][code_start:code_start + size]
        hot = block.argmax(axis=1) if size else np.zeros(len(x), dtype=np.int64)
        raw[:, column] = np.where(block.max(axis=1, initial=0) > 0.5, codes[hot] if size else -1,
                                  -1)
        start += size
        code_start += size
    return raw


def permutation_importances(subject: "Subject", seed: int
                            ) -> tuple[list[FeatureImportance], float]:
    """Every raw feature's permutation importance on the validation split, most important first,
    in units of the objective metric (positive: shuffling the feature makes the model worse), and
    the metric on the unshuffled rows."""
    from sklearn.inspection import permutation_importance

    sign = 1.0 if subject.objective.mode == "max" else -1.0

    def scorer(estimator: SavedModel, x: np.ndarray, y: np.ndarray) -> float:
        return sign * subject.score(y, estimator.predict_proba(x))

    x = raw_features(subject.data.x_val, subject.data.fitted)
    y = subject.data.y_val
    model = SavedModel(subject.module, subject.data.fitted)
    result = permutation_importance(model, x, y, scoring=scorer, n_repeats=REPEATS,
                                    random_state=seed)
    names = feature_names(subject, x.shape[1])
    found = [FeatureImportance(names[i], float(result.importances_mean[i]),
                               float(result.importances_std[i])) for i in range(x.shape[1])]
    found.sort(key=lambda f: -f.mean)
    return found, subject.score(y, model.predict_proba(x))


def feature_names(subject: "Subject", count: int) -> list[str]:
    """The raw table's column names where the dataset's preprocessing declares them (in the
    model's order), else ``feature 0``, ``feature 1``, ..."""
    prep = subject.preprocessing
    columns = list((prep.settings.get("columns") or []) if prep is not None
                   and prep.input == "table" else [])
    if len(columns) == count:
        return [str(c) for c in columns]
    return [f"feature {i}" for i in range(count)]
