"""Searcher, early-stopping scheduler and Tuner for an experiment (Ray Tune + OptunaSearch).

Samplers and schedulers are looked up by name in :mod:`automl.search.algorithms` and imported
lazily; an unknown name is rejected by config validation before anything starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from automl.config.models import Experiment, SearchConfig
from automl.constraints import ConstraintSpec
from automl.search.algorithms import SAMPLERS, SCHEDULERS, lookup
from automl.space import ObjectiveSpec, SearchSpace
from automl.study import study_name

if TYPE_CHECKING:
    import optuna
    from ray.tune import Callback, Tuner
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search.optuna import OptunaSearch


def make_sampler(name: str, seed: int, search: SearchConfig, multi_objective: bool,
                 constraints: Sequence[ConstraintSpec] = ()) -> "optuna.samplers.BaseSampler":
    import optuna

    from automl.constraints import ConstraintValues

    # Optuna 5 samplers read the values set with Trial.set_constraint (constraints_func is
    # deprecated there); earlier ones need the function.
    func = (ConstraintValues(len(constraints))
            if constraints and not hasattr(optuna.trial.Trial, "set_constraint") else None)
    return lookup(SAMPLERS, name, "sampler")(seed, search, func)


def make_searcher(space: SearchSpace, search: SearchConfig, seed: int,
                  storage: "optuna.storages.BaseStorage | None" = None, name: str | None = None,
                  points_to_evaluate: list[dict[str, Any]] | None = None) -> "OptunaSearch":
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = space.objectives
    multi = len(objectives) > 1
    metric: Any = [o.key for o in objectives] if multi else objectives[0].key
    mode: Any = [o.mode for o in objectives] if multi else objectives[0].mode
    kwargs = dict(space=space.define, metric=metric, mode=mode,
                  sampler=make_sampler(search.sampler, seed, search, multi, space.constraints),
                  seed=seed, storage=storage, study_name=study_name(name) if name else None,
                  points_to_evaluate=points_to_evaluate or None)
    if space.constraints:
        from automl.search.constrained import ConstrainedOptunaSearch

        return ConstrainedOptunaSearch(space.constraints, **kwargs)
    return OptunaSearch(**kwargs)


def grace_period(search: SearchConfig, epochs: int) -> int:
    """Epochs every trial gets before it can be stopped: as set, else a quarter of the epochs
    (one noisy first epoch is a poor judge of a configuration)."""
    return search.grace_period or max(1, epochs // 4)


def make_scheduler(search: SearchConfig, objective: ObjectiveSpec, max_t: int, epochs: int
                   ) -> "TrialScheduler | None":
    """The early-stopping scheduler on the first objective; ``max_t`` is reports per trial."""
    grace = grace_period(search, epochs)
    factory = lookup(SCHEDULERS, search.early_stopping, "early stopping")
    if max_t <= grace:
        return None
    return factory(objective.key, objective.mode, max_t, grace, search)


def build_tuner(trainable: Any, config: Experiment, space: SearchSpace, searcher: "OptunaSearch",
                budget: int, storage_path: str, callbacks: list["Callback"],
                stop: Any = None) -> "Tuner":
    """The Tuner for an experiment, set up so orchestration stays cheap for small trials: actors
    are reused between trials, Ray's auto-loggers and progress table are off (our callbacks record
    and print), and only the final checkpoint of a trial is written.

    ``trainable`` is a Tune function trainable (``automl.trial.trainable.run_trial`` with its
    parameters bound); benchmarks pass their own to time the orchestration alone.
    """
    from ray import tune

    from automl.search import actor_reuse
    from automl.trial.data_parallel import concurrent_trials

    actor_reuse.install()  # reused actors must not cost concurrency after a worker dies
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=make_scheduler(config.search, space.objectives[0],
                                     max_t=config.training.epochs + 1,
                                     epochs=config.training.epochs),
            num_samples=budget,
            max_concurrent_trials=(config.search.max_concurrent
                                   or concurrent_trials(config.resources)),
            time_budget_s=config.search.time_budget_s,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=config.name, storage_path=storage_path, verbose=0, callbacks=callbacks,
            log_to_file=False, stop=stop,
            failure_config=tune.FailureConfig(max_failures=config.search.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None)))


def trial_dirname(trial: Any) -> str:
    """Short, stable trial directory names (Ray's default embeds every parameter)."""
    return f"trial_{trial.trial_id}"
