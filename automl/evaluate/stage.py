"""The final evaluation: the test split scored once, after the search and the ensemble stage.

What it scores: the best trial (chosen on validation), every member of the Pareto front of a
multi-objective run, the experiment's latest ensemble, and the best student of the distillation
stage (chosen on validation among the students, :func:`automl.results.best_student_of`). Each is
scored with the experiment's prediction metrics (those its trials recorded on validation, and the
ensemble's metric) on the test predictions the trials stored, against the test labels, which
reach this module only (see :mod:`automl.search_data`): from the runner after the stages before
it returned, or loaded from the data through :func:`load_test_labels`. The result is one row per
scored thing in the store's ``automl_evaluations`` table; evaluations are numbered and never
replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from automl.components import DataSpec, EvalContext
from automl.errors import PluginError, StoreError
from automl.multitask import create_metric, split_metric_name, task_for
from automl.registry import Registry
from automl.results import best_of, best_student_of, objectives_of, pareto_of
from automl.search_data import TestLabels, separate
from automl.store import EvaluatedSubject, ExperimentRecord, TrialRecord
from automl.trial.artifacts import PREDICTIONS_FILE

BEST, PARETO, ENSEMBLE, DISTILLED = "best", "pareto", "ensemble", "distilled"


def plan_subjects(exp: ExperimentRecord) -> list[tuple[str, int | None, int | None, list[str]]]:
    """What the evaluation of ``exp`` scores, in order: ``(subject, trial, ensemble_id, roles)``
    for the best trial, the other Pareto front members, the latest ensemble and the best
    student."""
    best = best_of(exp)
    if best is None:
        return []
    objectives = objectives_of(exp)
    front = [t.number for t in pareto_of(exp)] if len(objectives) > 1 else []
    planned: list[tuple[str, int | None, int | None, list[str]]] = [
        ("trial", best.number, None, [BEST, *([PARETO] if best.number in front else [])])]
    planned += [("trial", n, None, [PARETO]) for n in front if n != best.number]
    if exp.ensemble is not None:
        planned.append(("ensemble", None, exp.ensemble.id, [ENSEMBLE]))
    student = best_student_of(exp)
    if student is not None:
        planned.append(("trial", student.number, None, [DISTILLED]))
    return planned


def already_evaluated(exp: ExperimentRecord) -> bool:
    """True when the latest evaluation scored exactly what an evaluation would score now."""
    latest = exp.evaluation
    if latest is None:
        return False
    done = [(s.subject, s.trial, s.ensemble_id, s.roles) for s in latest.subjects]
    return done == plan_subjects(exp)


def evaluate(exp: ExperimentRecord, registry: Registry, labels: TestLabels,
             spec: DataSpec) -> list[EvaluatedSubject]:
    """Score what :func:`plan_subjects` names on the test split; returns what to store."""
    y_test = labels.read()
    by_number = {t.number: t for t in exp.trials}
    names = metric_names(exp, registry)
    subjects = []
    for subject, number, ensemble_id, roles in plan_subjects(exp):
        if subject == "trial":
            proba = test_proba(by_number[number], exp.name, len(y_test))  # type: ignore[index]
        else:
            record = exp.ensemble
            assert record is not None
            probas = [test_proba(by_number[n], exp.name, len(y_test)) for n in record.members]
            proba = task_for(spec, registry).combine(  # as the ensemble stage combined them
                np.asarray(record.weights, dtype=np.float64), probas)
        subjects.append(EvaluatedSubject(subject, number, ensemble_id, roles,
                                         score(registry, names, y_test, proba, spec)))
    return subjects


def metric_names(exp: ExperimentRecord, registry: Registry) -> list[str]:
    """The prediction metrics the trials recorded on validation, then the ensemble's metric."""
    recorded = [k.split("/", 1)[1] for t in exp.trials for k in t.metrics if k.startswith("val/")]
    ensemble = [exp.ensemble.metric] if exp.ensemble is not None else []
    available = set(registry.names("metric"))
    # several targets: per-target names (``price/rmse``) of registered metrics
    return [n for n in dict.fromkeys([*recorded, *ensemble])
            if split_metric_name(n)[1] in available
            and not registry.get("metric", split_metric_name(n)[1]).cls.model_only]  # type: ignore[attr-defined]


def score(registry: Registry, names: Sequence[str], y: np.ndarray, proba: np.ndarray,
          spec: DataSpec) -> dict[str, float]:
    """``{"test/<metric>": value}``; a metric plugin that raises is named."""
    out: dict[str, float] = {}
    for name in names:
        entry = registry.get("metric", split_metric_name(name)[1])
        try:
            value = float(create_metric(registry, name, spec).compute(
                EvalContext(y, proba, None, spec, "test")))
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"plugin '{entry.plugin}', metric '{name}': compute() raised "
                              f"{type(exc).__name__}: {exc}") from exc
        out[f"test/{name}"] = value
    return out


def test_proba(trial: TrialRecord, experiment: str, rows: int) -> np.ndarray:
    """A trial's stored test-split probabilities (the checkpoint's only test array we read)."""
    path = Path(trial.checkpoint or "") / PREDICTIONS_FILE
    if not trial.checkpoint or not path.is_file():
        raise StoreError(f"trial {trial.number} of experiment '{experiment}': {path} is missing "
                         "(were the artifacts moved or deleted?)")
    try:
        with np.load(path, allow_pickle=False) as data:
            proba = data["test_proba"].astype(np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise StoreError(f"cannot read test predictions from {path}: {exc}") from None
    if len(proba) != rows:
        raise StoreError(f"trial {trial.number} of experiment '{experiment}' predicted "
                         f"{len(proba)} test rows but the test split has {rows}: has the dataset "
                         "changed since the run?")
    return proba


def load_test_labels(exp: ExperimentRecord, registry: Registry) -> tuple[TestLabels, DataSpec]:
    """The experiment's test labels and DataSpec, prepared from its recorded config (the split
    is fixed by the seed) through the data layer: for ``automl ensemble`` on a recorded run."""
    from automl.data import prepare_data
    from automl.recorded import recorded_config

    data = prepare_data(recorded_config(exp), registry)
    _, labels = separate(data)
    return labels, data.spec


__all__ = ["already_evaluated", "evaluate", "load_test_labels", "metric_names", "plan_subjects",
           "score", "test_proba"]
