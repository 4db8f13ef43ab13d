"""Turning stored results into terminal tables and JSON documents."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from automl.results import best_of, objectives_of, pareto_front
from automl.store import EnsembleRecord, ExperimentRecord, TrialRecord

STATUS_STYLE = {"completed": "green", "early_stopped": "yellow", "failed": "red",
                "running": "cyan"}


def experiment_json(exp: ExperimentRecord) -> dict[str, Any]:
    objectives = objectives_of(exp)
    best = best_of(exp)
    front = pareto_front(exp.trials, objectives) if len(objectives) > 1 else []
    return {
        "experiment": {
            "name": exp.name, "status": exp.status, "seed": exp.seed,
            "objectives": exp.objectives, "created_at": _iso(exp.created_at),
            "finished_at": _iso(exp.finished_at), "automl_version": exp.automl_version,
            "artifacts_dir": exp.artifacts_dir, "plugins": exp.plugins, "config": exp.config,
            "error": exp.error,
            "counts": _counts(exp.trials),
        },
        "trials": [trial_json(t) for t in exp.trials],
        "best": trial_json(best) if best else None,
        "pareto_front": [t.number for t in front],
        "ensemble": ensemble_json(exp.ensemble) if exp.ensemble else None,
    }


def ensemble_json(record: EnsembleRecord) -> dict[str, Any]:
    return {"ensembler": record.ensembler, "metric": record.metric,
            "members": [{"trial": n, "weight": w} for n, w in zip(record.members,
                                                                 record.weights)],
            "best_single": record.best_single, "scores": record.scores, "note": record.note,
            "settings": record.settings, "created_at": _iso(record.created_at)}


def print_ensemble(console: Console, record: EnsembleRecord) -> None:
    console.print(f"[bold]ensemble[/bold] ({record.ensembler}; weights fitted on part of the "
                  f"validation split, checked on the rest; test scored once)", soft_wrap=True)
    console.print("members: " + ", ".join(f"#{n} weight {w:.3f}"
                                          for n, w in zip(record.members, record.weights)),
                  soft_wrap=True)
    table = Table(show_header=True)
    for col in ("score", "ensemble", f"best single (#{record.best_single})", "difference"):
        table.add_column(col, justify="left" if col == "score" else "right")
    ens, single = record.scores["ensemble"], record.scores["best_single"]
    for key in ens:
        a, b = ens[key], single.get(key)
        diff = f"{a - b:+.4g}" if isinstance(b, float) and b == b else "-"
        table.add_row(key, _fmt(a), _fmt(b), diff)
    console.print(table)
    if record.note:
        console.print(record.note, soft_wrap=True, markup=False)


def trial_json(trial: TrialRecord) -> dict[str, Any]:
    return {
        "number": trial.number, "status": trial.status, "params": trial.params,
        "metrics": trial.metrics, "seed": trial.seed, "node": trial.node,
        "node_id": trial.node_id, "device": trial.device, "started_at": _iso(trial.started_at),
        "finished_at": _iso(trial.finished_at), "duration_s": trial.duration_s,
        "epochs": len(trial.history), "checkpoint": trial.checkpoint, "error": trial.error,
        **_error_parts(trial.error),
    }


def experiments_table(experiments: list[ExperimentRecord]) -> Table:
    table = Table(title="experiments", title_justify="left")
    for col in ("name", "status", "trials", "completed", "failed", "best (val)", "created"):
        table.add_column(col)
    for exp in experiments:
        objectives = objectives_of(exp)
        best = best_of(exp)
        counts = _counts(exp.trials)
        best_text = (f"{objectives[0].key}={best.metrics[objectives[0].key]:.4g} (#{best.number})"
                     if best else "-")
        table.add_row(exp.name, exp.status, str(len(exp.trials)), str(counts["completed"]),
                      str(counts["failed"]), best_text, f"{exp.created_at:%Y-%m-%d %H:%M}")
    return table


def print_experiment(console: Console, exp: ExperimentRecord) -> None:
    objectives = objectives_of(exp)
    counts = _counts(exp.trials)
    console.print(f"[bold]{exp.name}[/bold]  status {exp.status}  seed {exp.seed}  "
                  f"trials {len(exp.trials)} (" + ", ".join(f"{v} {k}" for k, v in counts.items()
                                                             if v) + ")", soft_wrap=True)
    if exp.error:
        console.print(f"[red]error:[/red] {exp.error.strip().splitlines()[-1]}", soft_wrap=True)
    keys = [o.key for o in objectives]
    extra = [k for k in ("val/accuracy", "model/params", "model/nonzero_params") if k not in keys]
    table = Table(title="trials", title_justify="left")
    for col in ("#", "status", "architecture", *keys, *extra, "pruning", "s"):
        table.add_column(col, justify="right" if col not in ("status", "architecture",
                                                             "pruning") else "left")
    for t in exp.trials:
        style = STATUS_STYLE.get(t.status, "")
        pruner = t.params.get("pruning")
        # The pruner's first numeric parameter (its declared amount, e.g. a ratio).
        ratio = next((v for k, v in t.params.items() if pruner and isinstance(v, float)
                      and k.startswith(f"pruning.{pruner}.")), None)
        table.add_row(str(t.number), f"[{style}]{t.status}[/{style}]",
                      str(t.params.get("architecture", "")),
                      *[_fmt(t.metrics.get(k)) for k in keys + extra],
                      (f"{pruner} {ratio:.2f}" if isinstance(ratio, float) else str(pruner or "-")),
                      _fmt(t.duration_s, 1))
    console.print(table)
    best = best_of(exp)
    if best is None:
        console.print("no completed trial")
        return
    console.print(f"[bold]best trial[/bold] #{best.number} (chosen on validation "
                  f"{objectives[0].key}, {objectives[0].mode})", soft_wrap=True)
    scores = Table(show_header=True)
    scores.add_column("metric")
    scores.add_column("validation", justify="right")
    scores.add_column("test", justify="right")
    names = sorted({k.split("/", 1)[1] for k in best.metrics if "/" in k})
    for name in names:
        model = best.metrics.get(f"model/{name}")  # one value for both splits
        scores.add_row(name, _fmt(best.metrics.get(f"val/{name}", model)),
                       _fmt(best.metrics.get(f"test/{name}", model)))
    console.print(scores)
    params = Table(show_header=True)
    params.add_column("parameter")
    params.add_column("value")
    for key, value in best.params.items():
        params.add_row(key, _fmt(value) if isinstance(value, float) else str(value))
    console.print(params)
    if exp.ensemble is not None:
        print_ensemble(console, exp.ensemble)
    if len(objectives) > 1:
        front = pareto_front(exp.trials, objectives)
        console.print("[bold]Pareto front[/bold] (validation): " + ", ".join(
            f"#{t.number} (" + ", ".join(f"{k}={t.metrics[k]:.4g}" for k in keys) + ")"
            for t in front), soft_wrap=True)


def trial_detail(console: Console, exp: ExperimentRecord, number: int) -> None:
    from automl.errors import StoreError

    trial = next((t for t in exp.trials if t.number == number), None)
    if trial is None:
        raise StoreError(f"experiment '{exp.name}' has no trial {number} "
                         f"(trials 0..{len(exp.trials) - 1})")
    console.print_json(data=trial_json(trial) | {"history": trial.history})


def _error_parts(error: str | None) -> dict[str, str | None]:
    """The exception type and message from the last line of a recorded traceback."""
    if not error:
        return {"error_type": None, "error_message": None}
    last = error.strip().splitlines()[-1]
    kind, sep, message = last.partition(": ")
    if sep and kind and " " not in kind:
        return {"error_type": kind.rsplit(".", 1)[-1], "error_message": message}
    return {"error_type": None, "error_message": last}


def _counts(trials: list[TrialRecord]) -> dict[str, int]:
    counts = {"completed": 0, "early_stopped": 0, "failed": 0, "running": 0}
    for t in trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    return counts


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1:
            return f"{int(value)}"
        return f"{value:.{digits}g}" if digits > 1 else f"{value:.{digits}f}"
    return str(value)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
