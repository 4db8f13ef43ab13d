"""Reading results: the best trial and the Pareto front over the experiment's objectives.

Both use validation values only; test values are reported, never used to choose.
"""

from __future__ import annotations

from collections.abc import Sequence

from automl.space import ObjectiveSpec
from automl.store import ExperimentRecord, TrialRecord


def objectives_of(experiment: ExperimentRecord) -> list[ObjectiveSpec]:
    return [ObjectiveSpec(o["metric"], o["mode"]) for o in experiment.objectives]


#: Breaks ties between trials equal on every objective: validation accuracy on a few hundred
#: examples ties often, and the lower validation log loss is the better model of the tied ones.
TIE_BREAK = ObjectiveSpec("log_loss", "min")


def best_trial(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec]
               ) -> TrialRecord | None:
    """The completed trial with the best validation value of the first objective; ties go to the
    better value of the next objectives, then to the lower validation log loss (when recorded),
    then to the earlier trial."""
    first = objectives[0]
    done = [t for t in trials if t.status == "completed" and first.key in t.metrics]
    if not done:
        return None
    ranking = [*objectives, *([TIE_BREAK] if TIE_BREAK not in objectives else [])]

    def key(t: TrialRecord) -> tuple[float, ...]:
        values = [(1 if o.mode == "max" else -1) * t.metrics.get(o.key, float("-inf")
                                                                 if o.mode == "max"
                                                                 else float("inf"))
                  for o in ranking]
        return (*values, -t.number)

    return max(done, key=key)


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
