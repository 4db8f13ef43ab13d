"""The distribution of validation scores for each architecture and each augmentation (on/off)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go

from automl.report.gather import ReportData, TrialView, metric_label
from automl.report.history import STATUS_COLOURS
from automl.report.section import Section, note
from automl.store import TrialStatus

#: completed trials, then early-stopped ones (scored at the epoch they stopped): side by side
SHOWN = (TrialStatus.COMPLETED, TrialStatus.EARLY_STOPPED)


def scores_section(data: ReportData) -> Section:
    title = "Scores by architecture and augmentation"
    keys = [o.key for o in data.objectives if o.scope == "val"] or \
        [o.key for o in data.objectives]
    scored = [t for t in data.by_status(*SHOWN) if any(k in t.metrics for k in keys)]
    if not scored:
        return Section.empty_because("scores", title,
                                     "No completed or early-stopped trial has a score yet.")
    parts: list[Any] = []
    for key in keys:
        parts.append(_boxes(scored, key, lambda t: [t.architecture or "-"],
                            f"{metric_label(key)} by architecture", "architecture"))
        if data.augmentations:
            parts.append(_boxes(
                scored, key,
                lambda t: [f"{name}: {'on' if t.augmentations.get(name) else 'off'}"
                           for name in data.augmentations],
                f"{metric_label(key)} with each augmentation on or off", "augmentation"))
    if not data.augmentations:
        parts.append(note("The search space has no augmentation."))
    return Section("scores", title,
                   "Each point is a trial. Early-stopped trials are scored at the epoch they "
                   "stopped, so they are shown apart from the completed ones.", parts)


def _boxes(trials: list[TrialView], key: str, groups: Callable[[TrialView], list[str]],
           title: str, axis: str) -> go.Figure:
    figure = go.Figure()
    for status in SHOWN:
        xs: list[str] = []
        ys: list[float] = []
        numbers: list[int] = []
        for trial in trials:
            if trial.status != status or key not in trial.metrics:
                continue
            for group in groups(trial):
                xs.append(group)
                ys.append(trial.metrics[key])
                numbers.append(trial.number)
        if ys:
            figure.add_trace(go.Box(
                x=xs, y=ys, customdata=numbers, name=str(status).replace("_", " "),
                boxpoints="all", jitter=0.4, pointpos=0,
                marker={"color": STATUS_COLOURS[status], "size": 5},
                hovertemplate="trial #%{customdata}<br>%{y:.4g}<extra></extra>"))
    figure.update_layout(title=title, boxmode="group", xaxis_title=axis, yaxis_title=key,
                         height=400)
    return figure
