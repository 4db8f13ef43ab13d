"""What a report shows, read from one stored experiment: no plotting, no HTML.

Everything comes from the store's :class:`~automl.store.ExperimentRecord`; metric names and
directions come from the experiment's objectives, model-only values (``model/<name>``) from what
the trials recorded, and the pruning amount from the pruner's sampled parameters
(``pruning.<pruner>.<param>``). Nothing here names a built-in plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from automl.constraints import ConstraintSpec
from automl.results import (
    DISTILLED, best_of, best_student_of, constraints_of, objectives_of, pareto_of,
    student_constraints_of,
)
from automl.space import NO_PRUNING, ObjectiveSpec
from automl.store import ExperimentRecord, TrialRecord, TrialStatus

#: prefix of a model-only value (one value a trial: latency, size, ...)
MODEL = "model/"
#: prefix of the validation scores
VAL = "val/"
#: prefix of the test scores (only the final evaluation has them)
TEST = "test/"


@dataclass(frozen=True)
class ErrorParts:
    """The exception type and message from the last line of a recorded traceback."""

    kind: str | None
    message: str | None


def error_parts(error: str | None) -> ErrorParts:
    """``ErrorParts("ValueError", "bad")`` from a traceback ending in ``ValueError: bad``."""
    if not error or not error.strip():
        return ErrorParts(None, None)
    last = error.strip().splitlines()[-1]
    kind, sep, message = last.partition(": ")
    if sep and kind and " " not in kind:
        return ErrorParts(kind.rsplit(".", 1)[-1], message)
    return ErrorParts(None, last)


@dataclass
class TrialView:
    """One trial as the report shows it."""

    record: TrialRecord
    architecture: str | None
    augmentations: dict[str, bool]  # augmentation name -> enabled
    pruner: str | None  # None: the space has no pruning or the trial chose none
    pruning_amount: float | None  # the pruner's first numeric parameter, 0 for no pruning
    epochs: int  # epochs reported so far

    @property
    def number(self) -> int:
        return self.record.number

    @property
    def status(self) -> str:
        return str(self.record.status)

    @property
    def metrics(self) -> dict[str, float]:
        """Validation and model values (never a test value: those are the final evaluation's)."""
        return {k: v for k, v in self.record.metrics.items() if not k.startswith(TEST)}


@dataclass
class ReportData:
    """A stored experiment, arranged for the report's sections."""

    experiment: ExperimentRecord
    objectives: list[ObjectiveSpec]
    trials: list[TrialView]
    best: TrialRecord | None
    pareto: list[int]  # trial numbers on the (feasible) front with several objectives, else empty
    architectures: list[str]
    augmentations: list[str]
    pruning_param: str | None  # e.g. ``ratio``: what the pruning amount is, for labels
    model_keys: list[str]  # ``model/<name>`` values recorded by some trial
    planned_epochs: int | None
    generated_at: datetime = field(default_factory=datetime.now)
    #: the experiment's hard constraints; a trial outside them is never chosen
    constraints: list[ConstraintSpec] = field(default_factory=list)
    #: the distillation stage's best student (None without students)
    best_student: TrialRecord | None = None
    #: what a student must meet: the experiment's constraints and ``distillation.constraints``
    student_constraints: list[ConstraintSpec] = field(default_factory=list)

    @property
    def distilled(self) -> bool:
        """Whether the experiment has students (the distillation stage ran)."""
        return any(t.record.kind == DISTILLED for t in self.trials)

    @property
    def name(self) -> str:
        return self.experiment.name

    def by_status(self, *statuses: str) -> list[TrialView]:
        return [t for t in self.trials if t.status in statuses]

    def completed(self) -> list[TrialView]:
        return self.by_status(TrialStatus.COMPLETED)

    def counts(self) -> dict[str, int]:
        """Trials per status, every status listed (zero where none)."""
        counts = {str(s): 0 for s in TrialStatus}
        for trial in self.trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        return counts

    def direction(self, key: str) -> str:
        """``max`` or ``min`` for a metric key: the objective's mode where it is one; otherwise a
        model-only value is taken as a cost (``min``) and a score as ``max``."""
        for objective in self.objectives:
            if objective.key == key:
                return objective.mode
        return "min" if key.startswith(MODEL) else "max"


def gather(experiment: ExperimentRecord) -> ReportData:
    """Arrange ``experiment`` for the report (a running experiment as it stands)."""
    objectives = objectives_of(experiment)
    views = [_view(t) for t in sorted(experiment.trials, key=lambda t: t.number)]
    front = pareto_of(experiment) if len(objectives) > 1 else []
    pruning_params = [_pruning_param(t.params) for t in experiment.trials]
    named = sorted({p for p in pruning_params if p})
    model_keys = sorted({k for t in experiment.trials for k in t.metrics if k.startswith(MODEL)},
                        key=lambda k: (k not in {o.key for o in objectives}, k))
    epochs = (experiment.config.get("training") or {}).get("epochs")
    return ReportData(
        experiment=experiment, objectives=objectives, trials=views, best=best_of(experiment),
        pareto=[t.number for t in front],
        architectures=_ordered(v.architecture for v in views),
        augmentations=_ordered(name for v in views for name in v.augmentations),
        pruning_param=named[0] if len(named) == 1 else ("amount" if named else None),
        model_keys=model_keys, planned_epochs=epochs if isinstance(epochs, int) else None,
        constraints=constraints_of(experiment), best_student=best_student_of(experiment),
        student_constraints=student_constraints_of(experiment))


def _ordered(values: Any) -> list[str]:
    return [v for v in dict.fromkeys(values) if v is not None]


def _view(trial: TrialRecord) -> TrialView:
    params = trial.params or {}
    augmentations = {}
    for key, value in params.items():
        parts = key.split(".")
        if parts[0] == "augmentation" and len(parts) == 3 and parts[2] == "enabled":
            augmentations[parts[1]] = bool(value)
    pruner = params.get("pruning")
    amount: float | None = None
    if pruner == NO_PRUNING:
        pruner, amount = None, 0.0
    elif pruner:
        param = _pruning_param(params)
        value = params.get(f"pruning.{pruner}.{param}") if param else None
        amount = float(value) if isinstance(value, (int, float)) else None
    architecture = params.get("architecture")
    return TrialView(trial, str(architecture) if architecture is not None else None,
                     augmentations, pruner, amount,
                     max((h.get("epoch") or 0 for h in trial.history), default=len(trial.history))
                     if trial.history else 0)


def _pruning_param(params: dict[str, Any]) -> str | None:
    """The chosen pruner's first numeric parameter (its declared amount, e.g. a ratio)."""
    pruner = params.get("pruning")
    if not pruner or pruner == NO_PRUNING:
        return None
    prefix = f"pruning.{pruner}."
    return next((k[len(prefix):] for k, v in params.items()
                 if k.startswith(prefix) and isinstance(v, (int, float))
                 and not isinstance(v, bool)), None)


def best_so_far(values: Sequence[float], mode: str) -> list[float]:
    """The running best of ``values`` (``max`` or ``min``)."""
    out: list[float] = []
    for value in values:
        if not out:
            out.append(value)
        else:
            out.append(max(out[-1], value) if mode == "max" else min(out[-1], value))
    return out


def front_2d(points: Sequence[tuple[int, float, float]], x_mode: str, y_mode: str) -> list[int]:
    """The numbers of the points ``(number, x, y)`` no other point beats on both axes (a sweep
    over x, best first: O(n log n) for the thousand trials of a large search)."""
    sx = 1 if x_mode == "max" else -1
    sy = 1 if y_mode == "max" else -1
    scored = sorted(((sx * x, sy * y, n) for n, x, y in points), reverse=True)
    front: list[int] = []
    best_y = float("-inf")  # the best y among points with a strictly better x
    i = 0
    while i < len(scored):
        j = i
        while j < len(scored) and scored[j][0] == scored[i][0]:
            j += 1
        group_best = scored[i][1]  # sorted: the group's first has its best y
        front += [n for _, y, n in scored[i:j] if y > best_y and y >= group_best]
        best_y = max(best_y, group_best)
        i = j
    return sorted(front)


def metric_label(key: str) -> str:
    """``val/accuracy`` -> ``accuracy (validation)``; ``model/latency_ms`` -> ``latency_ms``."""
    prefix, sep, name = key.partition("/")
    if not sep:
        return key
    if prefix == "val":
        return f"{name} (validation)"
    if prefix == "test":
        return f"{name} (test)"
    if prefix == "model":
        return name
    return key
