"""Warm starts: a new search seeded with what earlier experiments in the same database learnt.

``search.warm_start: {from: [EXPERIMENT, ...], top_k: N, observations: true}`` carries two things
over, matched by the parameters' stable names (:mod:`automl.space`):

* **configurations**: the ``top_k`` best trials of each source run first (Optuna's
  ``enqueue_trial`` through OptunaSearch's ``points_to_evaluate``), with the values the new space
  holds; a value it cannot hold (a parameter it lacks, a value outside its range or choices) is
  sampled instead, and the event says which were;
* **observations**: the sources' finished trials whose whole configuration the new space holds,
  with the same objective metrics, are added to the new experiment's Optuna study before it
  starts, so a model-based sampler (TPE, GP) starts from that history instead of from random
  trials. They are marked with the trial attribute ``automl.warm_start`` (``SOURCE#NUMBER``); they
  are not trials of the new experiment: its store, budget, best trial and ensemble never see them.

Everything is read and checked before Ray starts: an unknown source is a configuration error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from automl.errors import ConfigError, StoreError, did_you_mean
from automl.results import objectives_of, ranked_trials, search_trials, tie_breakers_of
from automl.store import Store, TrialRecord, TrialStatus, safe_url

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

    from automl.config.models import WarmStartConfig
    from automl.space import SearchSpace

#: trial attribute that marks a study trial carried over from another experiment
WARM_START_ATTR = "automl.warm_start"
_OBSERVED = (TrialStatus.COMPLETED, TrialStatus.EARLY_STOPPED)


@dataclass(frozen=True)
class Carried:
    """What one source experiment gave the new search."""

    source: str
    queued: int  # configurations that run first
    observations: int  # finished trials the sampler starts from
    #: parameter names of queued configurations the new space could not hold (sampled instead)
    not_carried: tuple[str, ...] = ()
    #: why no observations came from this source, when none did
    no_observations: str | None = None


@dataclass
class WarmStart:
    """A planned warm start: configurations to run first, observations for the study."""

    queued: list[dict[str, Any]] = field(default_factory=list)
    observations: list["FrozenTrial"] = field(default_factory=list)
    carried: list[Carried] = field(default_factory=list)


def plan_warm_start(store: Store, name: str, settings: "WarmStartConfig",
                    space: "SearchSpace") -> WarmStart:
    """Read the sources of ``settings`` from ``store`` and map their trials onto ``space``."""
    known = [e.name for e in store.experiments()]
    plan = WarmStart()
    for index, source in enumerate(settings.from_):
        where = f"search.warm_start.from[{index}]"
        if source == name:
            raise ConfigError(f"'{source}' is this experiment; a warm start reads earlier ones",
                              path=where)
        if source in settings.from_[:index]:
            raise ConfigError(f"'{source}' is listed twice", path=where)
        try:
            experiment = store.experiment(source)
        except StoreError:
            listed = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"no experiment '{source}' in {safe_url(store.url)}"
                              f"{did_you_mean(source, known)}; experiments there: {listed}",
                              path=where) from None
        plan.carried.append(_carry(source, search_trials(experiment.trials),
                                   objectives_of(experiment), tie_breakers_of(experiment),
                                   settings, space, plan))
    return plan


def _carry(source: str, trials: Sequence[TrialRecord], objectives: Sequence[Any],
           tie_breakers: Sequence[Any], settings: "WarmStartConfig", space: "SearchSpace",
           plan: WarmStart) -> Carried:
    not_carried: set[str] = set()
    queued = 0
    for trial in ranked_trials(trials, objectives, tie_breakers)[:settings.top_k]:
        replay = replay_params(space, trial.params)
        not_carried |= replay.not_held
        point = {k: v for k, v in replay.params.items() if k in replay.searched}
        if point and point not in plan.queued:
            plan.queued.append(point)
            queued += 1
    observations = 0
    reason = None
    if settings.observations:
        keys = [o.key for o in space.objectives]
        theirs = {o.key for o in objectives}
        missing = [k for k in keys if k not in theirs]
        if missing:
            reason = f"it does not optimise {', '.join(missing)}"
        else:
            for trial in trials:
                observation = _observation(space, trial, keys, source)
                if observation is not None:
                    plan.observations.append(observation)
                    observations += 1
            if not observations:
                reason = "none of its finished trials has a configuration this space holds"
    else:
        reason = "observations: false"
    return Carried(source, queued, observations, tuple(sorted(not_carried)), reason)


def _observation(space: "SearchSpace", trial: TrialRecord, keys: Sequence[str], source: str
                 ) -> "FrozenTrial | None":
    import optuna

    if trial.status not in _OBSERVED or any(k not in trial.metrics for k in keys):
        return None
    replay = replay_params(space, trial.params)
    if not replay.exact(trial.params):
        return None
    return optuna.trial.create_trial(
        params={k: v for k, v in replay.params.items() if k in replay.searched},
        distributions=replay.distributions,
        values=[float(trial.metrics[k]) for k in keys],
        user_attrs={WARM_START_ATTR: f"{source}#{trial.number}"})


@dataclass
class Replay:
    """A recorded configuration walked through a search space's define-by-run function."""

    params: dict[str, Any] = field(default_factory=dict)  # every value the walk took
    searched: set[str] = field(default_factory=set)  # names the space samples
    distributions: dict[str, "BaseDistribution"] = field(default_factory=dict)
    not_held: set[str] = field(default_factory=set)  # recorded values the space cannot hold
    missing: set[str] = field(default_factory=set)  # names the space asked for, not recorded

    def exact(self, recorded: dict[str, Any]) -> bool:
        """Whether the space holds the recorded configuration as it ran: every value it asked
        for was recorded and allowed, no recorded value went unused (an augmentation the space
        lacks, say, except one that was disabled) and every constant agrees."""
        if self.not_held or self.missing:
            return False
        for name, value in recorded.items():
            if name not in self.params:
                if not (name.endswith(".enabled") and value is False):
                    return False
            elif self.params[name] != value:
                return False
        return True


