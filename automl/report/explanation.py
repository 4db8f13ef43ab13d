"""Explanations (``automl explain``) as report sections: the explanation's own page and, when an
experiment has been explained, a section of its report.

Tabular models: a bar chart of the features' permutation importances (with their spread over the
shuffles) and a table of all of them. Image models: each example's figure (input, integrated
gradients, occlusion), inlined. Text models: each example's tokens coloured by attribution (red:
for the explained prediction, blue: against it). Then the search's hyperparameter importances per
Optuna evaluator.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from automl.explanation.result import Example, Explanation
from automl.report.gather import ReportData, metric_label
from automl.report.section import Html, Section, fmt, note, table

#: how the notes of the hyperparameter importance begin (automl.explanation.search)
SEARCH_NOTE = "hyperparameter importance"
#: features drawn in the bar chart (the table lists all)
TOP_FEATURES = 20

STYLE = ("<style>.examples{display:flex;flex-wrap:wrap;gap:10px}"
         ".examples figure{margin:0;border:1px solid #e5e7eb;padding:4px}"
         ".examples figcaption{font-size:12px;color:#4b5563}"
         ".tokens{font-family:ui-monospace,monospace;font-size:13px;line-height:1.9;margin:6px 0}"
         ".tokens span{padding:1px 2px;border-radius:3px}</style>")


def explanations_section(data: ReportData) -> Section | None:
    """The report's section of the experiment's saved explanations; None when there is none."""
    from automl.explanation.files import saved_explanations

    found, problems = saved_explanations(data.experiment)
    if not found and not problems:
        return None
    parts: list[Any] = [note(problem) for problem in problems]
    for explanation in found:
        assert explanation.directory is not None
        parts.append(Html(f"<h3>{escape(explanation.subject)}</h3>"))
        for section in explanation_sections(explanation, explanation.directory):
            parts += [Html(f"<h4>{escape(section.title)}</h4>"), *(
                [note(section.empty)] if section.empty else
                [*([note(section.intro)] if section.intro else []), *section.parts])]
        parts.append(note(f"Written to {explanation.directory}."))
    return Section("explanations", "Explanations",
                   "What the models learned (automl explain), on validation rows only.", parts)


def explanation_sections(explanation: Explanation, directory: Path) -> list[Section]:
    """The sections of one explanation; figures are read from ``directory``."""
    # the search's notes are said in its own section
    summary = [note(text) for text in explanation.notes if not text.startswith(SEARCH_NOTE)]
    overview = Section(
        "explained", f"What is explained: {explanation.subject}",
        f"{_what(explanation)}; {explanation.rows} rows of the validation split (never the "
        f"test split); scored with {metric_label(explanation.metric)} "
        f"({'higher' if explanation.mode == 'max' else 'lower'} is better"
        + (f", {fmt(explanation.baseline_score)} on these rows)" if
           explanation.baseline_score is not None else ")")
        + f"; methods: {', '.join(explanation.methods)}.", summary)
    sections = [overview]
    if explanation.kind == "tabular":
        sections.append(_features(explanation))
    else:
        sections.append(_examples(explanation, directory))
    sections.append(_hyperparameters(explanation))
    return sections


def _what(explanation: Explanation) -> str:
    if explanation.trial is None:
        weights = ", ".join(f"trial {m} x {w:.3f}" for m, w in
                            zip(explanation.members, explanation.weights))
        return f"the ensemble's weighted predictions ({weights})"
    return f"trial {explanation.trial}'s model"


def _features(explanation: Explanation) -> Section:
    title = "Permutation importance of the input features"
    if not explanation.features:
        return Section.empty_because("features", title, "No features were assessed.")
    shown = explanation.features[:TOP_FEATURES][::-1]  # the most important at the top
    figure = go.Figure(go.Bar(
        x=[f.mean for f in shown], y=[f.feature for f in shown], orientation="h",
        error_x={"type": "data", "array": [f.std for f in shown]}, marker_color="#1f77b4",
        hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    figure.update_layout(title=f"Drop in {metric_label(explanation.metric)} when a feature is "
                               "shuffled",
                         xaxis_title=f"{metric_label(explanation.metric)} lost (mean of the "
                                     "shuffles; bars: their std)",
                         height=max(300, 24 * len(shown) + 130), margin={"l": 220})
    rows = [[f.feature, fmt(f.mean), fmt(f.std)] for f in explanation.features]
    return Section("features", title,
                   "Each feature's values shuffled across the validation rows (scikit-learn's "
                   "permutation_importance), the model scored again: the larger the loss, the "
                   "more the model relies on the feature.",
                   [figure, Html('<div class="scroll">' + table(
                       ["feature", "importance", "std"], rows, table_id="features-table")
                       + "</div>")])


def _examples(explanation: Explanation, directory: Path) -> Section:
    title = "Attributions of validation examples"
    if not explanation.examples:
        return Section.empty_because("examples", title, "No examples were explained.")
    if explanation.kind == "image":
        intro = ("Per example: the input, its integrated gradients and its occlusion "
                 "attributions for the explained prediction (red: for it, blue: against it). "
                 "The most confidently right examples first, then the worst.")
        figures = "".join(_image(e, directory) for e in explanation.examples)
        return Section("examples", title, intro, [Html(STYLE + f'<div class="examples">'
                                                       f"{figures}</div>")])
    intro = ("Per example: its tokens coloured by their integrated gradients attribution for "
             "the explained prediction (red: for it, blue: against it; padding left out). The "
             "most confidently right examples first, then the worst.")
    lines = "".join(_text(e) for e in explanation.examples)
    return Section("examples", title, intro, [Html(STYLE + lines)])


def _caption(example: Example) -> str:
    return (f"row {example.row}: true {example.target}, predicted {example.predicted} "
            f"({example.score:.3g}); explained: {example.explained}")


def _image(example: Example, directory: Path) -> str:
    path = directory / (example.image or "")
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return f'<figure><figcaption>{escape(_caption(example))} (figure {escape(str(path))} ' \
               "is missing)</figcaption></figure>"
    return (f'<figure><img alt="{escape(_caption(example))}" '
            f'src="data:image/png;base64,{data}"><figcaption>{escape(_caption(example))}'
            "</figcaption></figure>")


def _text(example: Example) -> str:
    limit = max((abs(a) for _, a in example.tokens), default=0.0) or 1.0
    spans = []
    for token, value in example.tokens:
        strength = min(1.0, abs(value) / limit)
        colour = "220,38,38" if value >= 0 else "37,99,235"
        spans.append(f'<span title="{value:.4g}" style="background:rgba({colour},'
                     f'{0.08 + 0.72 * strength:.2f})">{escape(token)}</span>')
    return (f'<p class="note">{escape(_caption(example))}</p>'
            f'<div class="tokens">{" ".join(spans)}</div>')


def _hyperparameters(explanation: Explanation) -> Section:
    title = "Hyperparameter importance of the search"
    found = explanation.hyperparameters
    if not found:
        return Section.empty_because(
            "hyperparameters", title,
            "; ".join(n for n in explanation.notes if n.startswith(SEARCH_NOTE))
            or "No importances.")
    figures: list[Any] = []
    for evaluator, by_metric in found.items():
        for key, importances in by_metric.items():
            names = [n for n, v in importances.items() if v > 0][::-1]
            figure = go.Figure(go.Bar(x=[importances[n] for n in names], y=names,
                                      orientation="h", marker_color="#ff7f0e",
                                      hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
            figure.update_layout(title=f"{evaluator}: {metric_label(key)}",
                                 xaxis_title="importance (sums to 1)",
                                 height=max(280, 26 * len(names) + 120), margin={"l": 220})
            figures.append(figure)
    return Section("hyperparameters", title,
                   "Optuna's importance evaluators on the experiment's completed trials: how "
                   "much each searched parameter decided the objective.", figures,
                   columns=min(2, len(figures)))
