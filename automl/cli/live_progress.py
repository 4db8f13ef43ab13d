"""The live progress display of ``automl run`` on a terminal: a rich ``Live`` view of the search
(trials done, running and failed of the budget, elapsed and estimated time left, best so far,
the running trials' latest epoch, the last finished trials), built from :mod:`automl.events`.

Events other than the search's are printed as lines above it by :class:`EventPrinter`. Without
a terminal (or with ``--log-lines``) ``automl run`` uses :class:`EventPrinter` alone: one line
per finished trial, which stays readable in a CI log.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import singledispatchmethod

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from automl.cli.live import EventPrinter
from automl.cli.render import status_text
from automl.events import (
    BudgetSpent, Event, RunResumed, RunStarted, RunWarning, TrialFinished, TrialReported,
    TrialStarted, TrialsRunning,
)

#: finished trials the display keeps listed
RECENT = 5
#: events of the search itself: they update the display instead of printing a line
SEARCH_EVENTS = (TrialsRunning, TrialStarted, TrialReported, TrialFinished)


@dataclass
class RunningTrial:
    number: int
    architecture: str
    epoch: int | None = None
    values: dict[str, float] = field(default_factory=dict)


class RunProgress:
    """The state the display shows, kept up to date from events (no terminal involved)."""

    def __init__(self) -> None:
        self._now = time.monotonic
        self.name = ""
        self.total: int | None = None
        self.time_budget_s: float | None = None
        self.done = 0
        self.failed = 0
        self.running: dict[int, RunningTrial] = {}
        self.best: tuple[float, int] | None = None
        self.objective = ""
        self.recent: deque[TrialFinished] = deque(maxlen=RECENT)
        self._origin: float | None = None  # monotonic time the search started

    def elapsed_s(self) -> float:
        return 0.0 if self._origin is None else self._now() - self._origin

    def _anchor(self, elapsed_s: float) -> None:
        self._origin = self._now() - elapsed_s

    def eta_s(self) -> float | None:
        """Time left, from the rate at which trials finished so far; capped by the time budget.
        None before anything can be said."""
        elapsed = self.elapsed_s()
        left = None
        if self.done and self.total is not None and elapsed > 0:
            left = max(self.total - self.done, 0) * elapsed / self.done
        if self.time_budget_s is not None and self._origin is not None:
            budget_left = max(self.time_budget_s - elapsed, 0.0)
            left = budget_left if left is None else min(left, budget_left)
        return left

    @singledispatchmethod
    def update(self, event: Event) -> None:
        """Events that do not change the display."""

    @update.register
    def _started(self, event: RunStarted) -> None:
        self.name, self.total, self.time_budget_s = event.name, event.num_trials, \
            event.time_budget_s
        self._anchor(0.0)

    @update.register
    def _resumed(self, event: RunResumed) -> None:
        self.name = event.name

    @update.register
    def _spent(self, event: BudgetSpent) -> None:
        self.total = 0

    @update.register
    def _first(self, event: TrialsRunning) -> None:
        self.total = event.total
        self._anchor(event.elapsed_s)

    @update.register
    def _trial_started(self, event: TrialStarted) -> None:
        self.total = event.total
        self._anchor(event.elapsed_s)
        self.running[event.number] = RunningTrial(event.number, event.architecture)

    @update.register
    def _reported(self, event: TrialReported) -> None:
        trial = self.running.get(event.number)
        if trial is not None:
            trial.epoch, trial.values = event.epoch, dict(event.values)
            if event.values and not self.objective:
                self.objective = next(iter(event.values))

    @update.register
    def _finished(self, event: TrialFinished) -> None:
        self._anchor(event.elapsed_s)
        self.running.pop(event.number, None)
        self.total, self.done, self.failed = event.total, event.done, event.failed
        self.best = event.best
        if event.values and not self.objective:
            self.objective = next(iter(event.values))
        self.recent.append(event)

    # -- rendering ------------------------------------------------------------------------------

    def summary(self) -> str:
        """``3/10 done, 2 running, 1 failed · elapsed 0:42 · left ~1:30 · best ...``"""
        total = "?" if self.total is None else str(self.total)
        eta = self.eta_s()
        best = "best -"
        if self.best is not None:
            best = f"best {self.objective + ' ' if self.objective else ''}" \
                   f"{self.best[0]:.4g} (#{self.best[1]})"
        budget = ""
        if self.time_budget_s is not None:
            budget = f" of {_clock(self.time_budget_s)}"
        return (f"{self.done}/{total} done, {len(self.running)} running, {self.failed} failed"
                f" · elapsed {_clock(self.elapsed_s())}{budget}"
                f" · left {'~' + _clock(eta) if eta is not None else '-'} · {best}")

    def __rich__(self) -> RenderableType:
        parts: list[RenderableType] = []
        head = Table.grid(padding=(0, 1))
        head.add_column(no_wrap=True)
        head.add_column(width=30)
        head.add_column()
        bar = ProgressBar(total=float(self.total or 1), completed=float(self.done), width=30)
        head.add_row(Text(self.name or "search", style="bold"), bar, escape(self.summary()))
        parts.append(head)
        if self.running:
            table = Table(title="running", title_justify="left", box=None, padding=(0, 1))
            for col in ("#", "architecture", "epoch", "latest"):
                table.add_column(col, justify="right" if col in ("#", "epoch") else "left")
            for trial in sorted(self.running.values(), key=lambda t: t.number):
                latest = " ".join(f"{k}={v:.4g}" for k, v in trial.values.items())
                table.add_row(str(trial.number), escape(trial.architecture),
                              "-" if trial.epoch is None else str(trial.epoch),
                              escape(latest) or "-")
            parts.append(table)
        if self.recent:
            table = Table(title="finished (latest)", title_justify="left", box=None,
                          padding=(0, 1))
            for col in ("#", "status", "architecture", "result"):
                table.add_column(col, justify="right" if col == "#" else "left")
            for event in reversed(self.recent):
                shown = (event.error or "") if event.status == "failed" else " ".join(
                    f"{k}={v:.4g}" for k, v in event.values.items())
                violated = getattr(event, "violated", ())  # with hard constraints (issue 16)
                if violated and event.status != "failed":
                    shown += " infeasible: " + "; ".join(violated)
                table.add_row(str(event.number), status_text(event.status),
                              escape(event.architecture), escape(shown))
            parts.append(table)
        return Group(*parts)


def _clock(seconds: float) -> str:
    """``0:42``, ``12:05``, ``1:02:03``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LiveProgress:
    """A listener for ``automl.run`` that shows the search in a live display on ``console``
    (a terminal) and prints every other event as a line above it. Call :meth:`close` when the
    run returns or raises."""

    def __init__(self, console: Console, refresh_per_second: float = 4) -> None:
        self.console = console
        self.progress = RunProgress()
        self.printer = EventPrinter(console)
        self._lock = threading.Lock()
        self._live = Live(_Locked(self.progress, self._lock), console=console,
                          refresh_per_second=refresh_per_second, transient=False)
        self._showing = False

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.progress.update(event)
        if isinstance(event, SEARCH_EVENTS):
            if not self._showing:
                self._live.start()
                self._showing = True
            return
        if not isinstance(event, RunWarning):
            # the search is over (or has not begun): the display keeps its last state
            self.close()
        self.printer(event)  # while the display is up, above it

    def close(self) -> None:
        """Stop the display (it stays on screen as last drawn)."""
        if self._showing:
            self._showing = False
            self._live.stop()


class _Locked:
    """Renders ``progress`` under ``lock``: Live draws from its own thread while events arrive."""

    def __init__(self, progress: RunProgress, lock: threading.Lock) -> None:
        self.progress, self.lock = progress, lock

    def __rich__(self) -> RenderableType:
        with self.lock:
            return self.progress.__rich__()
