"""Turning stored results into terminal tables and JSON documents."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from automl.constraints import ConstraintSpec, verdict, violated
from automl.results import (
    DISTILLED, best_of, best_student_of, constraints_of, objectives_of, pareto_of,
    student_constraints_of, students_of,
)
from automl.store import (
    EnsembleRecord, EvaluationRecord, ExperimentRecord, TrialRecord, TrialStatus,
)

#: every trial status (running, completed, early_stopped, failed, interrupted) and experiment
#: status (running, completed, failed, interrupted); any other renders unstyled
STATUS_STYLE = {TrialStatus.RUNNING: "cyan", TrialStatus.COMPLETED: "green",
                TrialStatus.EARLY_STOPPED: "yellow", TrialStatus.FAILED: "red",
                TrialStatus.INTERRUPTED: "magenta"}
#: the width of the longest status: a narrow terminal wraps other columns, never a status
STATUS_WIDTH = max(len(status) for status in STATUS_STYLE)


def status_text(status: str) -> Text:
    """A status in its colour (plain text, never parsed as markup)."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _status_column(table: Table, header: str = "status") -> None:
    table.add_column(header, no_wrap=True, min_width=STATUS_WIDTH)


def experiment_json(exp: ExperimentRecord) -> dict[str, Any]:
    objectives = objectives_of(exp)
    best = best_of(exp)
    front = pareto_of(exp) if len(objectives) > 1 else []
    constraints = constraints_of(exp)
    return {
        "experiment": {
            "name": exp.name, "status": exp.status, "seed": exp.seed,
            "objectives": exp.objectives, "created_at": _iso(exp.created_at),
            "finished_at": _iso(exp.finished_at), "automl_version": exp.automl_version,
            "artifacts_dir": exp.artifacts_dir, "plugins": exp.plugins, "config": exp.config,
            "error": exp.error, "data_sizes": exp.data_sizes,
            "counts": _counts(exp.trials),
        },
        "constraints": [c.as_row() for c in constraints],
        "trials": [{**trial_json(t), **_feasibility(
            t, student_constraints_of(exp) if t.kind == DISTILLED else constraints)}
            for t in exp.trials],
        "best": trial_json(best) if best else None,
        "best_student": trial_json(student) if (student := best_student_of(exp)) else None,
        "pareto_front": [t.number for t in front],
        "ensemble": ensemble_json(exp.ensemble) if exp.ensemble else None,
        # test-split scores exist only here: the latest final evaluation, and every one made
        "final_evaluation": evaluation_json(exp.evaluation) if exp.evaluation else None,
        "final_evaluations": [evaluation_json(e) for e in exp.evaluations],
    }


def _feasibility(trial: TrialRecord, constraints: list[ConstraintSpec]) -> dict[str, Any]:
    """``feasible`` and what a trial breaks, for an experiment with constraints."""
    if not constraints:
        return {}
    broken = violated(trial.metrics, constraints)
    return {"feasible": not broken, "violated": broken}


def evaluation_json(record: EvaluationRecord) -> dict[str, Any]:
    return {"number": record.number, "created_at": _iso(record.created_at),
            "split": "test",
            "scored": [{"subject": s.subject, "trial": s.trial, "ensemble_id": s.ensemble_id,
                        "roles": s.roles, "metrics": s.metrics} for s in record.subjects]}


def ensemble_json(record: EnsembleRecord) -> dict[str, Any]:
    return {"ensembler": record.ensembler, "metric": record.metric,
            "members": [{"trial": n, "weight": w} for n, w in zip(record.members,
                                                                 record.weights)],
            "best_single": record.best_single, "scores": _validation_scores(record),
            "note": record.note, "settings": record.settings, "id": record.id,
            "created_at": _iso(record.created_at)}


def _validation_scores(record: EnsembleRecord) -> dict[str, dict[str, float]]:
    """The ensemble's scores without test values (ensembles recorded before the final
    evaluation existed scored the test split themselves; those values are not shown)."""
    return {side: {k: v for k, v in values.items() if not k.startswith(TEST)}
            for side, values in record.scores.items()}