def replay_params(space: "SearchSpace", recorded: dict[str, Any]) -> Replay:
    """Walk ``space.define`` answering each suggestion from ``recorded`` where the space's
    distribution holds the value; elsewhere it takes the distribution's first value, notes the
    name, and walks on (so a configuration is carried as far as the space allows)."""
    replay = Replay()
    constants = space.define(_ReplayTrial(recorded, replay))  # type: ignore[arg-type]
    replay.params.update(constants)
    return replay


class _ReplayTrial:
    """The part of :class:`optuna.Trial` a search space's ``define`` calls."""

    def __init__(self, recorded: dict[str, Any], replay: Replay) -> None:
        self._recorded = recorded
        self._replay = replay

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False,
                      step: float | None = None) -> float:
        from optuna.distributions import FloatDistribution

        return self._take(name, FloatDistribution(low, high, log=log, step=step), low)

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False,
                    step: int = 1) -> int:
        from optuna.distributions import IntDistribution

        return self._take(name, IntDistribution(low, high, log=log, step=step), low)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        from optuna.distributions import CategoricalDistribution

        return self._take(name, CategoricalDistribution(list(choices)), choices[0])

    def _take(self, name: str, distribution: "BaseDistribution", fallback: Any) -> Any:
        replay = self._replay
        replay.searched.add(name)
        replay.distributions[name] = distribution
        if name not in self._recorded:
            replay.missing.add(name)
            value = fallback
        else:
            value = self._recorded[name]
            if not _holds(distribution, value):
                replay.not_held.add(name)
                value = fallback
        replay.params[name] = value
        return value


def _holds(distribution: "BaseDistribution", value: Any) -> bool:
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return any(type(value) is type(c) and value == c for c in distribution.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))  # noqa: SLF001
    except (TypeError, ValueError):
        return False


def seed_study(db_url: str, name: str, space: "SearchSpace", plan: WarmStart) -> int:
    """Add the planned observations to the experiment's (new) Optuna study; returns how many.

    Called once, before the search of a new experiment; the study's mirror
    (:class:`automl.study.MirroredStorage`) then loads them with the study."""
    import optuna

    from automl.study import optuna_storage, study_name

    if not plan.observations:
        return 0
    study = optuna.create_study(
        study_name=study_name(name), storage=optuna_storage(db_url), load_if_exists=True,
        directions=["maximize" if o.mode == "max" else "minimize" for o in space.objectives])
    study.add_trials(plan.observations)
    return len(plan.observations)
