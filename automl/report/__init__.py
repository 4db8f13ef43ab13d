"""The HTML report of an experiment: one self-contained file (plotly.js, styles and scripts
inlined) that opens offline in any browser, made from the store in seconds, also while the
experiment is still running.

    from automl.report import write_report
    write_report(Store(url).experiment("quickstart"), "quickstart.html")

Plotly is an optional dependency (``pip install 'automl[report]'``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from automl.errors import AutomlError

if TYPE_CHECKING:
    from automl.report.gather import ReportData
    from automl.report.section import Section
    from automl.store import ExperimentRecord

__all__ = ["ReportError", "build_report", "report_sections", "write_report"]


class ReportError(AutomlError):
    """The report cannot be made or written (no plotting library, an unwritable path)."""

    exit_code = 2


def _require_plotly() -> None:
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise ReportError("automl report needs plotly: pip install 'automl[report]'") from None


def report_sections(experiment: "ExperimentRecord") -> list["Section"]:
    """The report's sections, in page order (each holds figures and tables, or why it is
    empty); the explanations' section only when the experiment was explained."""
    _require_plotly()
    from automl.report.gather import gather
    from automl.report.history import curves_section, history_section
    from automl.report.importance import importance_section
    from automl.report.outcome import ensemble_section, evaluation_section
    from automl.report.overview import experiment_section
    from automl.report.scores import scores_section
    from automl.report.tradeoffs import tradeoffs_section
    from automl.report.trials import failures_section, trials_section

    data = gather(experiment)
    sections = [builder(data) for builder in (
        experiment_section, trials_section, history_section, importance_section,
        scores_section, curves_section, tradeoffs_section, ensemble_section,
        evaluation_section, failures_section)]
    explained = _explanations(data)
    return sections if explained is None else [*sections, explained]


def _explanations(data: "ReportData") -> "Section | None":
    """The section of the experiment's saved explanations (``automl explain``), if any."""
    from automl.report.explanation import explanations_section

    return explanations_section(data)


def build_report(experiment: "ExperimentRecord") -> str:
    """The report of ``experiment`` as one HTML document."""
    from automl.report.page import render_page

    sections = report_sections(experiment)
    subtitle = (f"status {experiment.status}, {len(experiment.trials)} trials, "
                f"automl {experiment.automl_version}")
    return render_page(f"automl report: {experiment.name}", subtitle, sections)


def write_report(experiment: "ExperimentRecord", path: str | Path) -> Path:
    """Write the report to ``path`` whole or not at all (a temporary file next to it, renamed
    into place); returns the path written."""
    target = Path(path)
    html = build_report(experiment)
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ReportError(f"cannot write the report to {target}: it is a directory")
    if not directory.is_dir():
        raise ReportError(f"cannot write the report to {target}: directory {directory} does not "
                          "exist")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                             dir=directory)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {target}: {exc.strerror or exc}") \
            from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(html)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ReportError(f"cannot write the report to {target}: {exc.strerror or exc}") \
            from None
    return target
