"""Scores against model-only values (latency, size, ...: whatever the trials recorded as
``model/<name>``), coloured by the pruning amount, with the Pareto front of each pair marked."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from automl.report.gather import ReportData, front_2d, metric_label
from automl.report.section import Section, note


def tradeoffs_section(data: ReportData) -> Section:
    title = "Trade-offs"
    anchor = "tradeoffs"
    scores = [o for o in data.objectives if o.scope == "val"]
    if not scores:
        return Section.empty_because(anchor, title, "No objective is a validation score (the "
                                                    "objectives are all model-only values).")
    if not data.model_keys:
        return Section.empty_because(
            anchor, title, "The trials recorded no model-only value (such as a latency or a "
                           "size): add such a metric to the experiment's objectives or record:.")
    score = scores[0]
    done = [t for t in data.completed() if score.key in t.metrics]
    if not done:
        return Section.empty_because(anchor, title, f"No completed trial has {score.key} yet.")
    parts: list[Any] = []
    amounts = [t.pruning_amount for t in done]
    colour = data.pruning_param is not None and any(a is not None for a in amounts)
    for key in data.model_keys:
        trials = [t for t in done if key in t.metrics]
        if not trials:
            continue
        xs = [t.metrics[key] for t in trials]
        ys = [t.metrics[score.key] for t in trials]
        numbers = [t.number for t in trials]
        front = set(front_2d(list(zip(numbers, xs, ys)), data.direction(key), score.mode))
        marker: dict[str, Any] = {"size": 8, "line": {"width": 0.5, "color": "#333"}}
        if colour:
            marker.update(color=[a if a is not None else 0.0 for a in
                                 (t.pruning_amount for t in trials)],
                          colorscale="Viridis", showscale=True,
                          colorbar={"title": f"pruning {data.pruning_param}"})
        figure = go.Figure(go.Scatter(
            x=xs, y=ys, mode="markers", name="completed trial", marker=marker,
            customdata=[[t.number, t.architecture or "-", _pruning(t.pruning_amount)]
                        for t in trials],
            hovertemplate=("trial #%{customdata[0]} (%{customdata[1]}, pruning "
                           "%{customdata[2]})<br>%{x:.4g}, %{y:.4g}<extra></extra>")))
        on_front = sorted((x, y, n) for x, y, n in zip(xs, ys, numbers) if n in front)
        figure.add_trace(go.Scatter(
            x=[p[0] for p in on_front], y=[p[1] for p in on_front], mode="lines+markers",
            name="Pareto front", customdata=[p[2] for p in on_front],
            line={"color": "#d62728", "shape": "hv" if data.direction(key) == "min" else
                  "linear", "width": 2},
            marker={"symbol": "diamond-open", "size": 13, "color": "#d62728",
                    "line": {"width": 2}},
            hovertemplate="Pareto front: trial #%{customdata}<extra></extra>"))
        figure.update_layout(
            title=f"{metric_label(score.key)} against {metric_label(key)}",
            xaxis_title=f"{key} ({'lower' if data.direction(key) == 'min' else 'higher'} "
                        "is better)",
            yaxis_title=score.key, height=420,
            legend={"orientation": "h", "y": -0.2})
        parts.append(figure)
    if not colour:
        parts.append(note("No pruning was searched: the points are not coloured."))
    return Section(anchor, title,
                   f"Completed trials: {score.key} against each model-only value the trials "
                   "recorded, coloured by the pruning amount the trial sampled (0 for no "
                   "pruning). The front joins the trials no other trial beats on both axes; a "
                   "model-only value that is not an objective counts as a cost (lower is "
                   "better).", parts, columns=2)


def _pruning(amount: float | None) -> str:
    return "-" if amount is None else f"{amount:.3g}"
