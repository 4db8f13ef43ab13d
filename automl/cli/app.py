"""The typer application, built by :func:`create_app` (no import-time plugin loading).

The commands are plain functions in :mod:`automl.cli.experiment` (``run``, ``validate``,
``plugins``), :mod:`automl.cli.records` (``ls``, ``show``, ``rm``), :mod:`automl.cli.dashboard`,
:mod:`automl.cli.report` (``report``), :mod:`automl.cli.explain` (``explain``) and
:mod:`automl.cli.models`
(``ensemble``, ``export``, ``predict``, ``rerun``), each a thin layer over a library call; the heavy modules
(Ray, torch, the store) are imported inside them.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from automl.cli import dashboard, experiment, explain, models, records, report
from automl.errors import AutomlError

#: (command name, function), in the order ``automl --help`` lists them
COMMANDS = (
    ("run", experiment.run), ("validate", experiment.validate), ("plugins", experiment.plugins),
    ("ls", records.list_experiments), ("show", records.show),
    ("dashboard", dashboard.dashboard), ("ensemble", models.ensemble),
    ("export", models.export), ("predict", models.predict),
    ("rerun", models.rerun), ("rm", records.rm), ("report", report.report),
    ("explain", explain.explain),
)


def create_app(load_plugin_commands: bool = True) -> typer.Typer:
    """Build the CLI. Plugins may add commands through ``automl_add_cli_commands``."""
    app = typer.Typer(name="automl", no_args_is_help=True, add_completion=False,
                      pretty_exceptions_enable=False,
                      help="Plugin-based AutoML: joint search over architectures, augmentations, "
                           "pruning and training hyperparameters on Ray Tune + Optuna.")
    for name, command in COMMANDS:
        app.command(name)(command)
    if load_plugin_commands:
        _add_plugin_commands(app)
    return app


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
