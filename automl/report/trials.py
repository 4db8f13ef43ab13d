"""The trials table (sorted and filtered in the page by inline script) and the failed trials."""

from __future__ import annotations

from collections import Counter
from html import escape

import plotly.graph_objects as go

from automl.report.gather import ReportData, TrialView, error_parts, metric_label
from automl.report.section import Html, Section, fmt, table
from automl.constraints import verdict
from automl.results import DISTILLED
from automl.store import TrialStatus


def trials_section(data: ReportData) -> Section:
    title = "Trials"
    if not data.trials:
        return Section.empty_because("trials", title, "No trial has started yet.")
    keys = [o.key for o in data.objectives]
    keys += [k for k in data.model_keys if k not in keys]
    keys += [c.key for c in data.constraints if c.key not in keys]
    constrained = bool(data.constraints or data.student_constraints)
    headers = ["#", *(["kind"] if data.distilled else []), "status", "chosen", "architecture",
               *[metric_label(k) for k in keys],
               "pruning", "augmentations", "epochs", "seconds", "error",
               *(["feasible"] if constrained else [])]
    rows = []
    for trial in data.trials:
        metrics = trial.metrics
        feasible = _feasible(data, trial) if constrained else ""
        rows.append("<tr" + _attrs(trial) + ">" + "".join(
            _cell(value, sort) for value, sort in [
                (str(trial.number), trial.number),
                *([(escape(trial.record.kind), trial.record.kind)] if data.distilled else []),
                (f'<span class="status {escape(trial.status)}">{escape(trial.status)}</span>',
                 trial.status),
                (escape(_chosen(data, trial)), _chosen(data, trial)),
                (escape(trial.architecture or "-"), trial.architecture or ""),
                *[(escape(fmt(metrics.get(k))), metrics.get(k)) for k in keys],
                (escape(_pruning(trial)), trial.pruning_amount),
                (escape(", ".join(n for n, on in trial.augmentations.items() if on) or "-"),
                 None),
                (str(trial.epochs), trial.epochs),
                (escape(fmt(trial.record.duration_s, 3)), trial.record.duration_s),
                (escape(error_parts(trial.record.error).kind or ""), None),
                *([(escape(feasible), feasible)] if constrained else []),
            ]) + "</tr>")
    head = "".join(f'<th title="click to sort">{escape(h)}</th>' for h in headers)
    filters = Html(
        '<div class="filters">status <select id="filter-status"><option value="">all</option>'
        + "".join(f'<option value="{escape(s)}">{escape(s)} ({n})</option>'
                  for s, n in data.counts().items() if n)
        + '</select> architecture <select id="filter-architecture"><option value="">all'
          '</option>'
        + "".join(f'<option value="{escape(a)}">{escape(a)}</option>'
                  for a in data.architectures)
        + '</select> <span id="trials-shown"></span></div>')
    html = Html(f'<div class="scroll"><table id="trials-table" class="sortable"><thead><tr>'
                f'{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    intro = ("Every trial with its validation scores and model values (test scores are only in "
             "the final evaluation); chosen: the best trial, chosen on validation, and with "
             "several objectives the Pareto front. Click a column to sort; choose a status or an "
             "architecture to filter.")
    if data.distilled:
        intro += (" Kind distilled: the distillation stage's students, which learned from the "
                  "ensemble's (or best trial's) predictions; the best student is chosen on "
                  "validation among them and is never the best trial.")
    return Section("trials", title, intro, [filters, html])


def _feasible(data: ReportData, trial: TrialView) -> str:
    """``yes``, or ``no:`` and what a completed trial breaks (empty before it has values)."""
    if trial.status != TrialStatus.COMPLETED:
        return ""
    return verdict(trial.record.metrics, data.student_constraints
                   if trial.record.kind == DISTILLED else data.constraints)


def _chosen(data: ReportData, trial: TrialView) -> str:
    """``best`` for the best trial, ``Pareto front`` for a front member (several objectives)."""
    marks = []
    if data.best is not None and data.best.number == trial.number:
        marks.append("best")
    if trial.number in data.pareto:
        marks.append("Pareto front")
    if data.best_student is not None and data.best_student.number == trial.number:
        marks.append("best student")
    return ", ".join(marks)


def _attrs(trial: TrialView) -> str:
    return (f' data-status="{escape(trial.status)}"'
            f' data-architecture="{escape(trial.architecture or "")}"')


def _cell(html: str, sort: object) -> str:
    if isinstance(sort, (int, float)) and not isinstance(sort, bool) and sort == sort:
        return f'<td data-sort="{sort!r}">{html}</td>'
    if isinstance(sort, str):
        return f'<td data-sort="{escape(sort)}">{html}</td>'
    return f"<td>{html}</td>"


def _pruning(trial: TrialView) -> str:
    if trial.pruner is None:
        return "none" if trial.pruning_amount == 0.0 else "-"
    return f"{trial.pruner} {fmt(trial.pruning_amount, 3)}" if trial.pruning_amount is not None \
        else trial.pruner


def failures_section(data: ReportData) -> Section:
    title = "Failed trials"
    failed = data.by_status(TrialStatus.FAILED)
    if not failed:
        return Section.empty_because("failures", title,
                                     f"No trial failed ({len(data.trials)} trials so far).")
    kinds = Counter(error_parts(t.record.error).kind or "unknown" for t in failed)
    figure = go.Figure(go.Bar(x=list(kinds), y=list(kinds.values()),
                              marker_color="#d62728", name="failed trials"))
    figure.update_layout(title="Failed trials by error type", xaxis_title="error type",
                         yaxis_title="trials", height=320)
    rows = []
    for trial in failed:
        parts = error_parts(trial.record.error)
        trace = escape(trial.record.error or "no traceback recorded")
        rows.append([str(trial.number), escape(trial.architecture or "-"),
                     escape(parts.kind or "unknown"), escape(parts.message or ""),
                     str(trial.epochs),
                     f"<details><summary>traceback</summary><pre>{trace}</pre></details>"])
    return Section("failures", title,
                   f"{len(failed)} of {len(data.trials)} trials failed; each is recorded with its "
                   "traceback and the search went on.",
                   [figure, Html('<div class="scroll">' + table(
                       ["#", "architecture", "error type", "message", "epochs reached", ""],
                       rows, raw=True) + "</div>")])
