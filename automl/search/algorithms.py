"""The samplers and early-stopping schedulers an experiment can name: one name -> factory table
each, the only place their names are defined (config validation reads the names from here).

Factories import Optuna and Ray Tune when called, so this module is cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from ray.tune.schedulers import TrialScheduler

    from automl.config.models import SearchConfig

    #: Optuna's ``constraints_func``: a trial -> its constraint values (<= 0: feasible)
    ConstraintsFunc = Callable[[optuna.trial.FrozenTrial], Sequence[float]]

SamplerFactory = Callable[[int, "SearchConfig", Any], "optuna.samplers.BaseSampler"]


def _optuna() -> Any:
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def _tpe(seed: int, search: "SearchConfig", constraints: ConstraintsFunc | None = None
         ) -> "optuna.samplers.BaseSampler":
    return _optuna().samplers.TPESampler(seed=seed, n_startup_trials=search.startup_trials,
                                         multivariate=True, group=True, constant_liar=True,
                                         constraints_func=constraints)


def _random(seed: int, search: "SearchConfig", constraints: ConstraintsFunc | None = None
            ) -> "optuna.samplers.BaseSampler":
    return _optuna().samplers.RandomSampler(seed=seed)


def _nsga2(seed: int, search: "SearchConfig", constraints: ConstraintsFunc | None = None
           ) -> "optuna.samplers.BaseSampler":
    return _optuna().samplers.NSGAIISampler(seed=seed, constraints_func=constraints)


def _qmc(seed: int, search: "SearchConfig", constraints: ConstraintsFunc | None = None
         ) -> "optuna.samplers.BaseSampler":
    return _optuna().samplers.QMCSampler(seed=seed, warn_independent_sampling=False)


def _gp(seed: int, search: "SearchConfig", constraints: ConstraintsFunc | None = None
        ) -> "optuna.samplers.BaseSampler":
    return _optuna().samplers.GPSampler(seed=seed, n_startup_trials=search.startup_trials,
                                        constraints_func=constraints)


#: ``search.sampler`` -> factory(seed, search config, constraints_func or None) of the Optuna
#: sampler. A factory whose sampler cannot use constraints ignores them: the choice of the best
#: trial still never picks an infeasible one.
SAMPLERS: dict[str, SamplerFactory] = {
    "tpe": _tpe, "random": _random, "nsga2": _nsga2, "qmc": _qmc, "gp": _gp,
}
#: the samplers that steer away from infeasible configurations
CONSTRAINED_SAMPLERS = ("tpe", "nsga2", "gp")

SchedulerFactory = Callable[[str, str, int, int, "SearchConfig"], "TrialScheduler | None"]


def _asha(metric: str, mode: str, max_t: int, grace: int, search: "SearchConfig"
          ) -> "TrialScheduler":
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(metric=metric, mode=mode, max_t=max_t, grace_period=grace,
                         reduction_factor=search.reduction_factor)


def _hyperband(metric: str, mode: str, max_t: int, grace: int, search: "SearchConfig"
               ) -> "TrialScheduler":
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(metric=metric, mode=mode, max_t=max_t,
                              reduction_factor=search.reduction_factor)


def _median(metric: str, mode: str, max_t: int, grace: int, search: "SearchConfig"
            ) -> "TrialScheduler":
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(time_attr="training_iteration", metric=metric, mode=mode,
                              grace_period=grace, min_samples_required=3)


def _none(metric: str, mode: str, max_t: int, grace: int, search: "SearchConfig") -> None:
    return None


#: ``search.early_stopping`` -> factory(metric, mode, max_t, grace period, search config) of the
#: Ray Tune scheduler (``none``: every trial runs all its epochs).
SCHEDULERS: dict[str, SchedulerFactory] = {
    "asha": _asha, "hyperband": _hyperband, "median": _median, "none": _none,
}


def lookup(table: dict[str, Any], name: str, what: str) -> Any:
    """The factory of ``name``; an unknown name is an error listing the valid ones."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(table)}") from None
