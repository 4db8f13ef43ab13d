"""The typer application, built by :func:`create_app` (no import-time plugin loading)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from automl.errors import AutomlError

DB_HELP = "SQLAlchemy database URL [default: sqlite:///automl.db in the current directory]"


def create_app(load_plugin_commands: bool = True) -> typer.Typer:
    """Build the CLI. Plugins may add commands through ``automl_add_cli_commands``."""
    app = typer.Typer(name="automl", no_args_is_help=True, add_completion=False,
                      pretty_exceptions_enable=False,
                      help="Plugin-based AutoML: joint search over architectures, augmentations, "
                           "pruning and training hyperparameters on Ray Tune + Optuna.")
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

    @app.command()
    def run(experiment: Path = typer.Argument(..., help="experiment YAML file"),
            address: Optional[str] = typer.Option(
                None, help="Ray cluster address ('auto' or host:port); default: embedded Ray"),
            db: Optional[str] = typer.Option(None, help=DB_HELP),
            artifacts: Optional[str] = typer.Option(
                None, help="directory for checkpoints and predictions [default: ./runs]"),
            max_trials: Optional[int] = typer.Option(None, min=1, help="override search.num_trials"),
            name: Optional[str] = typer.Option(None, help="override the experiment name"),
            resume: bool = typer.Option(False, "--resume",
                                        help="continue an interrupted experiment of this name"),
            verbose: bool = typer.Option(False, "--verbose", "-v",
                                         help="show Ray's worker logs")) -> None:
        """Run an experiment: search, train, prune, record every trial."""
        from automl.cli.render import print_experiment
        from automl.runner import run_experiment
        from automl.store import Store

        result = run_experiment(experiment, address=address, db=db, artifacts=artifacts,
                                max_trials=max_trials, name=name, console=out, verbose=verbose,
                                resume=resume)
        out.print(f"finished in {result.elapsed_s:.1f}s")
        store = Store(result.db_url, create=False)
        try:
            print_experiment(out, store.experiment(result.name))
        finally:
            store.close()
        if result.status != "completed":
            raise typer.Exit(1)
        if result.best is None:
            Console(stderr=True).print("[red]error:[/red] no trial completed; see the errors "
                                       f"with automl show {escape(result.name)}", soft_wrap=True)
            raise typer.Exit(1)

    @app.command()
    def validate(experiment: Path = typer.Argument(..., help="experiment YAML file"),
                 as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """Check an experiment file and print its resolved search space."""
        from automl.runner import prepare

        prepared = prepare(experiment)
        rows = prepared.space.rows()
        config = prepared.loaded.config
        if as_json:
            typer.echo(json.dumps({"name": config.name, "space": dict(rows),
                                   "objectives": [o.__dict__ for o in prepared.space.objectives]},
                                  indent=2))
            return
        out.print(f"[green]ok[/green] {experiment}: experiment '{config.name}', dataset "
                  f"'{config.dataset.name}', {config.search.num_trials} trials", soft_wrap=True)
        table = Table(title="search space", title_justify="left")
        table.add_column("parameter")
        table.add_column("values")
        for key, desc in rows:
            table.add_row(key, desc)
        out.print(table)
        out.print("objectives: " + ", ".join(f"{o.key} ({o.mode})"
                                             for o in prepared.space.objectives))

    @app.command()
    def plugins(plugin_file: list[str] = typer.Option(
            [], "--plugin", "-p", help="also load this plugin module or file")) -> None:
        """List every registered component by kind, with the plugin that supplied it."""
        from automl.plugin_manager import load_plugins

        loaded = load_plugins(plugin_file, Path.cwd())
        table = Table(title="components", title_justify="left")
        for col in ("kind", "name", "plugin", "parameters (default space)", "description"):
            table.add_column(col)
        for entry in loaded.registry:
            params = ", ".join(f"{k}: {d.default.describe()}" for k, d in entry.cls.params.items())
            table.add_row(entry.kind, entry.name, entry.plugin, params or "-",
                          entry.cls.description)
        out.print(table)
        versions = Table(title="plugins", title_justify="left")
        for col in ("plugin", "origin", "version", "hooks"):
            versions.add_column(col)
        for plugin in loaded.loaded:
            module = loaded.manager.get_plugin(plugin.name)
            hooks = sorted(h.name for h in loaded.manager.get_hookcallers(module) or [])
            versions.add_row(plugin.name, plugin.origin, plugin.version or "-", ", ".join(hooks))
        out.print(versions)

    @app.command("ls")
    def list_experiments(db: Optional[str] = typer.Option(None, help=DB_HELP)) -> None:
        """List the experiments in the database."""
        from automl.cli.render import experiments_table

        store = _open(db)
        try:
            experiments = store.experiments()
        finally:
            store.close()
        if not experiments:
            out.print("no experiments yet")
            return
        out.print(experiments_table(experiments))

    @app.command()
    def show(name: str = typer.Argument(..., help="experiment name"),
             db: Optional[str] = typer.Option(None, help=DB_HELP),
             trial: Optional[int] = typer.Option(None, help="show one trial in detail"),
             as_json: bool = typer.Option(False, "--json", help="print JSON for scripts")) -> None:
        """Show an experiment's trials, best trial and (multi-objective) Pareto front."""
        from automl.cli.render import experiment_json, print_experiment, trial_detail

        store = _open(db)
        try:
            exp = store.experiment(name)
        finally:
            store.close()
        if as_json:
            typer.echo(json.dumps(experiment_json(exp), indent=2, default=str))
        elif trial is not None:
            trial_detail(out, exp, trial)
        else:
            print_experiment(out, exp)

    @app.command()
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
        from automl.cli.render import print_ensemble
        from automl.config.models import EnsembleConfig
        from automl.ensemble import resolve_settings
        from automl.errors import ConfigError
        from automl.recorded import recorded_plugins
        from automl.results import objectives_of
        from automl.runner import ensemble_stage

        store = _open(db)
        try:
            exp = store.experiment(name)
            recorded = exp.config.get("ensemble", {}) or {}
            overrides = {k: v for k, v in {"ensembler": ensembler, "candidates": candidates,
                                           "holdout": holdout, "diversity": diversity,
                                           "metric": metric}.items() if v is not None}
            try:
                config = EnsembleConfig.model_validate({**recorded, **overrides, "enabled": True})
            except ValueError as exc:
                raise ConfigError(str(exc).splitlines()[-1] if str(exc) else "invalid option",
                                  path="ensemble") from None
            plugins = recorded_plugins(exp)  # plugin files checked against their digests
            settings = resolve_settings(config, objectives_of(exp), plugins.registry)
            outcome = ensemble_stage(store, name, plugins.registry, settings, out)
            if outcome.record is not None:
                print_ensemble(out, outcome.record)
        finally:
            store.close()

    @app.command()
    def export(name: str = typer.Argument(..., help="experiment name"),
               out_dir: Path = typer.Option(..., "--out", help="directory to create (or an "
                                                               "empty one)"),
               trial: Optional[str] = typer.Option(
                   None, help="'best' (on validation; the default) or a trial number"),
               ensemble: bool = typer.Option(False, "--ensemble",
                                             help="export the experiment's latest ensemble"),
               db: Optional[str] = typer.Option(None, help=DB_HELP)) -> None:
        """Write a trial's model (or the ensemble) as a self-contained, reloadable directory."""
        from automl.errors import ConfigError
        from automl.export import export_model, read_manifest

        if ensemble and trial is not None:
            raise ConfigError("--trial and --ensemble exclude each other: an ensemble exports "
                              "its own members")
        store = _open(db)
        try:
            exp = store.experiment(name)
        finally:
            store.close()
        target = export_model(exp, out_dir, trial=trial or "best", ensemble=ensemble)
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
        out.print(f"exported {escape(what)} to {escape(str(target))}", soft_wrap=True)
        out.print(f"load it with automl.export.load_model('{escape(str(target))}') "
                  f"(outputs {manifest['output']})", soft_wrap=True)

    @app.command()
    def rerun(name: str = typer.Argument(..., help="experiment name"),
              trial: int = typer.Option(..., help="the trial number to train again"),
              db: Optional[str] = typer.Option(None, help=DB_HELP)) -> None:
        """Train a recorded trial again in this process (no Ray) and compare its metrics."""
        from automl.rerun import TOLERANCE, rerun_trial

        def num(value: object) -> str:
            if not isinstance(value, float):
                return "-" if value is None else str(value)
            return str(int(value)) if value.is_integer() else f"{value:.6g}"

        store = _open(db)
        try:
            exp = store.experiment(name)
        finally:
            store.close()
        recorded = next((t for t in exp.trials if t.number == trial), None)
        history = {h.get("epoch"): h for h in (recorded.history if recorded else [])}
        epochs = (exp.config.get("training") or {}).get("epochs", "?")
        out.print(f"rerunning trial #{trial} of '{escape(name)}' in this process (no Ray)",
                  soft_wrap=True)

        def on_epoch(metrics: dict) -> None:
            before = history.get(metrics.get("epoch"), {})
            parts = [f"{key} {num(value)}" + (f" (recorded {num(before[key])})"
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
            table.add_row(row.key, num(row.recorded), num(row.reproduced),
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

    @app.command()
    def rm(name: str = typer.Argument(..., help="experiment name"),
           db: Optional[str] = typer.Option(None, help=DB_HELP)) -> None:
        """Delete an experiment's records (its artifact directory is left in place)."""
        store = _open(db)
        try:
            exp = store.experiment(name)
            store.delete_experiment(name)
            from automl.study import delete_study

            delete_study(store.url, name)
        finally:
            store.close()
        out.print(f"deleted experiment '{name}' ({len(exp.trials)} trials); artifacts remain in "
                  f"{exp.artifacts_dir}")

    if load_plugin_commands:
        _add_plugin_commands(app)
    return app


def _open(db: str | None):  # noqa: ANN202
    from automl.store import Store, default_db_url

    url = db or default_db_url()
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        from automl.errors import StoreError

        raise StoreError(f"no database at {url[len('sqlite:///'):]} (run an experiment first, "
                         "or pass --db)")
    return Store(url, create=False)


def _add_plugin_commands(app: typer.Typer) -> None:
    from automl.plugin_manager import load_plugins

    try:
        load_plugins().call("automl_add_cli_commands", app=app)
    except AutomlError as exc:
        Console(stderr=True).print("[yellow]warning:[/yellow] plugin commands not loaded:",
                                   escape(str(exc)), soft_wrap=True)


def main() -> None:
    """Console-script entry point: expected errors print one message, never a traceback.

    Typer runs in standalone mode, so usage errors (unknown option, missing argument, a value out
    of range) print the usage and exit 2, and ``typer.Exit(n)`` exits with n; automl's own errors
    come out of it as exceptions and are printed here.
    """
    err = Console(stderr=True, highlight=False)
    try:
        create_app()(prog_name="automl")
    except AutomlError as exc:
        err.print("[red]error:[/red]", escape(str(exc)), soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