def print_ensemble(console: Console, record: EnsembleRecord) -> None:
    console.print(f"[bold]ensemble[/bold] ({record.ensembler}; weights fitted on part of the "
                  f"validation split, checked on the rest; its test scores are in the final "
                  f"evaluation)", soft_wrap=True)
    console.print("members: " + ", ".join(f"#{n} weight {w:.3f}"
                                          for n, w in zip(record.members, record.weights)),
                  soft_wrap=True)
    table = Table(show_header=True)
    for col in ("score", "ensemble", f"best single (#{record.best_single})", "difference"):
        table.add_column(col, justify="left" if col == "score" else "right")
    scores = _validation_scores(record)
    ens, single = scores["ensemble"], scores["best_single"]
    for key in ens:
        a, b = ens[key], single.get(key)
        diff = f"{a - b:+.4g}" if isinstance(b, float) and b == b else "-"
        table.add_row(key, _fmt(a), _fmt(b), diff)
    console.print(table)
    if record.note:
        console.print(record.note, soft_wrap=True, markup=False)


def trial_json(trial: TrialRecord) -> dict[str, Any]:
    return {
        "number": trial.number, "kind": trial.kind, "status": trial.status,
        "params": trial.params,
        "metrics": validation_metrics(trial), "seed": trial.seed, "node": trial.node,
        "node_id": trial.node_id, "device": trial.device, "started_at": _iso(trial.started_at),
        "finished_at": _iso(trial.finished_at), "duration_s": trial.duration_s,
        "epochs": len(trial.history), "checkpoint": trial.checkpoint, "error": trial.error,
        **_error_parts(trial.error),
    }


def _feasible_text(trial: TrialRecord, constraints: list[ConstraintSpec]) -> Text:
    if trial.status in (TrialStatus.RUNNING, TrialStatus.FAILED, TrialStatus.INTERRUPTED):
        return Text("")
    text = verdict(trial.metrics, constraints)
    return Text(text, style="green" if text == "yes" else "red")


def experiments_table(experiments: list[ExperimentRecord]) -> Table:
    table = Table(title="experiments", title_justify="left")
    for col in ("name", "status", "trials", "completed", "failed", "best (val)", "created"):
        if col == "status":
            _status_column(table)
        else:
            table.add_column(col)
    for exp in experiments:
        objectives = objectives_of(exp)
        best = best_of(exp)
        counts = _counts(exp.trials)
        best_text = (f"{objectives[0].key}={best.metrics[objectives[0].key]:.4g} (#{best.number})"
                     if best else "-")
        table.add_row(exp.name, status_text(exp.status), str(len(exp.trials)),
                      str(counts["completed"]), str(counts["failed"]), best_text, f"{exp.created_at:%Y-%m-%d %H:%M}")
    return table


