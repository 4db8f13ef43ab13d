"""``automl explain``: what a trained model learned, and which hyperparameters mattered."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.markup import escape
from rich.table import Table

from automl.cli.common import DB_HELP, console

if TYPE_CHECKING:
    from automl.explanation import Explanation

#: rows of the feature table printed (the files hold all)
SHOWN = 10


def explain(name: str = typer.Argument(..., help="experiment name"),
            trial: Optional[str] = typer.Option(
                None, help="'best' (on validation; the default) or a trial number"),
            ensemble: bool = typer.Option(False, "--ensemble",
                                          help="explain the experiment's latest ensemble"),
            output: Optional[Path] = typer.Option(
                None, "-o", "--output",
                help="directory to write [default: <artifacts>/explanations/NAME/<trial-N | "
                     "ensemble>, where automl report finds it]"),
            examples: int = typer.Option(8, min=1, help="image/text: examples to attribute"),
            db: Optional[str] = typer.Option(None, help=DB_HELP)) -> None:
    """Explain a trial's model (or the ensemble) on validation rows: permutation importance
    (tables), Captum attributions (images, texts), and the search's hyperparameter importance."""
    from automl.explanation import explain as run_explain

    with console().status("explaining (validation rows only)"):
        result = run_explain(name, trial=trial, ensemble=ensemble, out=output, db=db,
                             examples=examples)
    print_explanation(result)


def print_explanation(result: "Explanation") -> None:
    out = console()
    out.print(f"explained {escape(result.subject)} of '{escape(result.experiment)}' "
              f"({result.kind} data) on {result.rows} validation rows in {result.elapsed_s:.1f}s",
              soft_wrap=True)
    for text in result.notes:
        out.print(f"[yellow]note:[/yellow] {escape(text)}", soft_wrap=True)
    if result.features:
        table = Table(title=f"permutation importance ({escape(result.metric)} lost when "
                            "shuffled)", title_justify="left")
        for column in ("feature", "importance", "std"):
            table.add_column(column, justify="left" if column == "feature" else "right")
        for feature in result.features[:SHOWN]:
            table.add_row(escape(feature.feature), f"{feature.mean:.4g}", f"{feature.std:.3g}")
        out.print(table)
    for example in result.examples:
        top = sorted(example.tokens, key=lambda t: -abs(t[1]))[:5]
        said = ", ".join(f"{escape(t)} {a:+.3g}" for t, a in top)
        out.print(f"  row {example.row}: true {escape(str(example.target))}, predicted "
                  f"{escape(example.predicted)} ({example.score:.3g})"
                  + (f"; top tokens: {said}" if said else ""), soft_wrap=True)
    for evaluator, by_metric in result.hyperparameters.items():
        for key, values in by_metric.items():
            ranked = ", ".join(f"{escape(k)} {v:.2f}" for k, v in list(values.items())[:4])
            out.print(f"hyperparameters ({evaluator}, {escape(key)}): {ranked}", soft_wrap=True)
    out.print(f"written to {escape(str(result.directory))} (explanation.json, "
              "explanation.html); automl report shows it", soft_wrap=True)
