"""Classification metrics computed from labels and predicted probabilities.

Every metric takes the class set from the data spec (``labels=range(num_classes)``), so a split in
which some class never occurs is still scored.
"""

from __future__ import annotations

import numpy as np

import automl
from automl.components import EvalContext, Metric

#: Probabilities are clipped to [PROBA_EPS, 1] before taking logarithms.
PROBA_EPS = 1e-15


def _labels(ctx: EvalContext) -> list[int]:
    return list(range(ctx.spec.num_classes))


def _probabilities(ctx: EvalContext) -> np.ndarray:
    """The predictions in float64, clipped away from 0 and renormalised per row."""
    proba = np.clip(np.asarray(ctx.proba, dtype=np.float64), PROBA_EPS, 1.0)
    return proba / proba.sum(axis=1, keepdims=True)


class Accuracy(Metric):
    name = "accuracy"
    description = "fraction of examples whose most probable class is the label"
    direction = "max"
    recorded = "always"
    tasks = ("classification",)

    def compute(self, ctx: EvalContext) -> float:
        return float(np.mean(ctx.proba.argmax(axis=1) == ctx.y_true))


class BalancedAccuracy(Metric):
    name = "balanced_accuracy"
    description = "mean recall over the classes present in the split"
    direction = "max"
    tasks = ("classification",)

    def compute(self, ctx: EvalContext) -> float:
        from sklearn.metrics import confusion_matrix

        matrix = confusion_matrix(ctx.y_true, ctx.proba.argmax(axis=1), labels=_labels(ctx))
        support = matrix.sum(axis=1)
        present = support > 0  # recall is undefined for a class with no examples
        return float(np.mean(np.diag(matrix)[present] / support[present]))


class F1Macro(Metric):
    name = "f1_macro"
    description = ("unweighted mean F1 over classes that occur as label or prediction (multi-label: "
                   "over labels)")
    direction = "max"
    tasks = ("classification", "multilabel")

    def compute(self, ctx: EvalContext) -> float:
        from sklearn.metrics import f1_score

        if ctx.spec.task == "multilabel":
            from automl_plugins.metrics.multilabel import label_pair

            y, pred = label_pair(ctx)
            return float(f1_score(y, pred, average="macro", zero_division=0))

        y_pred = ctx.proba.argmax(axis=1)
        labels = _labels(ctx)
        per_class = f1_score(ctx.y_true, y_pred, labels=labels, average=None, zero_division=0)
        # A class that is neither a label nor a prediction has no F1 (0/0); leave it out, as
        # scikit-learn does when it infers the labels, instead of counting it as 0.
        occurs = np.isin(labels, ctx.y_true) | np.isin(labels, y_pred)
        return float(np.mean(per_class[occurs]))


class LogLoss(Metric):
    name = "log_loss"
    description = "mean negative log-probability of the label (probabilities clipped at 1e-15)"
    direction = "min"
    recorded = "always"
    # Validation accuracy on a few hundred examples ties often; of tied trials the lower log
    # loss is the better (better calibrated) model.
    tie_breaker = True
    tasks = ("classification",)

    def compute(self, ctx: EvalContext) -> float:
        from sklearn.metrics import log_loss

        return float(log_loss(ctx.y_true, _probabilities(ctx), labels=_labels(ctx)))


class RocAuc(Metric):
    name = "roc_auc"
    description = ("ROC AUC: binary on class 1's probability, else one-vs-rest macro average "
                   "(multi-label: macro over labels)")
    direction = "max"
    tasks = ("classification", "multilabel")

    def compute(self, ctx: EvalContext) -> float:
        from sklearn.metrics import roc_auc_score

        if ctx.spec.task == "multilabel":
            y = np.asarray(ctx.y_true).astype(np.int64)
            both = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
            if not both:
                raise ValueError(f"ROC AUC needs a label with both values in the {ctx.split} "
                                 "split")
            # macro over the labels with both values present (AUC is undefined otherwise)
            return float(np.mean([roc_auc_score(y[:, j], ctx.proba[:, j]) for j in both]))

        present = np.unique(ctx.y_true)
        if len(present) < 2:
            raise ValueError(f"ROC AUC needs at least two classes in y_true; the {ctx.split} "
                             f"split has only class {present.tolist()}")
        proba = np.asarray(ctx.proba, dtype=np.float64)
        if ctx.spec.num_classes == 2:
            return float(roc_auc_score(ctx.y_true, proba[:, 1]))
        # One-vs-rest per class present in y_true (for an absent class the AUC is undefined and
        # scikit-learn's multi_class="ovr" would return NaN), then the unweighted mean.
        scores = [roc_auc_score(ctx.y_true == c, proba[:, c]) for c in present]
        return float(np.mean(scores))


@automl.hookimpl
def automl_register_metrics(registrar):
    registrar.add(Accuracy)
    registrar.add(BalancedAccuracy)
    registrar.add(F1Macro)
    registrar.add(LogLoss)
    registrar.add(RocAuc)
