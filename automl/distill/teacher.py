"""The teacher and its predictions on the training split.

The teacher is the experiment's ensemble when the ensemble stage stored one, else the search's
best trial. Trials keep only their validation and test predictions, so the stage rebuilds the
teacher's models from their checkpoints (as an export does: pruned, quantized and k-fold trials
alike; a k-fold trial predicts with the average of its fold models) and predicts the training
inputs on the driver's CPU, in batches. Only inputs are predicted: no label is read, and the test
split is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from automl.components import DataSpec
from automl.registry import Registry
from automl.results import best_of
from automl.store import ExperimentRecord


@dataclass(frozen=True)
class Teacher:
    kind: str  # "ensemble" or "trial"
    members: list[int]
    weights: list[float]
    ensemble_id: int | None = None
    #: seconds spent rebuilding the models and predicting the training inputs
    elapsed_s: float = field(default=0.0, compare=False)

    def describe(self) -> str:
        if self.kind == "ensemble":
            return (f"ensemble (id {self.ensemble_id}) of trials "
                    + ", ".join(f"#{n}" for n in self.members))
        return f"best trial #{self.members[0]}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "members": self.members, "weights": self.weights,
                "ensemble_id": self.ensemble_id}


def choose_teacher(exp: ExperimentRecord) -> Teacher | None:
    """The latest ensemble, else the best trial; None without a completed trial."""
    if exp.ensemble is not None:
        record = exp.ensemble
        return Teacher("ensemble", list(record.members), list(record.weights), record.id)
    best = best_of(exp)
    return Teacher("trial", [best.number], [1.0]) if best is not None else None


def teacher_predictions(exp: ExperimentRecord, registry: Registry, teacher: Teacher,
                        x: np.ndarray, spec: DataSpec, batch_size: int = 1024) -> np.ndarray:
    """The teacher's predictions (the task's: class probabilities) for inputs ``x``."""
    import torch

    from automl.export import trained_model
    from automl.multitask import task_for
    from automl.weighted_models import weighted_models

    by_number = {t.number: t for t in exp.trials}
    built = [trained_model(exp, by_number[n], registry, spec) for n in teacher.members]
    task = task_for(spec, registry)
    module = weighted_models([m for m, _ in built], teacher.weights, task, spec,  # type: ignore[arg-type]
                             [folds for _, folds in built]).eval()
    inputs = torch.as_tensor(x)
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            out.append(module(inputs[start:start + batch_size]).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, task.output_size(spec)), np.float32)
