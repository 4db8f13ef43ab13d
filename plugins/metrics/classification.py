"""Classification metrics computed from labels and predicted probabilities."""

from __future__ import annotations

import numpy as np

import automl
from automl.components import EvalContext, Metric


class Accuracy(Metric):
    name = "accuracy"
    description = "fraction of examples whose most probable class is the label"
    direction = "max"

    def compute(self, ctx: EvalContext) -> float:
        return float(np.mean(ctx.proba.argmax(axis=1) == ctx.y_true))


@automl.hookimpl
def automl_register_metrics(registrar):
    registrar.add(Accuracy)
