"""An explanation's own HTML page (``explanation.html``): the report's page layout with the
explanation's sections (:mod:`automl.report.explanation`), self-contained."""

from __future__ import annotations

from pathlib import Path

from automl.explanation.result import Explanation


def render_explanation(explanation: Explanation, directory: Path) -> str:
    """The page of ``explanation``, its figures read from ``directory``."""
    from automl.report.explanation import explanation_sections
    from automl.report.page import render_page

    subtitle = (f"{explanation.subject}, {explanation.kind} data, {explanation.rows} validation "
                f"rows, {explanation.elapsed_s:.1f}s")
    return render_page(f"automl explain: {explanation.experiment}", subtitle,
                       explanation_sections(explanation, directory))
