"""Reading results: the best trial and the Pareto front over the experiment's objectives.

Both use validation values only; test values are reported, never used to choose.
"""

from __future__ import annotations

from collections.abc import Sequence

from automl.space import ObjectiveSpec
from automl.store import ExperimentRecord, TrialRecord


def objectives_of(experiment: ExperimentRecord) -> list[ObjectiveSpec]:
    """The experiment's objectives, first objective first (tie-breakers excluded)."""
    return [ObjectiveSpec(o["metric"], o["mode"], o.get("scope", "val"))
            for o in experiment.objectives if not o.get("tie_breaker")]


def tie_breakers_of(experiment: ExperimentRecord) -> list[ObjectiveSpec]:
    """The tie-breakers recorded with the experiment (what its metrics declared at the start)."""
    return [ObjectiveSpec(o["metric"], o["mode"]) for o in experiment.objectives
            if o.get("tie_breaker")]


def objectives_row(objectives: Sequence[ObjectiveSpec], tie_breakers: Sequence[ObjectiveSpec]
                   ) -> list[dict[str, object]]:
    """The experiment row's ``objectives``: the objectives, then the tie-breakers, marked."""
    return ([{"metric": o.metric, "mode": o.mode,
              **({"scope": o.scope} if o.scope != "val" else {})} for o in objectives]
            + [{"metric": o.metric, "mode": o.mode, "tie_breaker": True} for o in tie_breakers
               if o.metric not in {x.metric for x in objectives}])


def best_of(experiment: ExperimentRecord) -> TrialRecord | None:
    """:func:`best_trial` of a stored experiment, with its recorded tie-breakers."""
    return best_trial(experiment.trials, objectives_of(experiment), tie_breakers_of(experiment))


def best_trial(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
               tie_breakers: Sequence[ObjectiveSpec] = ()) -> TrialRecord | None:
    """The completed trial with the best validation value of the first objective; ties go to the
    better value of the next objectives, then of the tie-breakers (the metric that declares
    ``tie_breaker = True``, when recorded), then to the earlier trial."""
    ranked = ranked_trials(trials, objectives, tie_breakers)
    return ranked[0] if ranked else None


def ranked_trials(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
                  tie_breakers: Sequence[ObjectiveSpec] = ()) -> list[TrialRecord]:
    """The completed trials that have the first objective, best first, in
    :func:`best_trial`'s order."""
    first = objectives[0]
    done = [t for t in trials if t.status == "completed" and first.key in t.metrics]
    ranking = [*objectives, *(o for o in tie_breakers if o not in objectives)]

    def key(t: TrialRecord) -> tuple[float, ...]:
        values = [(1 if o.mode == "max" else -1) * t.metrics.get(o.key, float("-inf")
                                                                 if o.mode == "max"
                                                                 else float("inf"))
                  for o in ranking]
        return (*values, -t.number)

    return sorted(done, key=key, reverse=True)


def pareto_front(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec]
                 ) -> list[TrialRecord]:
    """Completed trials that no other completed trial beats on every objective."""
    keys = [(o.key, 1 if o.mode == "max" else -1) for o in objectives]
    done = [t for t in trials if t.status == "completed" and all(k in t.metrics for k, _ in keys)]
    points = {t.number: [sign * t.metrics[k] for k, sign in keys] for t in done}

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return [t for t in done
            if not any(dominates(points[o.number], points[t.number]) for o in done
                       if o.number != t.number)]
