"""Commands on an experiment file: ``run`` and ``validate``; and ``plugins``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from automl.cli.common import DB_HELP, console


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
                                     help="show Ray's worker logs"),
        log_lines: bool = typer.Option(
            False, "--log-lines",
            help="one line per finished trial instead of the live display (the default when "
                 "standard output is not a terminal)")) -> None:
    """Run an experiment: search, train, prune, record every trial."""
    from automl.cli.live import EventPrinter
    from automl.cli.live_progress import LiveProgress
    from automl.cli.render import count_text, print_experiment
    from automl.runner import run_experiment
    from automl.store import Store

    out = console()
    # a live display on a terminal; one line per event in a file, a pipe, a CI log
    display = None if log_lines or not out.is_terminal else LiveProgress(out)
    try:
        result = run_experiment(experiment, address=address, db=db, artifacts=artifacts,
                                max_trials=max_trials, name=name,
                                listener=display or EventPrinter(out), verbose=verbose,
                                resume=resume)
    finally:
        if display is not None:
            display.close()
    store = Store(result.db_url, create=False)
    try:
        print_experiment(out, store.experiment(result.name))
    finally:
        store.close()
    if result.status != "completed":
        raise typer.Exit(1)
    if result.best is None:
        counts: dict[str, int] = {}
        for trial in result.trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        what = ("no completed trial meets the constraints" if result.constraints
                and counts.get("completed") else "no trial completed")
        Console(stderr=True, highlight=False).print(
            f"[red]error:[/red] {what}{count_text(counts) or ' (none started)'}; "
            f"see automl show {escape(result.name)}", soft_wrap=True)
        raise typer.Exit(1)


def validate(experiment: Path = typer.Argument(..., help="experiment YAML file"),
             as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Check an experiment file and print its resolved search space."""
    from automl.runner import prepare

    prepared = prepare(experiment)
    rows = prepared.space.rows()
    config = prepared.loaded.config
    students = prepared.distillation
    if as_json:
        typer.echo(json.dumps({"name": config.name, "space": dict(rows),
                               "objectives": [o.__dict__ for o in prepared.space.objectives],
                               "constraints": [c.as_row() for c in prepared.space.constraints],
                               **({"distillation": {
                                   "trials": students.trials,
                                   "space": dict(students.space.rows()),
                                   "constraints": [c.as_row()
                                                   for c in students.space.constraints]}}
                                  if students else {})},
                              indent=2))
        return
    out = console()
    out.print(f"[green]ok[/green] {escape(str(experiment))}: experiment '{config.name}', dataset "
              f"'{config.dataset.name}', {config.search.num_trials} trials", soft_wrap=True)
    table = Table(title="search space", title_justify="left")
    table.add_column("parameter")
    table.add_column("values")
    for key, desc in rows:
        table.add_row(key, escape(desc))
    out.print(table)
    out.print("objectives: " + ", ".join(f"{o.key} ({o.mode})"
                                         for o in prepared.space.objectives))
    if prepared.space.constraints:
        out.print("constraints: " + ", ".join(c.describe() for c in prepared.space.constraints),
                  markup=False)
    if students is not None:
        table = Table(title=f"distillation: {students.trials} student trials",
                      title_justify="left")
        table.add_column("parameter")
        table.add_column("values")
        for key, desc in students.space.rows():
            table.add_row(key, escape(desc))
        out.print(table)
        if students.space.constraints:
            out.print("student constraints: " + ", ".join(
                c.describe() for c in students.space.constraints), markup=False)


def plugins(plugin_file: list[str] = typer.Option(
        [], "--plugin", "-p", help="also load this plugin module or file")) -> None:
    """List every registered component by kind, with the plugin that supplied it."""
    from automl.plugin_manager import load_plugins

    loaded = load_plugins(plugin_file, Path.cwd())
    out = console()
    table = Table(title="components", title_justify="left")
    for col in ("kind", "name", "plugin", "parameters (default space)", "description"):
        table.add_column(col)
    for entry in loaded.registry:
        params = ", ".join(f"{k}: {d.default.describe()}" for k, d in entry.cls.params.items())
        table.add_row(entry.kind, entry.name, entry.plugin, escape(params) or "-",
                      escape(entry.cls.description))
    out.print(table)
    versions = Table(title="plugins", title_justify="left")
    for col in ("plugin", "origin", "version", "hooks"):
        versions.add_column(col)
    for plugin in loaded.loaded:
        module = loaded.manager.get_plugin(plugin.name)
        hooks = sorted(h.name for h in loaded.manager.get_hookcallers(module) or [])
        versions.add_row(plugin.name, plugin.origin, plugin.version or "-", ", ".join(hooks))
    out.print(versions)
