"""From a model's output to what a prediction reports: the one place that knows the task.

Today every model is a classifier, so a prediction is the most probable class name plus one
probability column per class. A task plugin will later supply this object (a regression task:
the values; multilabel: a threshold per label); :class:`automl.predictor.Predictor` and
``automl predict`` only call :meth:`columns`, :meth:`labels` and :meth:`table`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ClassProbabilities:
    """Single-label classification: probabilities in, the argmax class name out."""

    class_names: tuple[str, ...]

    def columns(self) -> list[str]:
        """The prediction file's columns after the id: ``prediction``, ``proba_<class>`` each."""
        return ["prediction", *(f"proba_{name}" for name in self.class_names)]

    def labels(self, proba: np.ndarray) -> np.ndarray:
        """The predicted class name of each row (ties: the first class)."""
        names = np.asarray(self.class_names, dtype=object)
        return names[proba.argmax(axis=1)] if len(proba) else np.empty(0, dtype=object)

    def table(self, proba: np.ndarray) -> dict[str, Any]:
        """Column name -> values, in :meth:`columns` order."""
        out: dict[str, Any] = {"prediction": self.labels(proba)}
        for index, name in enumerate(self.class_names):
            out[f"proba_{name}"] = proba[:, index]
        return out


def output_for(manifest: dict[str, Any]) -> ClassProbabilities:
    """The output transform an export's manifest describes."""
    spec = manifest["spec"]
    names: Sequence[str] = manifest.get("class_names") or spec.get("class_names") or ()
    if len(names) != int(spec["num_classes"]):
        names = [str(i) for i in range(int(spec["num_classes"]))]
    return ClassProbabilities(tuple(str(n) for n in names))
