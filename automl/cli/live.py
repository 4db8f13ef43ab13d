"""Rendering a run's :mod:`automl.events` on the terminal, as ``automl run`` prints them."""

from __future__ import annotations

from functools import singledispatchmethod

from rich.console import Console
from rich.markup import escape

from automl.cli.render import status_text, subject_label
from automl.events import (
    BudgetSpent, DataLoaded, DistillationFinished, DistillationSkipped, DistillationStarted,
    EnsembleFinished, EnsembleSkipped, EvaluationFinished,
    EvaluationSkipped, Event, RayStarting,
    ResumeStartsAnew, RunFinished, RunResumed, RunStarted, RunWarning, TrialFinished,
    TrialsRunning, WarmStarted,
)


class EventPrinter:
    """A listener for ``automl.run``: one line per event on ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def _print(self, text: str) -> None:
        self.console.print(text, soft_wrap=True)

    @singledispatchmethod
    def __call__(self, event: Event) -> None:
        """An event this version does not render is not shown."""

    @__call__.register
    def _data(self, event: DataLoaded) -> None:
        sizes = ", ".join(f"{n} {part}" for part, n in event.sizes.items())
        self._print(f"dataset '{escape(event.dataset)}' loaded in {event.elapsed_s:.1f}s "
                    f"({sizes} rows)")

    @__call__.register
    def _anew(self, event: ResumeStartsAnew) -> None:
        self._print(f"[bold]{escape(event.name)}[/bold] has no record in {escape(event.db_url)}"
                    " (stopped before it was recorded): --resume starts it from the beginning")

    @__call__.register
    def _ray(self, event: RayStarting) -> None:
        where = (f"connecting to the Ray cluster at {escape(event.address)}" if event.address
                 else "starting embedded Ray")
        self._print(f"{where} ...")

    @__call__.register
    def _resumed(self, event: RunResumed) -> None:
        self._print(f"resuming [bold]{escape(event.name)}[/bold]: {event.finished} trials "
                    f"finished, {event.interrupted} interrupted (run again), "
                    f"{event.remaining} to go")

    @__call__.register
    def _started(self, event: RunStarted) -> None:
        self._print(f"[bold]{escape(event.name)}[/bold]: {event.num_trials} trials, "
                    f"{event.architectures} architecture(s), sampler {event.sampler}, "
                    f"early stopping {event.early_stopping}; results in "
                    f"{escape(event.db_url)}")

    @__call__.register
    def _warning(self, event: RunWarning) -> None:
        self._print(f"[yellow]warning:[/yellow] {escape(event.message)}")

    @__call__.register
    def _warm(self, event: WarmStarted) -> None:
        for carried in event.carried:
            what = [f"{carried.queued} best configuration(s) run first",
                    f"{carried.observations} finished trial(s) given to the sampler"]
            line = f"warm start from [bold]{escape(carried.source)}[/bold]: " + ", ".join(what)
            if carried.no_observations and not carried.observations:
                line += f" ({escape(carried.no_observations)})"
            if carried.not_carried:
                names = ", ".join(carried.not_carried)
                line += f"; not held by this space, sampled instead: {escape(names)}"
            self._print(line)

    @__call__.register
    def _spent(self, event: BudgetSpent) -> None:
        self._print("nothing left to run: the trial budget is spent")

    @__call__.register
    def _running(self, event: TrialsRunning) -> None:
        plural = "trial" if event.running == 1 else "trials"
        self._print(f"[dim]{event.elapsed_s:6.1f}s[/dim] {event.running} {plural} running "
                    f"[dim]0/{event.total} done[/dim]")

    @__call__.register
    def _trial(self, event: TrialFinished) -> None:
        shown = " ".join(f"{key}={value:.4g}" for key, value in event.values.items())
        if event.status == "failed":
            shown = event.error or ""
        elif event.violated:
            shown += " infeasible: " + "; ".join(event.violated)
        best = f"best {event.best[0]:.4g} (#{event.best[1]})" if event.best else "best -"
        status = status_text(event.status)
        status.pad_right(13 - len(event.status))
        self.console.print(
            f"[dim]{event.elapsed_s:6.1f}s[/dim] #{event.number:<3}", status,
            f"{escape(event.architecture):<8} {escape(shown):<24} {best:<18} "
            f"[dim]{event.done}/{event.total} done, {event.running} running, "
            f"{event.failed} failed[/dim]", soft_wrap=True)

    @__call__.register
    def _ensemble(self, event: EnsembleFinished) -> None:
        # the guard's note is part of the ensemble report (render.print_ensemble), not repeated
        record = event.record
        key = f"val_check/{record.metric}"  # the held-out part of validation; test comes later
        ens, single = record.scores["ensemble"][key], record.scores["best_single"][key]
        members = ", ".join(f"#{n} {w:.2f}" for n, w in zip(record.members, record.weights))
        self._print(f"ensemble ({escape(record.ensembler)}, {event.candidates} candidates, "
                    f"{event.elapsed_s:.1f}s): members {members}; {key} {ens:.4g} vs best "
                    f"single #{record.best_single} {single:.4g} ({ens - single:+.4g})")

    @__call__.register
    def _distilling(self, event: DistillationStarted) -> None:
        self._print(f"distillation: {event.trials} student trials learn from the "
                    f"{escape(event.teacher)} (its training-split predictions in "
                    f"{event.teacher_s:.1f}s)")

    @__call__.register
    def _distilled(self, event: DistillationFinished) -> None:
        best = (f"best student #{event.best} {event.key}={event.value:.4g}"
                if event.best is not None else "no completed student meets the constraints")
        self._print(f"distillation: {event.completed} students completed in "
                    f"{event.elapsed_s:.1f}s; {best}")

    @__call__.register
    def _not_distilled(self, event: DistillationSkipped) -> None:
        self._print(f"distillation: skipped ({escape(event.reason)})")

    @__call__.register
    def _evaluated(self, event: EvaluationFinished) -> None:
        record = event.record
        scored = "; ".join(
            f"{subject_label(s)} " + " ".join(f"{k}={v:.4g}" for k, v in s.metrics.items())
            for s in record.subjects)
        self._print(f"final evaluation #{record.number} (test split, scored once, "
                    f"{event.elapsed_s:.1f}s): {escape(scored)}")

    @__call__.register
    def _not_evaluated(self, event: EvaluationSkipped) -> None:
        self._print(f"final evaluation: skipped ({escape(event.reason)})")

    @__call__.register
    def _skipped(self, event: EnsembleSkipped) -> None:
        self._print(f"ensemble: skipped ({escape(event.reason)})")

    @__call__.register
    def _finished(self, event: RunFinished) -> None:
        if event.status == "completed":
            self._print(f"finished in {event.elapsed_s:.1f}s")
