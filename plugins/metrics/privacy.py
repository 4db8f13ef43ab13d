"""Privacy: the epsilon a differentially private training strategy spent."""

from __future__ import annotations

import automl
from automl.components import EvalContext, Metric


class Epsilon(Metric):
    name = "epsilon"
    description = ("privacy spent by differentially private training (epsilon at the "
                   "strategy's delta); lower is more private")
    direction = "min"
    model_only = True
    aggregate = "sum"  # basic composition: an ensemble of private models spends their sum
    fact = "epsilon"

    def compute(self, ctx: EvalContext) -> float:
        if "epsilon" not in ctx.facts:
            raise ValueError("the trial's training strategy records no epsilon (train with a "
                             "differentially private strategy such as dp_sgd)")
        return float(ctx.facts["epsilon"])


@automl.hookimpl
def automl_register_metrics(registrar):
    registrar.add(Epsilon)
