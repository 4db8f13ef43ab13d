"""Parameter importances from Optuna's PED-ANOVA evaluator, one chart per objective.

The store's completed trials are put into an in-memory Optuna study (``create_trial`` with a
distribution per parameter); PED-ANOVA assesses conditional parameters too (an architecture's
parameters among the trials that chose it). A parameter with one value in every trial (a fixed
one) is not searched and is left out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from automl.report.gather import ReportData, TrialView, metric_label
from automl.report.section import Section, note

#: fewer completed trials than this give no importances: PED-ANOVA compares the best tenth of
#: the trials with all of them, and needs a few in each
MIN_TRIALS = 5


def importance_section(data: ReportData) -> Section:
    title = "Parameter importances"
    anchor = "importance"
    done = scored_trials(data)
    if len(done) < MIN_TRIALS:
        return Section.empty_because(
            anchor, title, f"{len(done)} completed trial(s) with every objective; importances "
                           f"need at least {MIN_TRIALS}.")
    distributions = infer_distributions([t.record.params for t in done], data.experiment.config)
    if not distributions:
        return Section.empty_because(anchor, title, "Every parameter had the same value in all "
                                                    "completed trials: nothing was searched.")
    parts: list[Any] = []
    for objective in data.objectives:
        try:
            assessed, said = importances_of(done, distributions, objective.key, objective.mode)
        except (ValueError, RuntimeError) as exc:  # an Optuna that cannot assess these trials
            parts.append(note(f"{objective.key}: Optuna could not assess importances: {exc}"))
            continue
        parts += [note(f"{objective.key}: {text}") for text in said]
        importances = {k: v for k, v in assessed.items() if v > 0}
        if not importances:
            parts.append(note(f"{objective.key}: no importances (every parameter scored 0)."))
            continue
        names = list(importances)[::-1]  # the most important at the top
        figure = go.Figure(go.Bar(x=[importances[n] for n in names], y=names, orientation="h",
                                  marker_color="#1f77b4",
                                  hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
        figure.update_layout(title=f"Importance for {metric_label(objective.key)}",
                             xaxis_title="importance (sums to 1)",
                             height=max(280, 26 * len(names) + 120),
                             margin={"l": 240})
        parts.append(figure)
    return Section(anchor, title,
                   f"Optuna's PED-ANOVA evaluator on the {len(done)} completed trials: how much "
                   "each parameter decides whether a trial lands among the best tenth. "
                   "Conditional parameters are assessed among the trials that have them.", parts)


def scored_trials(data: ReportData) -> list[TrialView]:
    """The completed trials that recorded every objective: the ones importances assess."""
    keys = [o.key for o in data.objectives]
    return [t for t in data.completed() if all(k in t.metrics for k in keys)]


def importances_of(trials: Sequence[TrialView], distributions: dict[str, Any], key: str,
                   mode: str, evaluator: Any = None) -> tuple[dict[str, float], list[str]]:
    """The normalised importance of every assessed parameter for the metric ``key`` optimised
    in ``mode``, and what Optuna warned. The study minimises: a maximised value is negated.
    ``evaluator`` is an Optuna importance evaluator (default: PED-ANOVA)."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sign = -1.0 if mode == "max" else 1.0
    study = optuna.create_study(direction="minimize")
    study.add_trials([optuna.trial.create_trial(
        params={k: v for k, v in t.record.params.items() if k in distributions},
        distributions={k: d for k, d in distributions.items() if k in t.record.params},
        value=sign * float(t.metrics[key])) for t in trials])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importances = get_param_importances(
            study, evaluator=evaluator if evaluator is not None else PedAnovaImportanceEvaluator())
    return importances, list(dict.fromkeys(str(w.message) for w in caught))


def infer_distributions(params: Sequence[dict[str, Any]], config: dict[str, Any]
                        ) -> dict[str, Any]:
    """An Optuna distribution for each parameter that took more than one value: categorical for
    strings and booleans, int or float ranges over the values seen (log where the experiment's
    config says ``log: true`` for it)."""
    from optuna.distributions import (
        CategoricalDistribution, FloatDistribution, IntDistribution,
    )

    values: dict[str, list[Any]] = {}
    for trial_params in params:
        for key, value in trial_params.items():
            values.setdefault(key, []).append(value)
    out: dict[str, Any] = {}
    for key, seen in values.items():
        distinct = list(dict.fromkeys(seen))
        if len(distinct) < 2:
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct):
            low, high = min(distinct), max(distinct)
            log = _declared_log(config, key) and low > 0
            if all(isinstance(v, int) for v in distinct):
                out[key] = IntDistribution(int(low), int(high), log=log)
            else:
                out[key] = FloatDistribution(float(low), float(high), log=log)
        else:
            out[key] = CategoricalDistribution(sorted(distinct, key=str))
    return out


#: parameter name prefix -> section of the experiment config that declares it
_SECTIONS = {"architecture": "architecture", "augmentation": "augmentations",
             "pruning": "pruning", "training": "training", "multitask": "multitask"}


def _declared_log(config: dict[str, Any], key: str) -> bool:
    """Whether the config declares the parameter ``key`` (``training.lr``,
    ``architecture.mlp.width``) as a range with ``log: true``; a component's own default range
    (not in the config) counts as linear."""
    first, *rest = key.split(".")
    node: Any = config.get(_SECTIONS.get(first, first))
    for part in rest:
        node = node.get(part) if isinstance(node, dict) else None
    return isinstance(node, dict) and node.get("log") is True
