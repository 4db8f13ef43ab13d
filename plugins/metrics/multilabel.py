"""Multi-label metrics: labels are predicted present when their probability is at least 0.5.

``f1_macro`` and ``roc_auc`` (macro over labels) for multi-label targets are the classification
metrics of the same names (:mod:`automl_plugins.metrics.classification`), which apply to both
tasks.
"""

from __future__ import annotations

import numpy as np

import automl
from automl.components import EvalContext, Metric
from automl_plugins.tasks.multilabel import THRESHOLD


def label_pair(ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
    """The 0/1 targets and the 0/1 predicted labels, both int (N x labels)."""
    y = np.asarray(ctx.y_true).astype(np.int64)
    return y, (np.asarray(ctx.proba) >= THRESHOLD).astype(np.int64)


class SubsetAccuracy(Metric):
    name = "subset_accuracy"
    description = "fraction of examples whose every label is predicted right"
    direction = "max"
    recorded = "always"
    tasks = ("multilabel",)

    def compute(self, ctx: EvalContext) -> float:
        y, pred = label_pair(ctx)
        return float(np.mean((y == pred).all(axis=1)))


class F1Micro(Metric):
    name = "f1_micro"
    description = "F1 over all (example, label) decisions pooled"
    direction = "max"
    recorded = "always"
    tasks = ("multilabel",)

    def compute(self, ctx: EvalContext) -> float:
        from sklearn.metrics import f1_score

        y, pred = label_pair(ctx)
        return float(f1_score(y, pred, average="micro", zero_division=0))


class HammingLoss(Metric):
    name = "hamming_loss"
    description = "fraction of (example, label) decisions that are wrong"
    direction = "min"
    recorded = "always"
    tasks = ("multilabel",)

    def compute(self, ctx: EvalContext) -> float:
        y, pred = label_pair(ctx)
        return float(np.mean(y != pred))


@automl.hookimpl
def automl_register_metrics(registrar):
    registrar.add(SubsetAccuracy)
    registrar.add(F1Micro)
    registrar.add(HammingLoss)
