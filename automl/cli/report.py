"""``automl report``: an experiment's self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from automl.cli.common import DB_HELP, console, open_store


def report(name: str = typer.Argument(..., help="experiment name"),
           output: Optional[Path] = typer.Option(
               None, "--output", "-o", help="the HTML file to write [default: NAME.html]"),
           db: Optional[str] = typer.Option(None, help=DB_HELP)) -> None:
    """Write an experiment's report: one HTML file that opens offline in any browser (also
    while the experiment runs)."""
    from automl.report import write_report

    store = open_store(db)
    try:
        exp = store.experiment(name)
    finally:
        store.close()
    path = write_report(exp, output if output is not None else Path(f"{name}.html"))
    console().print(f"report of '{escape(name)}' ({len(exp.trials)} trials, {exp.status}) "
                    f"written to {escape(str(path))}", soft_wrap=True)
