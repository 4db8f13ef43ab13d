"""Live progress as events (instead of Ray Tune's table): trials starting, their epochs, each
finished trial."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from ray.tune import Callback

from automl.constraints import ConstraintSpec, is_feasible, violated
from automl.events import (
    Listener, TrialFinished, TrialReported, TrialStarted, TrialsRunning, ignore,
)
from automl.space import ObjectiveSpec
from automl.search.recorder import StoreRecorder
from automl.store import TrialRecord
from automl.trial.trainable import FINAL_KEY


class ProgressEvents(Callback):
    """Sends :class:`TrialStarted` for each trial that starts (and :class:`TrialsRunning` while
    no trial has finished yet), :class:`TrialReported` for each epoch a trial reports, and one
    :class:`TrialFinished` per finished trial (status, objective values, best so far, counts).

    ``earlier`` are the trials a resumed experiment finished before: the best so far starts from
    them.
    """

    def __init__(self, recorder: StoreRecorder, objectives: list[ObjectiveSpec], total: int,
                 listener: Listener | None = None, earlier: Iterable[TrialRecord] = (),
                 constraints: Sequence[ConstraintSpec] = ()) -> None:
        self.recorder = recorder
        self.objectives = objectives
        self.constraints = list(constraints)
        self.total = total
        self.listener = listener or ignore
        self.started = time.monotonic()
        self.best: tuple[float, int] | None = None
        self.counts = {"completed": 0, "early_stopped": 0, "failed": 0}
        for record in earlier:
            self._update_best(record)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(listener=None, recorder=None)
        return state

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Tune calls this before it marks the trial RUNNING.
        running = sum(1 for t in trials if t.status == "RUNNING" or t is trial)
        elapsed = time.monotonic() - self.started
        done = sum(self.counts.values())
        if not done:
            self.listener(TrialsRunning(running, self.total, elapsed))
        number = self.recorder.number_of(trial)
        if number is not None:
            self.listener(TrialStarted(number, str(trial.config.get("architecture", "")),
                                       running, done, self.total, elapsed))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        number = self.recorder.number_of(trial)
        if FINAL_KEY in result or number is None:
            return
        values = {o.key: float(result[o.key]) for o in self.objectives
                  if isinstance(result.get(o.key), (int, float))}
        epoch = result.get("epoch")
        self.listener(TrialReported(number, epoch if isinstance(epoch, int) else None, values,
                                    time.monotonic() - self.started))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finished(trials, trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finished(trials, trial)

    def _update_best(self, record: TrialRecord) -> None:
        first = self.objectives[0]
        value = record.metrics.get(first.key)
        if record.status == "completed" and value is not None and is_feasible(
                record.metrics, self.constraints):
            better = (self.best is None or (value > self.best[0] if first.mode == "max"
                                            else value < self.best[0]))
            if better:
                self.best = (value, record.number)

    def _finished(self, trials: list, trial: Any) -> None:
        record = next((r for r in reversed(self.recorder.finished)
                       if r.tune_trial_id == trial.trial_id), None)
        if record is None:
            return
        self.counts[record.status] = self.counts.get(record.status, 0) + 1
        self._update_best(record)
        error = None
        if record.status == "failed" and record.error:
            error = record.error.strip().splitlines()[-1][:100]
        self.listener(TrialFinished(
            number=record.number, status=record.status,
            architecture=str(record.params.get("architecture", "")),
            values={o.key: record.metrics[o.key] for o in self.objectives
                    if o.key in record.metrics},
            error=error, best=self.best, done=sum(self.counts.values()), total=self.total,
            running=sum(1 for t in trials if t.status == "RUNNING"),
            failed=self.counts["failed"], elapsed_s=time.monotonic() - self.started,
            violated=tuple(violated(record.metrics, self.constraints)
                           if record.status == "completed" else ())))
