"""automl: a plugin-based AutoML experimentation platform on Ray Tune and Optuna.

``automl.run("experiments/x.yaml")`` runs an experiment and returns a :class:`RunResult`; it
prints nothing (progress goes to ``listener=``, see :mod:`automl.events`). Plugins implement the hooks in :mod:`automl.hookspecs`, marked with :data:`hookimpl`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("automl")

if TYPE_CHECKING:
    from automl.explanation import Explanation
    from automl.predictor import Predictor
    from automl.runner import RunResult


def run(path: str, **options: Any) -> "RunResult":
    """Run the experiment in ``path``; keyword options mirror ``automl run`` flags, and
    ``listener`` receives the progress events (:mod:`automl.events`). Prints nothing."""
    from automl.runner import run_experiment

    return run_experiment(path, **options)


def load_model(path: str) -> "Predictor":
    """Load a model exported with ``automl export`` for prediction on raw inputs:
    ``automl.load_model(path).predict(rows)`` (see :mod:`automl.predictor`)."""
    from automl.predictor import load

    return load(path)


def explain(experiment: Any, **options: Any) -> "Explanation":
    """Explain a trial's model or the ensemble of ``experiment`` (a name or a stored record) on
    validation rows and write it to files; keyword options mirror ``automl explain`` flags
    (``trial``, ``ensemble``, ``out``, ``db``, ``examples``). Prints nothing; see
    :mod:`automl.explanation`."""
    from automl.explanation import explain as explain_model

    return explain_model(experiment, **options)


__all__ = ["__version__", "explain", "hookimpl", "load_model", "run"]
