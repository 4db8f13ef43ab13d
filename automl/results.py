"""Reading results: the best trial and the Pareto front over the experiment's objectives.

Both use validation values only; test values are reported, never used to choose. Both consider
feasible trials only: those that meet the experiment's constraints (:mod:`automl.constraints`).
Both are chosen among the search's trials; the distillation stage's students
(:mod:`automl.distill`) have their own best, :func:`best_student_of`.
"""

from __future__ import annotations

from collections.abc import Sequence

from automl.constraints import ConstraintSpec, is_feasible
from automl.space import ObjectiveSpec
from automl.store import ExperimentRecord, TrialRecord


#: the kinds of trial rows: the search's, and the distillation stage's students
SEARCH, DISTILLED = "search", "distilled"


def search_trials(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The trials the search ran (not the distillation stage's students)."""
    return [t for t in trials if t.kind == SEARCH]


def students_of(experiment: ExperimentRecord) -> list[TrialRecord]:
    """The distillation stage's students, in the order they started."""
    return [t for t in experiment.trials if t.kind == DISTILLED]


def student_constraints_of(experiment: ExperimentRecord) -> list[ConstraintSpec]:
    """What a student must meet: the experiment's constraints and ``distillation.constraints``
    (recorded with the experiment, marked ``distillation``)."""
    return [ConstraintSpec.from_row(o) for o in experiment.objectives if o.get("constraint")]


def best_student_of(experiment: ExperimentRecord) -> TrialRecord | None:
    """The completed student that meets :func:`student_constraints_of` with the best
    validation value of the first objective (ties as :func:`best_trial` breaks them)."""
    return best_trial(students_of(experiment), objectives_of(experiment),
                      tie_breakers_of(experiment), student_constraints_of(experiment))


def objectives_of(experiment: ExperimentRecord) -> list[ObjectiveSpec]:
    """The experiment's objectives, first objective first (tie-breakers excluded)."""
    return [ObjectiveSpec(o["metric"], o["mode"], o.get("scope", "val"))
            for o in experiment.objectives
            if not o.get("tie_breaker") and not o.get("constraint")]


def tie_breakers_of(experiment: ExperimentRecord) -> list[ObjectiveSpec]:
    """The tie-breakers recorded with the experiment (what its metrics declared at the start)."""
    return [ObjectiveSpec(o["metric"], o["mode"]) for o in experiment.objectives
            if o.get("tie_breaker")]


def constraints_of(experiment: ExperimentRecord) -> list[ConstraintSpec]:
    """The experiment's hard constraints (``constraints:``), as recorded at its start."""
    return [ConstraintSpec.from_row(o) for o in experiment.objectives
            if o.get("constraint") and not o.get("distillation")]


def objectives_row(objectives: Sequence[ObjectiveSpec], tie_breakers: Sequence[ObjectiveSpec],
                   constraints: Sequence[ConstraintSpec] = (),
                   student_constraints: Sequence[ConstraintSpec] = ()) -> list[dict[str, object]]:
    """The experiment row's ``objectives``: the objectives, then the tie-breakers and the
    constraints, each marked; then the constraints only the distillation stage's students must
    also meet (``distillation.constraints``), marked ``distillation``."""
    return ([{"metric": o.metric, "mode": o.mode,
              **({"scope": o.scope} if o.scope != "val" else {})} for o in objectives]
            + [{"metric": o.metric, "mode": o.mode, "tie_breaker": True} for o in tie_breakers
               if o.metric not in {x.metric for x in objectives}]
            + [c.as_row() for c in constraints]
            + [{**c.as_row(), "distillation": True} for c in student_constraints])


def best_of(experiment: ExperimentRecord) -> TrialRecord | None:
    """:func:`best_trial` of a stored experiment, with its recorded tie-breakers and
    constraints."""
    return best_trial(search_trials(experiment.trials), objectives_of(experiment),
                      tie_breakers_of(experiment), constraints_of(experiment))


def pareto_of(experiment: ExperimentRecord) -> list[TrialRecord]:
    """:func:`pareto_front` of a stored experiment, over its feasible trials."""
    return pareto_front(search_trials(experiment.trials), objectives_of(experiment),
                        constraints_of(experiment))


def best_trial(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
               tie_breakers: Sequence[ObjectiveSpec] = (),
               constraints: Sequence[ConstraintSpec] = ()) -> TrialRecord | None:
    """The completed, feasible trial with the best validation value of the first objective; ties
    go to the better value of the next objectives, then of the tie-breakers (the metric that
    declares ``tie_breaker = True``, when recorded), then to the earlier trial."""
    ranked = ranked_trials(trials, objectives, tie_breakers, constraints)
    return ranked[0] if ranked else None


def ranked_trials(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
                  tie_breakers: Sequence[ObjectiveSpec] = (),
                  constraints: Sequence[ConstraintSpec] = ()) -> list[TrialRecord]:
    """The completed trials that have the first objective and meet the ``constraints``, best
    first, in :func:`best_trial`'s order."""
    first = objectives[0]
    done = [t for t in trials if t.status == "completed" and first.key in t.metrics
            and is_feasible(t.metrics, constraints)]
    ranking = [*objectives, *(o for o in tie_breakers if o not in objectives)]

    def key(t: TrialRecord) -> tuple[float, ...]:
        values = [(1 if o.mode == "max" else -1) * t.metrics.get(o.key, float("-inf")
                                                                 if o.mode == "max"
                                                                 else float("inf"))
                  for o in ranking]
        return (*values, -t.number)

    return sorted(done, key=key, reverse=True)


def pareto_front(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
                 constraints: Sequence[ConstraintSpec] = ()) -> list[TrialRecord]:
    """Completed, feasible trials that no other completed, feasible trial beats on every
    objective."""
    keys = [(o.key, 1 if o.mode == "max" else -1) for o in objectives]
    done = [t for t in trials if t.status == "completed" and all(k in t.metrics for k, _ in keys)
            and is_feasible(t.metrics, constraints)]
    points = {t.number: [sign * t.metrics[k] for k, sign in keys] for t in done}

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return [t for t in done
            if not any(dominates(points[o.number], points[t.number]) for o in done
                       if o.number != t.number)]
