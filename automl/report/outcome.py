"""What the search produced: the ensemble against the best single trial, and the final
evaluation on the test split."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from automl.report.gather import TEST, ReportData
from automl.report.section import Section, fmt, note, table
from automl.store import ExperimentStatus


def ensemble_section(data: ReportData) -> Section:
    title = "Ensemble"
    record = data.experiment.ensemble
    if record is None:
        why = ("the ensemble stage runs after the search, which has not finished"
               if data.experiment.status == ExperimentStatus.RUNNING else
               "the ensemble stage has not run or was skipped (it needs at least two "
               "completed trials with predictions, and an enabled ensemble: section)")
        return Section.empty_because("ensemble", title, f"No ensemble: {why}.")
    ensemble = {k: v for k, v in record.scores.get("ensemble", {}).items()
                if not k.startswith(TEST)}
    single = {k: v for k, v in record.scores.get("best_single", {}).items()
              if not k.startswith(TEST)}
    keys = [k for k in ensemble if isinstance(single.get(k), (int, float))]
    parts: list[Any] = []
    if keys:
        figure = make_subplots(rows=1, cols=len(keys), subplot_titles=keys)
        for col, key in enumerate(keys, start=1):
            figure.add_trace(go.Bar(
                x=["ensemble", f"best single #{record.best_single}"],
                y=[ensemble[key], single[key]], marker_color=["#2ca02c", "#1f77b4"],
                showlegend=False, hovertemplate="%{x}: %{y:.4g}<extra>" + key + "</extra>"),
                row=1, col=col)
        figure.update_layout(title="Ensemble against the best single trial (validation)",
                             height=360)
        parts.append(figure)
    parts.append(table(["member", "weight"], [[f"#{n}", fmt(w, 3)] for n, w in
                                               zip(record.members, record.weights)]))
    if record.note:
        parts.append(note(record.note))
    return Section("ensemble", title,
                   f"{record.ensembler} ensemble of {len(record.members)} trial(s), weights "
                   f"fitted to {record.metric} on part of the validation split and checked on "
                   "the rest (val_check/); its test scores are in the final evaluation.", parts)


def evaluation_section(data: ReportData) -> Section:
    title = "Final evaluation"
    record = data.experiment.evaluation
    if record is None:
        why = ("it runs once, after the search and the ensemble; the experiment is still "
               "running" if data.experiment.status == ExperimentStatus.RUNNING else
               f"it has not been made (the experiment is {data.experiment.status})")
        return Section.empty_because("evaluation", title,
                                     f"No test-split scores yet: {why}.")
    names = list(dict.fromkeys(k for s in record.subjects for k in s.metrics))
    labels = [_label(s) for s in record.subjects]
    figure = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=names)
    for col, name in enumerate(names, start=1):
        figure.add_trace(go.Bar(
            x=labels, y=[s.metrics.get(name) for s in record.subjects], showlegend=False,
            marker_color=["#2ca02c" if s.subject == "ensemble" else "#1f77b4"
                          for s in record.subjects],
            hovertemplate="%{x}: %{y:.4g}<extra>" + name + "</extra>"), row=1, col=col)
    figure.update_layout(title=f"Test split (evaluation #{record.number})", height=380)
    rows = [[label, *[fmt(s.metrics.get(n)) for n in names]]
            for label, s in zip(labels, record.subjects)]
    earlier = (f" {len(data.experiment.evaluations) - 1} earlier evaluation(s) are kept in the "
               "store." if len(data.experiment.evaluations) > 1 else "")
    return Section("evaluation", title,
                   f"The test split, scored once on {record.created_at:%Y-%m-%d %H:%M:%S} UTC "
                   "for the trial chosen on validation (and the Pareto front, the ensemble, the "
                   "distillation stage's best student); "
                   "nothing was chosen with these numbers." + earlier,
                   [figure, table(["scored", *names], rows)])


def _label(subject: Any) -> str:
    if subject.subject == "ensemble":
        return f"ensemble (id {subject.ensemble_id})"
    if "distilled" in subject.roles:
        return f"distilled student #{subject.trial}"
    role = "best trial" if "best" in subject.roles else "Pareto front"
    return f"{role} #{subject.trial}"
