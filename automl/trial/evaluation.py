"""Scoring a model on a split with the registered metric plugins."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from automl.components import DataSpec, EvalContext, Metric
from automl.errors import PluginError


#: The key prefix of model-only metrics (recorded once per trial, not per split).
MODEL = "model"


def score(metrics: Sequence[tuple[str, Metric, str]], y_true: np.ndarray, proba: np.ndarray,
          model: object, spec: DataSpec, split: str, facts: Mapping[str, float] | None = None
          ) -> dict[str, float]:
    """Return ``{"<split>/<metric>": value}``, ``model/<metric>`` for a model-only metric;
    a metric plugin that raises is named. ``facts``: the training strategy's facts."""
    ctx = EvalContext(y_true=y_true, proba=proba, model=model, spec=spec, split=split,  # type: ignore[arg-type]
                      facts=dict(facts or {}))
    out: dict[str, float] = {}
    for name, metric, plugin in metrics:
        try:
            value = float(metric.compute(ctx))
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"plugin '{plugin}', metric '{name}': compute() raised "
                              f"{type(exc).__name__}: {exc}") from exc
        if not math.isfinite(value):
            raise PluginError(f"plugin '{plugin}', metric '{name}': returned {value} on the "
                              f"{split} split")
        out[f"{MODEL if metric.model_only else split}/{name}"] = value
    return out
