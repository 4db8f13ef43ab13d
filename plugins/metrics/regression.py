"""Regression metrics, computed on predictions in the targets' own units.

With several targets, ``rmse`` and ``mae`` average over every value and ``r2`` is the unweighted
mean of the per-target R².
"""

from __future__ import annotations

import numpy as np

import automl
from automl.components import EvalContext, Metric


def _pair(ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(ctx.y_true, dtype=np.float64).reshape(len(ctx.y_true), -1)
    return y, np.asarray(ctx.proba, dtype=np.float64).reshape(y.shape)


class Rmse(Metric):
    name = "rmse"
    description = "root mean squared error (targets' units)"
    direction = "min"
    recorded = "always"
    tasks = ("regression",)

    def compute(self, ctx: EvalContext) -> float:
        y, pred = _pair(ctx)
        return float(np.sqrt(np.mean((y - pred) ** 2)))


class Mae(Metric):
    name = "mae"
    description = "mean absolute error (targets' units)"
    direction = "min"
    recorded = "always"
    tasks = ("regression",)

    def compute(self, ctx: EvalContext) -> float:
        y, pred = _pair(ctx)
        return float(np.mean(np.abs(y - pred)))


class R2(Metric):
    name = "r2"
    description = "coefficient of determination R² (mean over targets)"
    direction = "max"
    recorded = "always"
    tasks = ("regression",)

    def compute(self, ctx: EvalContext) -> float:
        from sklearn.metrics import r2_score

        y, pred = _pair(ctx)
        return float(r2_score(y, pred, multioutput="uniform_average"))


@automl.hookimpl
def automl_register_metrics(registrar):
    registrar.add(Rmse)
    registrar.add(Mae)
    registrar.add(R2)
