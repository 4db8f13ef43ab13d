"""From a model's predictions to what a prediction reports: the task decides.

:class:`TaskOutput` pairs an export's task (a task plugin, rebuilt from the export's plugins) with
its DataSpec; :class:`automl.predictor.Predictor` and ``automl predict`` only call
:meth:`TaskOutput.labels` and :meth:`TaskOutput.table`. A classification reports the class name
and one probability column per class, a regression its values, a multi-label task a 0/1 column and
a probability per label, several targets each target's columns (see each task's
``prediction_table``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from automl.components import DataSpec, Task


@dataclass(frozen=True)
class TaskOutput:
    """An export's task and spec: how its predictions (N x columns) are reported."""

    task: Task
    spec: DataSpec

    @property
    def width(self) -> int:
        """The number of prediction columns."""
        return len(self.task.prediction_columns(self.spec))

    def labels(self, predictions: np.ndarray) -> Any:
        """What ``predict`` returns (class names, values, 0/1 labels; per target for several)."""
        return self.task.decide(predictions, self.spec)

    def table(self, predictions: np.ndarray) -> dict[str, Any]:
        """Column name -> values, in the prediction file's order."""
        return self.task.prediction_table(predictions, self.spec)