def print_experiment(console: Console, exp: ExperimentRecord) -> None:
    objectives = objectives_of(exp)
    counts = _counts(exp.trials)
    console.print(Text.assemble(
        (exp.name, "bold"), "  status ", status_text(exp.status),
        f"  seed {exp.seed}  trials {len(exp.trials)}", count_text(counts)), soft_wrap=True)
    if exp.error:
        console.print(f"[red]error:[/red] {escape(exp.error.strip().splitlines()[-1])}",
                      soft_wrap=True)
    keys = [o.key for o in objectives]
    measured = [t for t in exp.trials if t.metrics]
    # val/accuracy only where the trials score it (not for a regression experiment)
    extra = [k for k in ("val/accuracy", "model/params", "model/nonzero_params") if k not in keys
             and (not measured or not k.startswith("val/") or any(k in t.metrics
                                                                  for t in measured))]
    constraints = constraints_of(exp)
    extra += [c.key for c in constraints if c.key not in keys + extra]
    if constraints:
        console.print("constraints: " + ", ".join(c.describe() for c in constraints)
                      + " (a trial outside them is never chosen)", soft_wrap=True, markup=False)
    epochs = (exp.config.get("training") or {}).get("epochs")
    table = Table(title="trials", title_justify="left")
    quantized = any("quantization" in t.params for t in exp.trials)
    students = students_of(exp)
    student_constraints = student_constraints_of(exp)
    for col in ("#", *(["kind"] if students else []), "status", "architecture", *keys, *extra,
                "pruning", *(["quantization"] if quantized else []), "s",
                *(["feasible"] if constraints or student_constraints else [])):
        if col == "status":
            _status_column(table)
        else:
            table.add_column(col, justify="left" if col in ("kind", "architecture", "pruning")
                             else "right")
    live = False
    for t in exp.trials:
        cells: list[Any] = [_fmt(t.metrics.get(k)) for k in keys + extra]
        duration: Any = _fmt(t.duration_s, 1)
        if t.status == TrialStatus.RUNNING and t.history:
            # a running trial's values so far: its latest epoch, dimmed
            latest = t.history[-1]
            cells = [Text(_fmt(latest.get(k)), style="dim") for k in keys + extra]
            duration = Text(f"epoch {latest.get('epoch', len(t.history))}", style="dim")
            live = True
        table.add_row(str(t.number), *([t.kind] if students else []), status_text(t.status),
                      str(t.params.get("architecture", "")), *cells,
                      _pruning(t, epochs),
                      *([_quantization(t)] if quantized else []), duration,
                      *([_feasible_text(t, student_constraints if t.kind == DISTILLED
                                        else constraints)]
                        if constraints or student_constraints else []))
    console.print(table)
    if live:
        console.print("[dim]running trials show their latest epoch's values[/dim]")
    best = best_of(exp)
    if best is None:
        console.print("no completed trial meets the constraints" if constraints
                      else "no completed trial")
        return
    console.print(f"[bold]best trial[/bold] #{best.number} (chosen on validation "
                  f"{objectives[0].key}, {objectives[0].mode})", soft_wrap=True)
    scores = Table(show_header=True)
    scores.add_column("metric")
    scores.add_column("validation", justify="right")
    metrics = validation_metrics(best)
    names = sorted({k.split("/", 1)[1] for k in metrics if k.startswith(SPLITS)})
    for name in names:
        model = metrics.get(f"model/{name}")  # one value for every split
        scores.add_row(name, _fmt(metrics.get(f"val/{name}", model)))
    console.print(scores)
    facts: dict[str, list[str]] = {}  # not per split: model/params_before_pruning, ...
    for key, value in sorted(metrics.items()):
        prefix, sep, name = key.partition("/")
        if sep and f"{prefix}/" not in SPLITS:
            facts.setdefault(prefix, []).append(f"{name} {_fmt(value)}")
    for prefix, values in facts.items():
        console.print(f"{prefix}: " + ", ".join(values), soft_wrap=True, markup=False)
    params = Table(show_header=True)
    params.add_column("parameter")
    params.add_column("value")
    for key, value in best.params.items():
        params.add_row(key, _fmt(value) if isinstance(value, float) else str(value))
    console.print(params)
    if exp.ensemble is not None:
        print_ensemble(console, exp.ensemble)
    if students:
        print_student(console, exp)
    if len(objectives) > 1:
        front = pareto_of(exp)
        console.print("[bold]Pareto front[/bold] (validation): " + ", ".join(
            f"#{t.number} (" + ", ".join(f"{k}={t.metrics[k]:.4g}" for k in keys) + ")"
            for t in front), soft_wrap=True)
    if exp.evaluation is not None:
        print_evaluation(console, exp.evaluation, len(exp.evaluations))
    else:
        console.print("final evaluation: not made yet (no test-split scores)", soft_wrap=True)


def print_student(console: Console, exp: ExperimentRecord) -> None:
    """The distillation stage's best student: what it learned from and how."""
    student = best_student_of(exp)
    key = objectives_of(exp)[0].key
    extra = [c.describe() for c in student_constraints_of(exp) if c not in constraints_of(exp)]
    bounds = f", within {', '.join(extra)}" if extra else ""
    if student is None:
        console.print(f"distillation: no completed student meets the constraints{bounds}",
                      soft_wrap=True, markup=False)
        return
    params = student.params
    console.print(f"[bold]best student[/bold] #{student.number} (distilled from the "
                  f"{escape(str(params.get('distill.teacher', 'teacher')))}, temperature "
                  f"{_fmt(params.get('distill.temperature'))}, alpha "
                  f"{_fmt(params.get('distill.alpha'))}"
                  + (f", synthetic rows {escape(str(params['distill.augment']))}"
                     if "distill.augment" in params else "")
                  + f"{escape(bounds)}): {key} "
                  f"{_fmt(student.metrics.get(key))}, params "
                  f"{_fmt(student.metrics.get('model/params'))}", soft_wrap=True)


