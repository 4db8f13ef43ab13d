"""Weighted average whose weights are searched by Optuna (Dirichlet parameterisation)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import automl
from automl.components import Ensembler, ParamDef
from automl.params import Fixed

LOW = 1e-6


class OptunaWeighted(Ensembler):
    name = "weighted"
    description = ("weighted average of probabilities; weights searched by Optuna TPE as "
                   "normalised -log(u) draws (a Dirichlet(1) prior), starting from uniform and "
                   "best-single")
    params = {
        "trials": ParamDef(Fixed(200), int, "weight vectors evaluated"),
    }

    def fit(self, probas: Sequence[np.ndarray], y_true: np.ndarray,
            score: Callable[[np.ndarray, np.ndarray], float], params: dict[str, Any],
            seed: int) -> np.ndarray:
        import optuna

        trials = int(params["trials"])
        if trials < 1:
            raise ValueError(f"trials must be at least 1, got {trials}")
        stack = np.stack([np.asarray(p, dtype=np.float64) for p in probas])
        k = len(stack)

        def weights_of(values: Sequence[float]) -> np.ndarray:
            raw = -np.log(np.clip(np.asarray(values, dtype=np.float64), LOW, 1.0))
            return raw / raw.sum() if raw.sum() > 0 else np.full(k, 1.0 / k)

        def objective(trial: optuna.Trial) -> float:
            values = [trial.suggest_float(f"u{i}", LOW, 1.0) for i in range(k)]
            weights = weights_of(values)
            return score(y_true, np.tensordot(weights, stack, axes=1))

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True))
        best_single = int(np.argmax([score(y_true, p) for p in stack]))
        study.enqueue_trial({f"u{i}": 0.3679 for i in range(k)})  # equal weights
        study.enqueue_trial({f"u{i}": (0.01 if i == best_single else 1.0) for i in range(k)})
        study.optimize(objective, n_trials=max(trials, 2))
        best = study.best_trial.params
        return weights_of([best[f"u{i}"] for i in range(k)])


@automl.hookimpl
def automl_register_ensemblers(registrar):
    registrar.add(OptunaWeighted)
