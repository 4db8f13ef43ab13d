"""What a run reports while it runs: events handed to a listener. The library prints nothing.

``automl.run(path, listener=fn)`` calls ``fn(event)`` on the driver, in the order things happen,
with one of the frozen dataclasses below. Without a listener nothing is reported and nothing is
printed; ``automl run`` passes a listener that renders each event on the terminal
(:mod:`automl.cli.live`). A listener should return quickly: trial events are delivered from Ray
Tune's loop. Events only ever gain fields (with defaults), so a listener written today keeps
working; a listener should ignore event types it does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from automl.search.warm_start import Carried
    from automl.store import EnsembleRecord, EvaluationRecord


@dataclass(frozen=True)
class Event:
    """Base of every event."""


Listener = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The listener used when the caller gives none."""


@dataclass(frozen=True)
class DataLoaded(Event):
    """The dataset was loaded and split (before Ray starts)."""

    dataset: str
    sizes: dict[str, int]  # rows per split: train, val, test
    elapsed_s: float


@dataclass(frozen=True)
class ResumeStartsAnew(Event):
    """``resume=True`` found no record of the experiment (a crash before its row was written):
    the run starts it from the beginning."""

    name: str
    db_url: str  # the password masked


@dataclass(frozen=True)
class RunResumed(Event):
    """``resume=True`` continues a recorded experiment."""

    name: str
    finished: int  # trials finished before, kept
    interrupted: int  # trials cut short, run again
    remaining: int  # trials this run will start


@dataclass(frozen=True)
class RayStarting(Event):
    """Embedded Ray is starting (``address`` None) or a cluster is being reached."""

    address: str | None


@dataclass(frozen=True)
class RunStarted(Event):
    """Ray is up and the experiment is recorded; the search is about to start."""

    name: str
    num_trials: int
    architectures: int
    sampler: str
    early_stopping: str
    db_url: str  # the password masked
    time_budget_s: float | None = None  # the search stops starting trials after this long


@dataclass(frozen=True)
class WarmStarted(Event):
    """A new search was seeded from earlier experiments (``search.warm_start``), before its
    first trial: one :class:`automl.search.warm_start.Carried` a source, saying what it gave."""

    carried: list[Carried]


@dataclass(frozen=True)
class RunWarning(Event):
    """Something the user should know that does not stop the run."""

    message: str


@dataclass(frozen=True)
class BudgetSpent(Event):
    """A resumed run found no trial left to run (the search is skipped)."""

    finished: int


@dataclass(frozen=True)
class TrialsRunning(Event):
    """A trial started before any trial of this run finished (later starts are reported in
    :class:`TrialFinished`'s counts)."""

    running: int
    total: int  # trials this run will start
    elapsed_s: float  # since the search started


@dataclass(frozen=True)
class TrialStarted(Event):
    """A trial started (every trial; :class:`TrialsRunning` is sent too until one finished)."""

    number: int
    architecture: str
    running: int  # trials running now, this one included
    done: int  # trials of this run finished so far
    total: int  # trials this run will start
    elapsed_s: float


@dataclass(frozen=True)
class TrialReported(Event):
    """A running trial reported an epoch."""

    number: int
    epoch: int | None
    values: dict[str, float]  # the objectives' validation values of this epoch
    elapsed_s: float


@dataclass(frozen=True)
class TrialFinished(Event):
    """A trial finished (``completed``, ``early_stopped`` or ``failed``) and is recorded."""

    number: int
    status: str
    architecture: str
    values: dict[str, float]  # the objectives' validation values it reported
    error: str | None  # the last line of a failed trial's traceback
    best: tuple[float, int] | None  # best feasible completed first-objective value so far, trial
    done: int  # trials of this run finished so far
    total: int
    running: int
    failed: int
    elapsed_s: float
    #: the constraints a completed trial breaks (it is never chosen); empty when it meets them
    violated: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnsembleFinished(Event):
    """The ensemble stage stored a result."""

    record: "EnsembleRecord"
    candidates: int
    elapsed_s: float


@dataclass(frozen=True)
class EnsembleSkipped(Event):
    """The ensemble stage had too few usable candidates; nothing was stored."""

    reason: str


@dataclass(frozen=True)
class DistillationStarted(Event):
    """The distillation stage has the teacher's predictions on the training split and starts
    its student trials (:mod:`automl.distill`)."""

    teacher: str  # "best trial #3", "ensemble (id 1) of trials #3, #5"
    trials: int
    teacher_s: float  # seconds to rebuild the teacher and predict the training inputs


@dataclass(frozen=True)
class DistillationFinished(Event):
    """The student trials have finished; ``best`` is the best feasible student (or None)."""

    best: int | None
    value: float | None  # its validation value of the first objective
    key: str  # that objective's key
    completed: int
    elapsed_s: float


@dataclass(frozen=True)
class DistillationSkipped(Event):
    """The distillation stage ran no student: no teacher, or its trials already ran."""

    reason: str


@dataclass(frozen=True)
class EvaluationFinished(Event):
    """The final evaluation scored the best trial, the Pareto front members and the ensemble on
    the test split and stored the result (:mod:`automl.evaluate`)."""

    name: str
    record: "EvaluationRecord"
    elapsed_s: float


@dataclass(frozen=True)
class EvaluationSkipped(Event):
    """The final evaluation scored nothing: no completed trial, or the latest evaluation already
    scored the same trials and ensemble."""

    name: str
    reason: str


@dataclass(frozen=True)
class RunFinished(Event):
    """The run ended (``completed``, ``failed`` or ``interrupted``); sent before ``run``
    returns or raises."""

    name: str
    status: str
    elapsed_s: float
    counts: dict[str, int] = field(default_factory=dict)  # trials by status


@dataclass(frozen=True)
class PredictionStarted(Event):
    """``Predictor.predict_file`` checked its input and starts predicting."""

    input: str
    total: int | None  # inputs to predict (None: not known in advance)


@dataclass(frozen=True)
class PredictionProgress(Event):
    """A batch of inputs was predicted and written."""

    done: int
    total: int | None


@dataclass(frozen=True)
class PredictionFinished(Event):
    """Every input was predicted; the predictions file is in place."""

    rows: int
    output: str
    elapsed_s: float


__all__ = ["BudgetSpent", "DataLoaded", "EnsembleFinished", "EnsembleSkipped", "EvaluationFinished",
           "EvaluationSkipped", "Event", "Listener", "PredictionFinished", "PredictionProgress",
           "PredictionStarted", "RayStarting", "ResumeStartsAnew", "RunFinished", "RunResumed",
           "RunStarted", "RunWarning", "TrialFinished", "TrialReported", "TrialStarted",
           "TrialsRunning", "ignore"]
