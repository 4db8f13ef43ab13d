"""Commands on the recorded experiments: ``ls``, ``show``, ``rm``."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.markup import escape

from automl.cli.common import DB_HELP, UsageError, console, open_store
from automl.errors import AutomlError

if TYPE_CHECKING:
    from automl.store import ExperimentRecord


def list_experiments(db: Optional[str] = typer.Option(None, help=DB_HELP)) -> None:
    """List the experiments in the database."""
    from automl.cli.render import experiments_table

    store = open_store(db)
    try:
        experiments = store.experiments()
    finally:
        store.close()
    out = console()
    if not experiments:
        out.print("no experiments yet")
        return
    out.print(experiments_table(experiments))


def show(name: str = typer.Argument(..., help="experiment name"),
         db: Optional[str] = typer.Option(None, help=DB_HELP),
         trial: Optional[int] = typer.Option(None, help="show one trial in detail"),
         as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
         watch: bool = typer.Option(
             False, "--watch", help="draw it again as it changes, until it is no longer running"),
         interval: float = typer.Option(2.0, min=0.1,
                                        help="seconds between reads with --watch")) -> None:
    """Show an experiment's trials, best trial and (multi-objective) Pareto front."""
    from automl.cli.render import experiment_json, print_experiment, trial_detail

    if watch and as_json:
        raise UsageError("--watch draws the experiment on the terminal; it does not combine "
                         "with --json")
    store = open_store(db)
    try:
        if watch:
            from functools import partial

            from automl.cli.watch import watch as watch_experiment

            render = print_experiment if trial is None else partial(trial_detail, number=trial)
            watch_experiment(console(), store, name, render, interval)
            return
        exp = store.experiment(name)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(experiment_json(exp), indent=2, default=str))
    elif trial is not None:
        trial_detail(console(), exp, trial)
    else:
        print_experiment(console(), exp)


def rm(name: str = typer.Argument(..., help="experiment name"),
       db: Optional[str] = typer.Option(None, help=DB_HELP),
       yes: bool = typer.Option(False, "--yes", "-y", help="delete without asking"),
       keep_artifacts: bool = typer.Option(
           False, "--keep-artifacts", help="leave <artifacts>/NAME/ (the checkpoints) in place")
       ) -> None:
    """Delete an experiment's records and its artifacts directory, after asking."""
    from automl.study import delete_study

    out = console()
    store = open_store(db)
    try:
        exp = store.experiment(name)
        directory = experiment_directory(exp)
        doomed = None if keep_artifacts or directory is None or not directory.is_dir() \
            else directory
        what = f"experiment '{name}' ({len(exp.trials)} trials)"
        if doomed is not None:
            what += f" and its artifacts {doomed} ({_megabytes(doomed)})"
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"automl rm asks before it deletes {what}, but there is no "
                                 "terminal to ask on; pass --yes to delete without asking")
            if not typer.confirm(f"delete {what}?", default=False):
                out.print("nothing deleted")
                raise typer.Exit(1)
        store.delete_experiment(name)
        delete_study(store.url, name)
    finally:
        store.close()
    if doomed is not None:
        try:
            shutil.rmtree(doomed)
        except OSError as exc:
            raise AutomlError(f"deleted the records of experiment '{name}', but not its "
                              f"artifacts {doomed}: {exc.strerror or exc}") from None
    out.print(f"deleted {escape(what)}", soft_wrap=True)
    if doomed is None:
        out.print(f"artifacts {escape(_left_because(exp, directory, keep_artifacts))}",
                  soft_wrap=True)


def experiment_directory(exp: "ExperimentRecord") -> Path | None:
    """``<artifacts>/<name>``, the experiment's own directory of checkpoints; None for an
    artifacts URI (object storage) or a path that is not plainly inside the artifacts root."""
    if not exp.artifacts_dir or "://" in exp.artifacts_dir:
        return None
    root = Path(exp.artifacts_dir)
    directory = root / exp.name
    # names cannot hold '/' or start with '.', but the root may be a link: compare resolved
    if directory.is_symlink() or directory.resolve().parent != root.resolve():
        return None
    return directory


def _left_because(exp: "ExperimentRecord", directory: Path | None, kept: bool) -> str:
    where = Path(exp.artifacts_dir or "?") / exp.name
    if kept:
        return f"kept in {where}"
    if directory is None:
        return (f"not removed: {where} is not a local directory of this experiment (a storage "
                "URI or a symbolic link); delete it with the tools of that storage")
    return f"none found at {where}"


def _megabytes(directory: Path) -> str:
    total = 0
    for parent, _, files in os.walk(directory):
        for file in files:
            try:
                total += os.lstat(os.path.join(parent, file)).st_size
            except OSError:
                pass
    return f"{total / 1e6:.1f} MB"
