"""Distillation: the ensemble's accuracy in one small model, at the small model's latency?

For each seed, one ``automl.run`` searches the teachers' space (wide MLPs; trees besides them in
the synthetic setting), fits the ensemble
and runs the distillation stage, whose students are small MLPs (at most ``student_params``
parameters) learning from the ensemble (or, when its held-out guard fell back, from the best
trial). With ``--augment munge|mixup`` the same experiment is then resumed with twice the
students and ``distillation.augment`` set: the added students learn from the teacher's
predictions on the training rows *and* on synthetic rows (:mod:`automl.distill.augment`),
sampled by the same seeded sampler as the first ones. A second experiment searches the students'
space alone, as many trials, with no teacher (no ensemble, no distillation): its best trial is
"the best single trial of the student's size trained without a teacher".

Reported side by side, all on the test split (scored once, from the predictions each trial
stored): the teacher (the ensemble when the guard kept it), the search's best single trial, the
best student of each kind (best on validation among those without / with synthetic rows) and
the best teacher-less small trial, with parameters and CPU latency (one thread, batch 1 and 64,
measured in this process one after the other, on the models rebuilt from their checkpoints:
``automl.export.trained_model``; the ensemble as the module its export would be). ``gap
closed`` is (student - small) / (teacher - small) test accuracy: 1 means the student matched
the teacher, 0 that the teacher did not help.

    python -m benchmarks.distillation [--quick] [--seeds N] [--setting digits|synthetic]
                                      [--augment none|munge|mixup] [--size F]

Settings: ``digits`` (the first measurement: 1-2 layers of 128-512 units, students one layer of
16-32 units, at most 3000 parameters, 10 teacher trials, 6 students) and ``synthetic`` (the
default: ``synthetic_classification`` as in experiments/synthetic_wide.yaml, 4000 rows, 4
classes of 3 clusters, 3 % flipped labels, where no single MLP passed 0.74 test accuracy;
teachers are MLPs of 1-3 layers of 64-512 units *and* histogram gradient-boosted trees, so that
the ensemble has diverse members to blend; 8 teacher trials, 4 students of 1-2 layers of 16-48
units, at most 5000 parameters, 15 epochs). ``--quick`` (1 seed, synthetic on 600 rows, 3
teacher trials, 2 + 2 students, 2 small trials, 2 epochs) checks the script end to end: three
``automl.run`` calls, under 3 minutes on the loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.harness import environment_line, start_ray

SLOTS = 2
MODELS = (("teacher", "teacher"), ("best", "best single trial"),
          ("student", "student"), ("augmented", "student, synthetic rows"),
          ("small", "small, no teacher"))


@dataclass(frozen=True)
class Setting:
    dataset: dict[str, Any]
    teachers: dict[str, Any]
    students: dict[str, Any]
    student_params: int
    epochs: int
    teacher_trials: int
    student_trials: int
    lr: dict[str, Any]


SETTINGS = {
    "digits": Setting({"name": "digits"},
                      {"mlp": {"depth": [1, 2], "width": {"low": 128, "high": 512, "log": True}}},
                      {"mlp": {"depth": 1, "width": {"low": 16, "high": 32}, "dropout": 0.0}},
                      3000, 15, 10, 6, {"low": 1e-3, "high": 1e-2, "log": True}),
    "synthetic": Setting({"name": "synthetic_classification", "split": {"val": 0.2, "test": 0.2}},
                         {"mlp": {"depth": {"low": 1, "high": 3},
                                  "width": {"low": 64, "high": 512, "log": True},
                                  "dropout": {"low": 0.0, "high": 0.3}},
                          "hist_gbt": {}},
                         {"mlp": {"depth": [1, 2], "width": {"low": 16, "high": 48},
                                  "dropout": 0.0}},
                         5000, 15, 8, 4, {"low": 1e-3, "high": 1e-2, "log": True}),
}


@dataclass
class Row:
    seed: int
    teacher: str
    acc: dict[str, float] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)
    latency: dict[str, tuple[float, float]] = field(default_factory=dict)  # b=1 ms, b=64 ms

    def gap_closed(self, student: str) -> float:
        if student not in self.acc:
            return float("nan")
        gap = self.acc["teacher"] - self.acc["small"]
        return (self.acc[student] - self.acc["small"]) / gap if gap > 0 else float("nan")


def experiment(setting: Setting, seed: int, quick: bool, distill: bool,
               augment: dict[str, Any] | None = None) -> dict:
    epochs = 2 if quick else setting.epochs
    students = 2 if quick else setting.student_trials
    trials = (3 if quick else setting.teacher_trials) if distill else students
    dataset = dict(setting.dataset)
    if quick:
        dataset["params"] = {"rows": 600}
    doc = {
        "name": f"distill-{'teacher' if distill else 'small'}-s{seed}",
        "seed": seed,
        "dataset": dataset,
        "architecture": setting.teachers if distill else setting.students,
        "constraints": {} if distill else {"params": {"max": setting.student_params}},
        "training": {"epochs": epochs, "fine_tune_epochs": 0, "lr": setting.lr,
                     "batch_size": [32, 64], "optimizer": "adam"},
        "search": {"num_trials": trials, "sampler": "tpe", "startup_trials": 4,
                   "early_stopping": "none", "max_concurrent": SLOTS},
        "ensemble": {"candidates": 8} if distill else False,
    }
    if distill:
        doc["distillation"] = {"trials": students, "architecture": setting.students,
                               "constraints": {"params": {"max": setting.student_params}}}
        if augment is not None:
            doc["distillation"]["trials"] = 2 * students
            doc["distillation"]["augment"] = augment
    if not doc["constraints"]:
        del doc["constraints"]
    return doc


def _run(tmp: Path, db: str, doc: dict, resume: bool = False) -> str:
    import automl

    path = tmp / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = automl.run(str(path), db=db, artifacts=str(tmp / "runs"), resume=resume)
    assert result.status == "completed", result.status
    return doc["name"]


def run_seed(tmp: Path, setting: Setting, seed: int, quick: bool,
             augment: dict[str, Any] | None) -> Row:
    from automl.distill.settings import AUGMENT
    from automl.distill.teacher import choose_teacher
    from automl.evaluate.stage import load_test_labels, score, test_proba
    from automl.export import checkpoint_dir, trained_model, trial_spec
    from automl.multitask import task_for
    from automl.plugin_manager import plugin_source, rebuild_plugins
    from automl.results import (
        best_of, best_trial, objectives_of, student_constraints_of, students_of, tie_breakers_of,
    )
    from automl.store import Store
    from automl.weighted_models import weighted_models
    from automl_plugins.metrics.latency import measure_latency_ms

    db = f"sqlite:///{tmp}/bench.db"
    teacher_name = _run(tmp, db, experiment(setting, seed, quick, True))
    if augment is not None:
        _run(tmp, db, experiment(setting, seed, quick, True, augment), resume=True)
    small_name = _run(tmp, db, experiment(setting, seed, quick, False))
    registry = rebuild_plugins(plugin_source([], autoload=False)).registry
    with Store(db, create=False) as store:
        teacher_exp, small_exp = store.experiment(teacher_name), store.experiment(small_name)
    teacher = choose_teacher(teacher_exp)
    assert teacher is not None
    objectives, ties = objectives_of(teacher_exp), tie_breakers_of(teacher_exp)
    bounds = student_constraints_of(teacher_exp)
    students = students_of(teacher_exp)
    chosen = {
        "best": best_of(teacher_exp),
        "student": best_trial([t for t in students if AUGMENT not in t.params], objectives,
                              ties, bounds),
        "augmented": best_trial([t for t in students if AUGMENT in t.params], objectives,
                                ties, bounds),
        "small": best_of(small_exp),
    }
    labels, spec = load_test_labels(teacher_exp, registry)
    rows = len(labels.y)
    by_number = {t.number: t for t in teacher_exp.trials}
    members = [trained_model(teacher_exp, by_number[n], registry, spec) for n in teacher.members]
    task = task_for(spec, registry)
    models: dict[str, Any] = {"teacher": weighted_models(
        [m for m, _ in members], teacher.weights, task, spec, [f for _, f in members])}
    proba = {"teacher": task.combine(  # as the final evaluation combines the ensemble's
        np.asarray(teacher.weights, dtype=np.float64),
        [test_proba(by_number[n], teacher_name, rows) for n in teacher.members])}
    for name, trial in chosen.items():
        if trial is None:
            continue
        exp = small_exp if name == "small" else teacher_exp
        models[name] = trained_model(exp, trial, registry, spec)[0]
        proba[name] = test_proba(trial, exp.name, rows)
    row = Row(seed, teacher.describe())
    for name, model in models.items():
        row.acc[name] = score(registry, ["accuracy"], labels.y, proba[name], spec)[
            "test/accuracy"]
        row.params[name] = float(sum(p.numel() for p in model.parameters()))
        row.latency[name] = (measure_latency_ms(model.eval(), spec, 1),
                             measure_latency_ms(model.eval(), spec, 64))
    return row


def median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, tiny budgets")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="synthetic")
    parser.add_argument("--augment", choices=("none", "munge", "mixup"), default="munge")
    parser.add_argument("--size", type=float, default=3.0,
                        help="synthetic rows, as a multiple of the training rows")
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    augment = None if args.augment == "none" else {"method": args.augment, "size": args.size}
    print(environment_line("distillation"))
    print(f"setting {args.setting}, augment {args.augment}"
          + (f" x{args.size:g}" if augment else ""))
    start_ray(SLOTS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-distill-") as tmp:
        for seed in seeds:
            rows.append(run_seed(Path(tmp), SETTINGS[args.setting], seed, args.quick, augment))
            print(f"seed {seed}: teacher {rows[-1].teacher}; test accuracy "
                  + ", ".join(f"{k} {v:.4f}" for k, v in rows[-1].acc.items()), flush=True)
    print()
    print("model                             test accuracy    params   latency ms b=1    b=64")
    for name, label in MODELS:
        for row in rows:
            if name not in row.acc:
                continue
            b1, b64 = row.latency[name]
            print(f"{label:<25} seed {row.seed}   {row.acc[name]:.4f}  {row.params[name]:>8.0f}"
                  f"   {b1:14.3f}  {b64:6.3f}")
    print()
    present = [name for name, _ in MODELS if any(name in r.acc for r in rows)]
    print("median over seeds: test accuracy "
          + " / ".join(present) + " "
          + " / ".join(f"{median([r.acc.get(n, float('nan')) for r in rows]):.4f}"
                       for n in present))
    print("median latency b=1 ms: "
          + " / ".join(present) + " "
          + " / ".join(f"{median([r.latency[n][0] for r in rows if n in r.latency]):.3f}"
                       for n in present))
    gaps = " / ".join(f"{median([r.gap_closed(n) for r in rows]):.2f}"
                      for n in ("student", "augmented") if n in present)
    print(f"gap closed (student{' / augmented' if 'augmented' in present else ''}): {gaps}; "
          f"teacher gain over the best single trial "
          f"{median([r.acc['teacher'] - r.acc['best'] for r in rows]):+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
