"""How the search went: each objective per trial with its best-so-far line, and every trial's
learning curve (early-stopped trials end early, with a cross; running trials end in a ring)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from automl.report.gather import ReportData, TrialView, best_so_far, metric_label
from automl.report.section import Section, note
from automl.store import TrialStatus

#: the colour of each trial status, everywhere in the report
STATUS_COLOURS = {TrialStatus.COMPLETED: "#1f77b4", TrialStatus.EARLY_STOPPED: "#ff7f0e",
                  TrialStatus.RUNNING: "#2ca02c", TrialStatus.FAILED: "#d62728",
                  TrialStatus.INTERRUPTED: "#9467bd"}


def history_section(data: ReportData) -> Section:
    title = "Optimisation history"
    figures: list[Any] = []
    reasons = []
    for objective in data.objectives:
        done = [t for t in data.completed() if objective.key in t.metrics]
        if not done:
            reasons.append(f"no completed trial has {objective.key} yet")
            continue
        figure = go.Figure()
        numbers = [t.number for t in done]
        values = [t.metrics[objective.key] for t in done]
        figure.add_trace(go.Scatter(
            x=numbers, y=values, mode="markers", name="completed trial",
            marker={"color": STATUS_COLOURS[TrialStatus.COMPLETED], "size": 7},
            hovertemplate="trial #%{x}<br>%{y:.4g}<extra></extra>"))
        stopped = [t for t in data.by_status(TrialStatus.EARLY_STOPPED)
                   if objective.key in t.metrics]
        if stopped:
            figure.add_trace(go.Scatter(
                x=[t.number for t in stopped], y=[t.metrics[objective.key] for t in stopped],
                mode="markers", name="early stopped (value at its last epoch)",
                marker={"color": STATUS_COLOURS[TrialStatus.EARLY_STOPPED], "size": 6,
                        "symbol": "x"},
                hovertemplate="trial #%{x} (early stopped)<br>%{y:.4g}<extra></extra>"))
        figure.add_trace(go.Scatter(
            x=numbers, y=best_so_far(values, objective.mode), mode="lines",
            line={"shape": "hv", "color": "#111", "width": 2},
            name=f"best so far ({objective.mode})"))
        figure.update_layout(title=f"{metric_label(objective.key)} by trial",
                             xaxis_title="trial number", yaxis_title=objective.key, height=380)
        figures.append(figure)
    if not figures:
        return Section.empty_because("history", title,
                                     "Nothing to plot yet: " + "; ".join(reasons) + ".")
    parts: list[Any] = list(figures)
    parts += [note(r) for r in reasons]
    return Section("history", title,
                   "Validation value of each objective per trial, in the order the trials were "
                   "numbered; the line is the best completed trial so far (early-stopped trials "
                   "are scored at the epoch they stopped and never count as best).", parts)


def curve_key(data: ReportData) -> str | None:
    """The per-epoch value the learning curves show: the first objective reported every epoch."""
    for objective in data.objectives:
        if any(objective.key in h for t in data.trials for h in t.record.history):
            return objective.key
    return None


def curves_section(data: ReportData) -> Section:
    title = "Learning curves"
    with_history = [t for t in data.trials if t.record.history]
    if not with_history:
        return Section.empty_because("curves", title, "No trial has reported an epoch yet.")
    key = curve_key(data)
    if key is None:
        return Section.empty_because(
            "curves", title, "No objective is reported per epoch (the objectives are model-only "
                             f"values: {', '.join(o.key for o in data.objectives)}).")
    figure = go.Figure()
    for status in STATUS_COLOURS:
        trials = [t for t in with_history if t.status == status]
        if trials:
            _add_curves(figure, trials, key, status)
    cut = [t for t in with_history if t.status in (TrialStatus.EARLY_STOPPED,
                                                    TrialStatus.RUNNING)]
    for status, symbol, label in ((TrialStatus.EARLY_STOPPED, "x", "stopped early here"),
                                  (TrialStatus.RUNNING, "circle-open", "running: latest epoch")):
        ends = [t for t in cut if t.status == status and _points(t, key)]
        if ends:
            last = [_points(t, key)[-1] for t in ends]
            figure.add_trace(go.Scatter(
                x=[p[0] for p in last], y=[p[1] for p in last], mode="markers", name=label,
                customdata=[t.number for t in ends],
                marker={"symbol": symbol, "size": 9, "color": STATUS_COLOURS[status],
                        "line": {"width": 2}},
                hovertemplate="trial #%{customdata}<br>epoch %{x}: %{y:.4g}<extra></extra>"))
    if data.planned_epochs:
        figure.add_vline(x=data.planned_epochs, line_dash="dash", line_color="#888",
                         annotation_text=f"planned epochs ({data.planned_epochs})")
    figure.update_layout(title=f"{metric_label(key)} per epoch", xaxis_title="epoch",
                         yaxis_title=key, height=440)
    counts = {s: sum(1 for t in with_history if t.status == s) for s in STATUS_COLOURS}
    return Section("curves", title,
                   "Each line is one trial's validation value per epoch, coloured by status. "
                   "Early-stopped trials end before the planned epochs (dotted, a cross where "
                   "they stopped); running trials show the epochs reported so far.",
                   [figure, note(", ".join(f"{n} {s}" for s, n in counts.items() if n)
                                 + " trial(s) with per-epoch values.")])


def _points(trial: TrialView, key: str) -> list[tuple[int, float]]:
    return [(int(h.get("epoch") or i + 1), float(h[key]))
            for i, h in enumerate(trial.record.history) if key in h]


def _add_curves(figure: go.Figure, trials: list[TrialView], key: str, status: str) -> None:
    """One trace for all trials of a status (lines separated by gaps): a thousand trials draw
    as fast as one."""
    xs: list[int | None] = []
    ys: list[float | None] = []
    numbers: list[int | None] = []
    for trial in trials:
        points = _points(trial, key)
        if not points:
            continue
        xs += [p[0] for p in points] + [None]
        ys += [p[1] for p in points] + [None]
        numbers += [trial.number] * len(points) + [None]
    dash = "dot" if status == TrialStatus.EARLY_STOPPED else "solid"
    figure.add_trace(go.Scatter(
        x=xs, y=ys, customdata=numbers, mode="lines+markers", name=str(status),
        line={"color": STATUS_COLOURS.get(status, "#7f7f7f"), "width": 1, "dash": dash},
        marker={"size": 3}, opacity=0.75, connectgaps=False,
        hovertemplate="trial #%{customdata}<br>epoch %{x}: %{y:.4g}<extra>" + status
                      + "</extra>"))