def subject_label(subject: Any) -> str:
    """``best trial #3``, ``Pareto front #5``, ``ensemble (id 2)``."""
    if subject.subject == "ensemble":
        return f"ensemble (id {subject.ensemble_id})"
    if "distilled" in subject.roles:
        return f"distilled student #{subject.trial}"
    role = "best trial" if "best" in subject.roles else "Pareto front"
    front = ", Pareto front" if "best" in subject.roles and "pareto" in subject.roles else ""
    return f"{role} #{subject.trial}{front}"


def print_evaluation(console: Console, record: EvaluationRecord, count: int = 1) -> None:
    """The final evaluation's table: one row per scored trial or ensemble, test metrics."""
    earlier = f"; {count - 1} earlier kept" if count > 1 else ""
    console.print(f"[bold]final evaluation[/bold] #{record.number} (test split, scored once, "
                  f"{record.created_at:%Y-%m-%d %H:%M:%S} UTC{earlier})", soft_wrap=True)
    names = list(dict.fromkeys(k for s in record.subjects for k in s.metrics))
    table = Table(show_header=True)
    table.add_column("scored")
    for name in names:
        table.add_column(name, justify="right")
    for subject in record.subjects:
        table.add_row(subject_label(subject), *[_fmt(subject.metrics.get(n)) for n in names])
    console.print(table)


def validation_metrics(trial: TrialRecord) -> dict[str, float]:
    """A trial's metrics without test-split values (trials recorded before the final
    evaluation existed scored the test split themselves; those values are not shown)."""
    return {k: v for k, v in trial.metrics.items() if not k.startswith(TEST)}


def trial_detail(console: Console, exp: ExperimentRecord, number: int) -> None:
    from automl.errors import StoreError

    trial = next((t for t in exp.trials if t.number == number), None)
    if trial is None:
        raise StoreError(f"experiment '{exp.name}' has no trial {number} "
                         f"(trials 0..{len(exp.trials) - 1})")
    console.print_json(data=trial_json(trial) | {"history": trial.history})


#: metric prefixes of the scores per split; other prefixes (``model/``) describe the model
SPLITS = ("val/", "test/")
#: test-split scores, shown only as the final evaluation's
TEST = "test/"


def _quantization(trial: TrialRecord) -> str:
    """The quantizer a trial sampled (``none``: float32) and, once applied, where its model runs
    and its latency was measured (``dynamic_int8 (cpu)``, ``fp16 (cuda)``); '-' before its final
    report."""
    if trial.status != TrialStatus.COMPLETED:
        return "-"
    name = str(trial.params.get("quantization", "-"))
    if trial.metrics.get("model/quantized") == 0.0:
        return f"{name} (not applied)"
    if "model/on_cuda" in trial.metrics:
        return f"{name} ({'cuda' if trial.metrics['model/on_cuda'] else 'cpu'})"
    return name


def _pruning(trial: TrialRecord, epochs: int | None) -> str:
    """``pruner ratio`` for a trial that reached the pruning stage, else '-'.

    Pruning runs once, after the last epoch; only the final report that follows it carries
    ``model/params_before_pruning``. An early-stopped trial never got there; a failed one may
    have failed in the pruner (its history then holds every epoch).
    """
    pruner = trial.params.get("pruning")
    if not pruner:
        return "-"
    pruned = "model/params_before_pruning" in trial.metrics
    if trial.status == TrialStatus.FAILED:
        last = max((h.get("epoch") or 0 for h in trial.history), default=0)
        pruned = pruned or (epochs is not None and last >= epochs)
    if not pruned:
        return "-"
    # The pruner's first numeric parameter: its declared amount, e.g. a ratio.
    ratio = next((v for k, v in trial.params.items()
                  if isinstance(v, float) and k.startswith(f"pruning.{pruner}.")), None)
    return f"{pruner} {ratio:.2f}" if isinstance(ratio, float) else str(pruner)


def _error_parts(error: str | None) -> dict[str, str | None]:
    """The exception type and message from the last line of a recorded traceback."""
    if not error:
        return {"error_type": None, "error_message": None}
    last = error.strip().splitlines()[-1]
    kind, sep, message = last.partition(": ")
    if sep and kind and " " not in kind:
        return {"error_type": kind.rsplit(".", 1)[-1], "error_message": message}
    return {"error_type": None, "error_message": last}


def count_text(counts: dict[str, int]) -> str:
    """`` (3 completed, 1 failed)``; empty when there are no trials."""
    shown = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    return f" ({shown})" if shown else ""


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
