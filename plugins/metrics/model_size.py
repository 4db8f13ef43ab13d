"""Model size metrics: parameter count and non-zero parameter count."""

from __future__ import annotations

import automl
from automl.components import EvalContext, Metric


class Params(Metric):
    name = "params"
    description = "number of parameters of the final model"
    direction = "min"
    model_only = True
    recorded = "always"
    aggregate = "sum"  # an ensemble holds every member

    def compute(self, ctx: EvalContext) -> float:
        return float(sum(p.numel() for p in ctx.model.parameters()))


class NonzeroParams(Metric):
    name = "nonzero_params"
    description = "number of non-zero parameters of the final model (after pruning)"
    direction = "min"
    model_only = True
    recorded = "always"
    aggregate = "sum"  # an ensemble holds every member

    def compute(self, ctx: EvalContext) -> float:
        return float(sum(int(p.count_nonzero()) for p in ctx.model.parameters()))


@automl.hookimpl
def automl_register_metrics(registrar):
    registrar.add(Params)
    registrar.add(NonzeroParams)
