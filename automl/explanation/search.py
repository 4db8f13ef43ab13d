"""Hyperparameter importance of the search itself: Optuna's importance evaluators (PED-ANOVA and
fANOVA) on the experiment's completed trials, through the report's in-memory study
(:mod:`automl.report.importance`)."""

from __future__ import annotations

from typing import Any

from automl.store import ExperimentRecord


def hyperparameter_importances(exp: ExperimentRecord
                               ) -> tuple[dict[str, dict[str, dict[str, float]]], list[str]]:
    """Evaluator name -> objective key -> parameter -> importance (summing to 1), and notes on
    what could not be assessed (too few trials, nothing searched, Optuna's warnings), each
    beginning "hyperparameter importance"."""
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    from automl.report.gather import gather
    from automl.report.importance import (
        MIN_TRIALS, importances_of, infer_distributions, scored_trials,
    )

    data = gather(exp)
    done = scored_trials(data)
    if len(done) < MIN_TRIALS:
        return {}, [f"hyperparameter importance: {len(done)} completed trial(s) with every "
                    f"objective; it needs at least {MIN_TRIALS}"]
    distributions = infer_distributions([t.record.params for t in done], exp.config)
    if not distributions:
        return {}, ["hyperparameter importance: every parameter had the same value in all "
                    "completed trials (nothing was searched)"]
    evaluators: dict[str, Any] = {"ped-anova": PedAnovaImportanceEvaluator(),
                                  "fanova": FanovaImportanceEvaluator(seed=exp.seed)}
    found: dict[str, dict[str, dict[str, float]]] = {}
    notes: list[str] = []
    for name, evaluator in evaluators.items():
        for objective in data.objectives:
            try:
                values, said = importances_of(done, distributions, objective.key,
                                              objective.mode, evaluator)
            except (ValueError, RuntimeError) as exc:
                notes.append(f"hyperparameter importance ({name}, {objective.key}): Optuna "
                             f"could not assess it: {exc}")
                continue
            notes += [f"hyperparameter importance ({name}, {objective.key}): {text}"
                      for text in said]
            found.setdefault(name, {})[objective.key] = {k: float(v) for k, v in values.items()}
    return found, notes
