"""Greedy ensemble selection with replacement (Caruana et al., 2004)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import automl
from automl.components import Ensembler, ParamDef
from automl.params import Fixed


class GreedySelection(Ensembler):
    name = "greedy"
    description = ("Caruana ensemble selection: start from the best model, repeatedly add (with "
                   "replacement) the one that most improves the score; weights = counts")
    params = {
        "iterations": ParamDef(Fixed(50), int, "models added (with replacement)"),
    }

    def fit(self, probas: Sequence[np.ndarray], y_true: np.ndarray,
            score: Callable[[np.ndarray, np.ndarray], float], params: dict[str, Any],
            seed: int) -> np.ndarray:
        iterations = int(params["iterations"])
        if iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {iterations}")
        stack = np.stack([np.asarray(p, dtype=np.float64) for p in probas])
        counts = np.zeros(len(stack))
        singles = [score(y_true, p) for p in stack]
        first = int(np.argmax(singles))
        counts[first] = 1
        total = stack[first].copy()
        best_score, best_counts = singles[first], counts.copy()
        for _ in range(iterations - 1):
            n = counts.sum()
            trial_scores = [score(y_true, (total + p) / (n + 1)) for p in stack]
            pick = int(np.argmax(trial_scores))  # ties: the earlier (better-ranked) candidate
            counts[pick] += 1
            total += stack[pick]
            if trial_scores[pick] > best_score:
                best_score, best_counts = trial_scores[pick], counts.copy()
        return best_counts / best_counts.sum()


@automl.hookimpl
def automl_register_ensemblers(registrar):
    registrar.add(GreedySelection)
