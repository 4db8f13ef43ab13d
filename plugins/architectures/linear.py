"""A linear model: one fully connected layer from the (flattened) inputs to the outputs.

With the classification task this is multinomial logistic regression, with the regression task
linear regression; the search's ``weight_decay`` is its L2 penalty. It is the simple baseline a
user tries first, as a candidate the search (and the ensemble) can choose beside the networks.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import automl
from automl.components import Architecture, DataSpec


class Linear(Architecture):
    name = "linear"
    description = "one linear layer (logistic regression for classification, linear regression)"
    data_kinds: ClassVar[tuple[str, ...]] = ("image", "tabular")

    def build(self, params: dict[str, Any], spec: DataSpec):
        from torch import nn

        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(spec.input_shape),
                                                     spec.output_size))


@automl.hookimpl
def automl_register_architectures(registrar):
    registrar.add(Linear)
