"""Concise live progress on the terminal, instead of Ray Tune's table."""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback
from rich.console import Console

from automl.space import ObjectiveSpec
from automl.search.recorder import StoreRecorder


class ProgressPrinter(Callback):
    """One line per finished trial: status, objective values, best so far, counts."""

    def __init__(self, recorder: StoreRecorder, objectives: list[ObjectiveSpec], total: int,
                 console: Console | None = None) -> None:
        self.recorder = recorder
        self.objectives = objectives
        self.total = total
        self.console = console or Console(highlight=False)
        self.started = time.monotonic()
        self.best: tuple[float, int] | None = None
        self.counts = {"completed": 0, "early_stopped": 0, "failed": 0}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(console=None, recorder=None)
        return state

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial)

    def _line(self, trials: list, trial: Any) -> None:
        record = next((r for r in reversed(self.recorder.finished)
                       if r.tune_trial_id == trial.trial_id), None)
        if record is None:
            return
        self.counts[record.status] = self.counts.get(record.status, 0) + 1
        first = self.objectives[0]
        value = record.metrics.get(first.key)
        if record.status == "completed" and value is not None:
            better = (self.best is None or (value > self.best[0] if first.mode == "max"
                                            else value < self.best[0]))
            if better:
                self.best = (value, record.number)
        running = sum(1 for t in trials if t.status == "RUNNING")
        style = {"completed": "green", "early_stopped": "yellow", "failed": "red"}[record.status]
        shown = " ".join(f"{o.key}={record.metrics[o.key]:.4g}" for o in self.objectives
                         if o.key in record.metrics)
        if record.status == "failed":
            shown = (record.error or "").strip().splitlines()[-1][:100] if record.error else ""
        best = f"best {self.best[0]:.4g} (#{self.best[1]})" if self.best else "best -"
        done = sum(self.counts.values())
        elapsed = time.monotonic() - self.started
        self.console.print(
            f"[dim]{elapsed:6.1f}s[/dim] #{record.number:<3} [{style}]{record.status:<13}"
            f"[/{style}] {record.params.get('architecture', ''):<8} {shown:<24} {best:<18} "
            f"[dim]{done}/{self.total} done, {running} running, "
            f"{self.counts['failed']} failed[/dim]", soft_wrap=True)
