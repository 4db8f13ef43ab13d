"""``automl dashboard NAME``: optuna-dashboard (the ``dashboard`` extra) on the experiment's
Optuna study, which lives in the experiment's own database (:mod:`automl.study`)."""

from __future__ import annotations

import sys
import warnings
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from automl.cli.common import DB_HELP, console, open_store
from automl.errors import AutomlError, StoreError

#: where the dashboard listens unless --host says otherwise: this machine only
LOOPBACK = "127.0.0.1"
_LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def dashboard(name: str = typer.Argument(..., help="experiment name"),
              db: Optional[str] = typer.Option(None, help=DB_HELP),
              port: int = typer.Option(8080, min=1, max=65535, help="port to listen on"),
              host: Optional[str] = typer.Option(
                  None, help=f"address to listen on [default: {LOOPBACK}, this machine only]; "
                             "the dashboard has no authentication: anyone who reaches another "
                             "address can read and change the study")) -> None:
    """Serve optuna-dashboard for an experiment's study on 127.0.0.1 (until Ctrl-C)."""
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise AutomlError("automl dashboard needs optuna-dashboard, the 'dashboard' extra: "
                          "pip install 'automl[dashboard]'") from None
    import optuna

    from automl.results import objectives_of
    from automl.study import optuna_storage, study_name

    store = open_store(db)
    try:
        exp = store.experiment(name)
        url = store.url
    finally:
        store.close()
    storage = optuna_storage(url)
    try:
        study_id = storage.get_study_id_from_name(study_name(name))
    except KeyError:
        raise StoreError(f"experiment '{name}' has no Optuna study in its database (it was "
                         "recorded before its search started)") from None
    study = optuna.load_study(study_name=study_name(name), storage=storage)
    names = [o.key for o in objectives_of(exp)]
    if len(names) == len(study.directions) and study.metric_names != names:
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, and still there
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)  # the dashboard's axes: val/accuracy, not "Objective 0"

    bind = host or LOOPBACK
    if bind not in _LOOPBACK_NAMES:
        Console(stderr=True, highlight=False).print(
            f"[yellow]warning:[/yellow] the dashboard listens on {escape(bind)}; it has no "
            "authentication: anyone who can reach this address and port can read the study "
            "and change it (tell trials, delete the study)", soft_wrap=True)
    shown = f"[{bind}]" if ":" in bind else bind
    out = console()
    out.print(f"optuna-dashboard for [bold]{escape(name)}[/bold] "
              f"({', '.join(names)}): http://{shown}:{port}/dashboard/studies/{study_id} "
              "(Ctrl-C stops it)", soft_wrap=True)
    sys.stdout.flush()
    try:
        run_server(storage, host=bind, port=port)
    except OSError as exc:
        raise AutomlError(f"cannot serve the dashboard on {bind}:{port}: "
                          f"{exc.strerror or exc}") from None
