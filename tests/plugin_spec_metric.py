"""A metric plugin for tests/test_cli_ensemble.py: it scores 1 only with the run's DataSpec."""

from __future__ import annotations

import automl
from automl.components import EvalContext, Metric


class SeesRunSpec(Metric):
    name = "sees_run_spec"
    description = "1 when scored with the image DataSpec the run had, else 0"

    def compute(self, ctx: EvalContext) -> float:
        spec = ctx.spec
        return float(spec.kind == "image" and tuple(spec.input_shape) == (1, 8, 8)
                     and spec.class_names[:2] == ("zero", "one"))


@automl.hookimpl
def automl_register_metrics(registrar):  # noqa: ANN001, ANN201
    registrar.add(SeesRunSpec)
