"""Running the final evaluation as a stage of a run (or of ``automl ensemble``), and reading it."""

from __future__ import annotations

import time

from automl.components import DataSpec
from automl.errors import StoreError
from automl.evaluate.stage import already_evaluated, evaluate
from automl.events import EvaluationFinished, EvaluationSkipped, Listener, ignore
from automl.registry import Registry
from automl.results import constraints_of
from automl.search_data import TestLabels
from automl.store import EvaluationRecord, Store


def final_evaluation(store: Store, name: str, registry: Registry, labels: TestLabels,
                     spec: DataSpec, listener: Listener | None = None
                     ) -> EvaluationRecord | None:
    """Score experiment ``name`` on the test split and record it; reports
    :class:`~automl.events.EvaluationFinished` or :class:`~automl.events.EvaluationSkipped`.
    Returns the stored evaluation, or None when there was nothing (new) to score."""
    emit = listener or ignore
    started = time.monotonic()
    exp = store.experiment(name)
    if already_evaluated(exp):
        emit(EvaluationSkipped(name, f"evaluation {exp.evaluation.number} already scored the "  # type: ignore[union-attr]
                                     "same trials and ensemble"))
        return None
    subjects = evaluate(exp, registry, labels, spec)
    if not subjects:
        emit(EvaluationSkipped(name, "no completed trial meets the constraints"
                               if constraints_of(exp) else "no completed trial"))
        return None
    record = store.add_evaluation(name, subjects)
    emit(EvaluationFinished(name, record, time.monotonic() - started))
    return record


def final_scores(store: Store | str, name: str) -> EvaluationRecord:
    """The latest final evaluation of experiment ``name`` (its test metrics per scored trial
    and ensemble: ``record.best()``, ``record.pareto()``, ``record.ensemble()``).

    ``store`` is an open :class:`~automl.store.Store` or a database URL. Raises
    :class:`~automl.errors.StoreError` when the experiment has not been evaluated.
    """
    if isinstance(store, str):
        with Store(store, create=False) as opened:
            return final_scores(opened, name)
    exp = store.experiment(name)
    if exp.evaluation is None:
        raise StoreError(f"experiment '{name}' has no final evaluation yet (it runs after the "
                         f"search; `automl run ... --resume` or `automl ensemble {name}` "
                         "makes one)")
    return exp.evaluation
