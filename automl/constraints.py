"""Hard constraints on what a trial records: ``constraints: {latency_ms: {max: 1.0}, ...}``.

A constraint bounds one recorded value: a registered metric (a model-only one such as
``latency_ms`` or ``params`` is read as ``model/<name>``, a prediction metric as ``val/<name>``)
or a fact every finished trial records about its saved model (``saved_bytes``,
``params_before_pruning``). A trial is feasible when it has every constrained value and each lies
within its bounds; a trial missing one (early-stopped before the value existed) is not feasible.

Feasibility is decided from the recorded metrics whenever trials are read, so the same rule holds
for the search's best trial, the Pareto front, the ensemble's members, ``automl show`` and the
report: an infeasible trial is never chosen. The sampler learns it too: samplers that support
constraints (TPE, NSGA-II, GP) get :class:`ConstraintValues`, Optuna's ``constraints_func``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: facts a finished trial records about its saved model (``automl.trial.trainable``), as
#: ``model/<fact>``; they add up over an ensemble's members
MODEL_FACTS = ("saved_bytes", "params_before_pruning")
#: trial attribute of the Optuna study that holds a trial's constraint values
CONSTRAINTS_ATTR = "automl.constraints"


@dataclass(frozen=True)
class ConstraintSpec:
    """A bound on one recorded value."""

    metric: str  # as the experiment names it
    scope: str  # "model" or "val"
    min: float | None = None
    max: float | None = None
    #: the value of an ensemble is its members' sum (size, latency, saved bytes)
    additive: bool = False

    @property
    def key(self) -> str:
        return f"{self.scope}/{self.metric}"

    def violation(self, metrics: Mapping[str, Any]) -> float | None:
        """How far the recorded value lies outside the bounds (<= 0: within); None if absent."""
        value = metrics.get(self.key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
            return None
        return max(float(value) - self.max if self.max is not None else -float("inf"),
                   self.min - float(value) if self.min is not None else -float("inf"))

    def describe(self) -> str:
        bounds = [f">= {self.min:g}" if self.min is not None else "",
                  f"<= {self.max:g}" if self.max is not None else ""]
        return f"{self.metric} {' and '.join(b for b in bounds if b)}"

    def as_row(self) -> dict[str, Any]:
        """The entry of the experiment row's ``objectives`` list that records it."""
        return {"metric": self.metric, "scope": self.scope, "constraint": True,
                "min": self.min, "max": self.max, "additive": self.additive}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "ConstraintSpec":
        return cls(row["metric"], row.get("scope", "val"), row.get("min"), row.get("max"),
                   bool(row.get("additive")))


def is_feasible(metrics: Mapping[str, Any], constraints: Sequence[ConstraintSpec]) -> bool:
    """Whether the recorded ``metrics`` meet every constraint (a missing value does not)."""
    for constraint in constraints:
        violation = constraint.violation(metrics)
        if violation is None or violation > 0:
            return False
    return True


def violated(metrics: Mapping[str, Any], constraints: Sequence[ConstraintSpec]) -> list[str]:
    """What a trial breaks, for people: ``latency_ms 1.31 (<= 1)``, ``saved_bytes missing``."""
    out = []
    for constraint in constraints:
        violation = constraint.violation(metrics)
        if violation is None:
            out.append(f"{constraint.metric} not recorded")
        elif violation > 0:
            out.append(f"{constraint.metric} {metrics[constraint.key]:g} "
                       f"(needs {constraint.describe().split(' ', 1)[1]})")
    return out


def verdict(metrics: Mapping[str, Any], constraints: Sequence[ConstraintSpec]) -> str:
    """``yes``, or ``no:`` and what the values break (tables of completed trials)."""
    broken = violated(metrics, constraints)
    return "no: " + "; ".join(broken) if broken else "yes"


def within_budget(members: Iterable[Mapping[str, Any]], constraints: Sequence[ConstraintSpec]
                  ) -> bool:
    """Whether the summed values of an ensemble's members meet the additive constraints."""
    members = list(members)
    for constraint in constraints:
        if not constraint.additive or constraint.max is None:
            continue
        values = [m.get(constraint.key) for m in members]
        if any(v is None for v in values) or sum(values) > constraint.max:  # type: ignore[arg-type]
            return False
    return True


class ConstraintValues:
    """Optuna's ``constraints_func``: a trial's values (<= 0 feasible) as the searcher stored
    them when the trial ended (:data:`CONSTRAINTS_ATTR`). A trial without them (carried over
    by a warm start, or ended before any value was reported) counts as feasible to the sampler;
    the choice of the best trial never counts it so (see :func:`is_feasible`). A class, not a
    closure: Ray Tune pickles the searcher and its sampler."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, trial: Any) -> list[float]:
        values = trial.user_attrs.get(CONSTRAINTS_ATTR)
        return list(values) if values else [0.0] * self.count


def sampler_values(result: Mapping[str, Any], constraints: Sequence[ConstraintSpec]
                   ) -> list[float]:
    """A trial's values for :class:`ConstraintValues` from its last result (0.0 for a value
    it never reported: unknown is not held against a configuration)."""
    out = []
    for constraint in constraints:
        violation = constraint.violation(result)
        out.append(0.0 if violation is None else float(violation))
    return out
