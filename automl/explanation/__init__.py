"""Explanations of a trained model and of the search that found it: ``automl explain``.

    import automl
    explanation = automl.explanation("quickstart", trial=3, db="sqlite:///automl.db")
    explanation.features[:3]        # tabular: the most important input features
    explanation.directory           # explanation.json, explanation.html, examples/*.png

What is explained is one trial's model (the best on validation by default) or the stored
ensemble (through its weighted predictions), loaded as an export loads it
(:mod:`automl.explanation.subject`). Only validation rows are used, never the test split.

- tabular data: permutation importance of every raw input feature, scored with the experiment's
  first objective metric (:mod:`automl.explanation.features`);
- image data: integrated gradients and occlusion with Captum, text data: integrated gradients on
  the token embeddings, for the most confidently right and wrong examples
  (:mod:`automl.explanation.attributions`);
- always: the search's hyperparameter importances from Optuna's evaluators
  (:mod:`automl.explanation.search`).

The result is written to a directory (:mod:`automl.explanation.files`), by default in the
experiment's artifacts, where ``automl report`` shows it. Needs the ``explain`` extra (Captum,
matplotlib, plotly). Prints nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

from typing import TYPE_CHECKING

from automl.errors import ConfigError
from automl.explanation.result import Example, Explanation, FeatureImportance

if TYPE_CHECKING:
    from automl.explanation.subject import Subject
    from automl.store import ExperimentRecord

#: validation examples explained for image and text models
EXAMPLES = 8

__all__ = ["EXAMPLES", "Example", "Explanation", "FeatureImportance", "explain"]


def explain(experiment: "str | ExperimentRecord", *, trial: str | int | None = None,
            ensemble: bool = False, out: str | Path | None = None, db: str | None = None,
            examples: int = EXAMPLES) -> Explanation:
    """Explain one trial's model (``trial``: a number or ``"best"``, the default) or the
    experiment's ensemble (``ensemble=True``) and write the explanation to ``out`` (default:
    ``<artifacts>/explanations/<experiment>/<trial-N | ensemble>``).

    Args:
        experiment: the experiment's name (read from ``db``, default ``./automl.db``) or its
            record (:meth:`automl.store.Store.experiment`).
        examples: image and text models: how many validation examples get attributions.

    Returns:
        the :class:`Explanation`, its ``directory`` set.

    Raises:
        StoreError: an unknown experiment, a trial without a final model, no ensemble.
        ConfigError: an experiment explanations do not cover (several targets), ``out`` not an
            empty folder or an earlier explanation, the ``explain`` extra missing.
    """
    _require_extra()
    exp = _record(experiment, db)
    if examples < 1:
        raise ConfigError(f"examples must be at least 1, got {examples}")
    from automl.explanation import files
    from automl.explanation.subject import load_subject

    started = time.perf_counter()
    chosen = Path(out).expanduser().absolute() if out is not None else None
    if chosen is not None:
        files.check_target(chosen)  # before the model and the data are loaded
    subject = load_subject(exp, trial, ensemble)
    target = chosen if chosen is not None else files.default_directory(exp, subject.trial)
    files.check_target(target)

    def fill(staging: Path) -> Explanation:
        from automl.explanation.search import hyperparameter_importances

        kind = subject.spec.kind
        notes = list(subject.notes)
        features, found, methods, baseline = [], [], [], None
        if kind == "tabular":
            from automl.explanation.features import permutation_importances

            features, baseline = permutation_importances(subject, exp.seed)
            methods = ["permutation importance (scikit-learn)"]
        elif kind in ("image", "text"):
            found, baseline, methods = _attributions(subject, staging, examples)
        else:
            raise ConfigError(f"automl explain covers tabular, image and text models; this "
                              f"experiment's data is '{kind}'")
        searched, said = hyperparameter_importances(exp)
        if searched:
            methods.append("hyperparameter importance (Optuna: " + ", ".join(searched) + ")")
        return Explanation(
            experiment=exp.name, subject=subject.label, trial=subject.trial,
            members=subject.members, weights=subject.weights, kind=kind, split="validation",
            rows=int(len(subject.data.y_val)), metric=subject.objective.key,
            mode=subject.objective.mode, baseline_score=baseline, methods=methods,
            features=features, examples=found, hyperparameters=searched, notes=notes + said,
            elapsed_s=time.perf_counter() - started)

    return files.write(target, fill)


def _attributions(subject: "Subject", staging: Path, count: int
                  ) -> tuple[list[Example], float, list[str]]:
    from automl.explanation import attributions
    from automl.explanation.files import EXAMPLES_DIR
    proba = attributions.predictions(subject.module, subject.data.x_val)
    columns = attributions.explained_columns(subject, proba)
    rows = attributions.choose_examples(subject, proba, columns, count)
    baseline = subject.score(subject.data.y_val, proba)
    if subject.spec.kind == "image":
        found = attributions.explain_images(subject, rows, columns, proba,
                                            staging / EXAMPLES_DIR)
        return found, baseline, ["integrated gradients (Captum)", "occlusion (Captum)"]
    found = attributions.explain_texts(subject, rows, columns, proba)
    return found, baseline, ["integrated gradients on the token embeddings (Captum)"]


def _record(experiment: "str | ExperimentRecord", db: str | None) -> "ExperimentRecord":
    if not isinstance(experiment, str):
        return experiment
    from automl.store import open_existing_store

    store = open_existing_store(db)
    try:
        return store.experiment(experiment)
    finally:
        store.close()


def _require_extra() -> None:
    missing = []
    for module in ("captum", "matplotlib", "plotly"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(f"automl explain needs {', '.join(missing)}: pip install "
                          "'automl[explain]'")
