"""Commands on a finished experiment's trained models: ``ensemble``, ``export``, ``rerun``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from automl.cli.common import DB_HELP, console, open_store


def ensemble(name: str = typer.Argument(..., help="experiment name"),
             db: Optional[str] = typer.Option(None, help=DB_HELP),
             ensembler: Optional[str] = typer.Option(None, help="ensembler plugin name"),
             candidates: Optional[int] = typer.Option(None, min=2, help="top-k trials"),
             holdout: Optional[float] = typer.Option(
                 None, help="fraction of validation held out to check the weights"),
             diversity: Optional[float] = typer.Option(
                 None, help="max prediction agreement between chosen candidates"),
             metric: Optional[str] = typer.Option(None, help="metric the weights optimise"),
             ) -> None:
    """(Re-)run the ensemble stage on a finished experiment with new settings."""
    from automl.cli.live import EventPrinter
    from automl.cli.render import print_ensemble
    from automl.runner import ensemble_again

    out = console()
    overrides = {k: v for k, v in {"ensembler": ensembler, "candidates": candidates,
                                   "holdout": holdout, "diversity": diversity,
                                   "metric": metric}.items() if v is not None}
    store = open_store(db)
    try:
        outcome = ensemble_again(store, name, overrides, EventPrinter(out))
    finally:
        store.close()
    if outcome.record is not None:
        print_ensemble(out, outcome.record)


def export(name: str = typer.Argument(..., help="experiment name"),
           out_dir: Path = typer.Option(..., "--out", help="directory to create (or an "
                                                           "empty one)"),
           trial: Optional[str] = typer.Option(
               None, help="'best' (on validation; the default), 'distilled' (the best student "
               "of the distillation stage) or a trial number"),
           ensemble: bool = typer.Option(False, "--ensemble",
                                         help="export the experiment's latest ensemble"),
           format: str = typer.Option("native", "--format",
                                      help="native, torchscript or onnx (onnx: the onnx extra)"),
           db: Optional[str] = typer.Option(None, help=DB_HELP)) -> None:
    """Write a trial's model (or the ensemble) as one directory that predicts on raw inputs."""
    from automl.errors import ConfigError
    from automl.export import export_model, read_manifest

    if ensemble and trial is not None:
        raise ConfigError("--trial and --ensemble exclude each other: an ensemble exports "
                          "its own members")
    store = open_store(db)
    try:
        exp = store.experiment(name)
    finally:
        store.close()
    target = export_model(exp, out_dir, trial=trial or "best", ensemble=ensemble, format=format)
    manifest = read_manifest(target)
    if manifest["type"] == "ensemble":
        members = ", ".join(f"#{m['trial']} {m['architecture']} weight {m['weight']:.3f}"
                            for m in manifest["members"])
        what = f"the ensemble of '{name}' ({members})"
    else:
        key = f"val/{exp.objectives[0]['metric']}"
        value = manifest["metrics"].get(key)
        score = f", {key} {value:.4g}" if isinstance(value, float) else ""
        what = f"trial #{manifest['trial']} of '{name}' ({manifest['architecture']}{score})"
    out = console()
    out.print(f"exported {escape(what)} to {escape(str(target))}", soft_wrap=True)
    check = manifest["check"]
    scores = "".join(f", {key} {value:.4g}" for key, value in check["metrics"].items())
    out.print(f"format {manifest['runtime']['format']}: on the {check['rows']} test inputs, max "
              f"abs prediction difference from the eager model "
              f"{check['max_abs_proba_diff']:.3g}{scores}", soft_wrap=True)
    out.print(f"predict with: automl predict {escape(str(target))} INPUT  (or "
              f"automl.load_model('{escape(str(target))}').predict(rows))", soft_wrap=True)


