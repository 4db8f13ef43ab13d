"""OptunaSearch for an experiment with constraints: each trial's constraint values reach the
study with its objective values, where the sampler reads them: ``Trial.set_constraint`` on
Optuna 5 and later, a user attribute read by the sampler's ``constraints_func``
(:class:`automl.constraints.ConstraintValues`) on earlier versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from automl.constraints import CONSTRAINTS_ATTR, ConstraintSpec, sampler_values


class ConstrainedOptunaSearch(OptunaSearch):
    """OptunaSearch that stores the constraint values of a trial's last result (its final
    metrics, or the epoch it was stopped at) as a user attribute before telling the study."""

    def __init__(self, constraints: Sequence[ConstraintSpec], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.constraints = list(constraints)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        # Ray Tune's OptunaSearch keeps the study trial of each Tune trial in ``_ot_trials``;
        # the values must be set before its on_trial_complete calls study.tell.
        trial = getattr(self, "_ot_trials", {}).get(trial_id)
        if trial is not None and result and trial_id not in getattr(
                self, "_completed_trials", ()):
            values = sampler_values(result, self.constraints)
            if hasattr(trial, "set_constraint"):  # Optuna >= 5: samplers read trial.constraints
                for constraint, value in zip(self.constraints, values):
                    trial.set_constraint(constraint.metric, value)
            trial.set_user_attr(CONSTRAINTS_ATTR, values)  # for ConstraintValues (Optuna < 5)
        super().on_trial_complete(trial_id, result, error)
