"""Metrics: a score from labels and predicted probabilities, or from the model itself."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from automl.components.base import Component
from automl.components.dataset import DataSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass
class EvalContext:
    """Everything a metric may look at for one split of one trial.

    Args:
        y_true: the targets as the dataset gave them: int labels, shape (N,), for
            classification; values (N,) or (N, T) for regression; 0/1 (N, L) for multi-label.
        proba: the predictions the task made of the model's outputs: class probabilities
            (N x num_classes) for classification, values in the targets' units for regression,
            label probabilities for multi-label.
        model: the final model (for size or latency metrics), on CPU in eval mode.
        spec: the data spec.
        split: ``"val"`` or ``"test"``.
        facts: what the trial's training strategy recorded about how the model was trained
            (``epsilon``: the privacy spent), for metrics that declare ``fact``.
    """

    y_true: np.ndarray
    proba: np.ndarray
    model: "nn.Module | None"
    spec: DataSpec
    split: str
    facts: Mapping[str, float] = field(default_factory=dict)


#: ``Metric.recorded`` values: every trial records the metric, or only when the experiment asks
#: for it (an objective, ``record:``, or an ensemble metric).
RECORDED = ("always", "on_request")
#: ``Metric.aggregate`` values: how an ensemble's value follows from its members.
AGGREGATES = ("predictions", "sum", "none")


class Metric(Component):
    """A metric plugin. The class attributes declare what the core needs to know about it.

    Attributes:
        direction: the default optimisation mode, ``max`` or ``min``.
        model_only: the value depends only on the model (a parameter count, a latency), not on
            a split: computed once per trial on a CPU copy of the model, never from predictions.
        deterministic: False for measurements that vary between runs (latency); ``automl rerun``
            shows them without comparing.
        recorded: ``"always"`` (every trial records it, whatever the objectives) or
            ``"on_request"`` (only when an objective or the experiment's ``record:`` names it).
            Keep ``always`` for cheap metrics: it runs in every trial.
        aggregate: how an ensemble's value is found: ``"predictions"`` (computed on the
            ensemble's combined predictions; prediction metrics only), ``"sum"`` (the members'
            values added, e.g. size and latency) or ``"none"`` (not reported for ensembles).
        tie_breaker: breaks ties between trials (and ensemble weights) equal on every objective:
            the best trial is the one with the better value of this metric, in its own
            ``direction``. A tie-breaker is recorded by every trial. At most one registered
            metric per task may declare it; with none, ties go to the earlier trial.
        tasks: the tasks whose predictions the metric reads (``("classification",)``), or None
            for every task (model-only metrics). An experiment that names a metric for another
            task is a config error.
        fact: the training fact a model-only metric reads from ``ctx.facts`` (``"epsilon"``),
            or None. An experiment recording it must choose only training strategies that
            record the fact (``Strategy.facts``).
    """

    direction: ClassVar[str] = "max"
    model_only: ClassVar[bool] = False
    deterministic: ClassVar[bool] = True
    recorded: ClassVar[str] = "on_request"
    aggregate: ClassVar[str] = "predictions"
    tie_breaker: ClassVar[bool] = False
    tasks: ClassVar[tuple[str, ...] | None] = None
    fact: ClassVar[str | None] = None

    @abstractmethod
    def compute(self, ctx: EvalContext) -> float:
        """Return the score as a float."""