def predict(export_dir: Path = typer.Argument(..., help="a directory written by automl export"),
            input: Path = typer.Argument(..., help="CSV/Parquet file, image folder or text CSV, "
                                                   "as the model was trained on"),
            output: Path = typer.Option(Path("predictions.csv"), "-o", "--output",
                                        help="CSV file to write (replaced atomically)"),
            id_column: Optional[str] = typer.Option(
                None, help="input column copied to the output (default: 'id' if present)"),
            batch_size: int = typer.Option(256, min=1, help="inputs read and predicted at once"),
            ) -> None:
    """Predict every row/image/text of INPUT with an exported model; one output row each."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from automl.events import PredictionProgress, PredictionStarted
    from automl.predictor import load

    out = console()
    predictor = load(export_dir)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=out, transient=True) as progress:
        task = progress.add_task("predicting", total=None)

        def show(event: object) -> None:
            if isinstance(event, PredictionStarted):
                progress.update(task, total=event.total)
            elif isinstance(event, PredictionProgress):
                total = max(event.total or 0, event.done) if event.total else None
                progress.update(task, completed=event.done, total=total)

        summary = predictor.predict_file(input, output, batch_size=batch_size,
                                         id_column=id_column, listener=show)
    out.print(f"predicted {summary.rows} input(s) in {summary.elapsed_s:.1f}s; wrote "
              f"{escape(str(summary.output))}", soft_wrap=True)


def rerun(name: str = typer.Argument(..., help="experiment name"),
          trial: int = typer.Option(..., help="the trial number to train again"),
          db: Optional[str] = typer.Option(None, help=DB_HELP)) -> None:
    """Train a recorded trial again in this process (no Ray) and compare its metrics."""
    from automl.rerun import TOLERANCE, rerun_trial

    store = open_store(db)
    try:
        exp = store.experiment(name)
    finally:
        store.close()
    out = console()
    recorded = next((t for t in exp.trials if t.number == trial), None)
    history = {h.get("epoch"): h for h in (recorded.history if recorded else [])}
    epochs = (exp.config.get("training") or {}).get("epochs", "?")
    out.print(f"rerunning trial #{trial} of '{escape(name)}' in this process (no Ray)",
              soft_wrap=True)

    def on_epoch(metrics: dict) -> None:
        before = history.get(metrics.get("epoch"), {})
        parts = [f"{key} {_num(value)}" + (f" (recorded {_num(before[key])})"
                                          if key in before else "")
                 for key, value in metrics.items()
                 if key.startswith(("train/", "val/")) and isinstance(value, float)]
        out.print(f"  epoch {metrics.get('epoch')}/{epochs}  " + "  ".join(parts),
                  soft_wrap=True, markup=False)

    result = rerun_trial(exp, trial, on_epoch=on_epoch)
    if result.recorded_seed is not None and result.recorded_seed != result.seed:
        out.print(f"[yellow]warning:[/yellow] derived seed {result.seed} differs from the "
                  f"recorded {result.recorded_seed}", soft_wrap=True)
    table = Table(title=f"trial #{trial}: recorded vs reproduced (seed {result.seed}, "
                        f"{result.elapsed_s:.1f}s)", title_justify="left")
    for col in ("metric", "recorded", "reproduced", "difference", ""):
        table.add_column(col, justify="left" if col in ("metric", "") else "right")
    for row in result.rows:
        diff = row.difference
        verdict = ("[green]same[/green]" if row.matches else "[red]differs[/red]") \
            if row.compared else "timing, not compared"
        table.add_row(row.key, _num(row.recorded), _num(row.reproduced),
                      "-" if diff is None else f"{diff:+.3g}", verdict)
    out.print(table)
    if result.proba_difference is not None:
        out.print(f"predicted probabilities (validation and test): largest difference "
                  f"{result.proba_difference:.3g}")
    if result.reproduced:
        out.print(f"[green]reproduced[/green]: every compared metric matches within "
                  f"{TOLERANCE:g}")
        return
    differing = ", ".join(result.differing) or "no metric to compare"
    out.print(f"[red]not reproduced[/red]: {escape(differing)} (tolerance {TOLERANCE:g}); "
              "a rerun matches only on the same hardware and software as the original run",
              soft_wrap=True)
    raise typer.Exit(1)


def _num(value: Any) -> str:
    if not isinstance(value, float):
        return "-" if value is None else str(value)
    return str(int(value)) if value.is_integer() else f"{value:.6g}"
